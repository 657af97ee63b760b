import type { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { readConfig } from '#common/config';
import { createForwardDeps } from '#forward/deps';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };
const batchEnv = {
  STAGING_BUCKET: 'my-staging',
  AEP_SINK: 'batch',
  AEP_CLIENT_ID: 'client',
  AEP_CLIENT_SECRET: 'not-a-real-secret',
  AEP_ORG_ID: 'ORG@AdobeOrg',
  AEP_DATASET_ID: 'ds1',
  AEP_SCHEMA_ID: 'https://ns.adobe.com/acme/schemas/s1',
  AEP_TENANT_ID: 'acme',
};

/** The body of the create-batch request the forwarder's batch sink sends for `env`. */
async function createBody(env: Record<string, string>): Promise<Record<string, unknown>> {
  const bodies: Record<string, unknown>[] = [];
  const fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = String(input);
    if (url.includes('/ims/')) return Response.json({ access_token: 't', token_type: 'bearer', expires_in: 86399 });
    bodies.push(JSON.parse(String(init?.body)) as Record<string, unknown>);
    return Response.json({ id: 'b-1' }, { status: 201 });
  }) as typeof globalThis.fetch;
  const deps = await createForwardDeps(readConfig({ ...batchEnv, ...env }, 'forward'), {
    fetch,
    s3: {} as S3Client,
    log: quiet,
  });
  if (deps.sink.kind !== 'batch') throw new Error('expected the batch sink');
  expect(await deps.sink.batches.createBatch()).toBe('b-1');
  return bodies[0]!;
}

describe('createForwardDeps: batch options from configuration', () => {
  it('should create batches with partial ingestion at 5% and error diagnostics by default', async () => {
    expect(await createBody({})).toMatchObject({
      datasetId: 'ds1',
      enableErrorDiagnostics: true,
      partialIngestionPercent: 5,
    });
  });

  it('should send the configured percentage, and no partial ingestion at 0', async () => {
    // Act
    const set = await createBody({ AEP_BATCH_PARTIAL_INGESTION_PERCENT: '20' });
    const off = await createBody({ AEP_BATCH_PARTIAL_INGESTION_PERCENT: '0', AEP_BATCH_ERROR_DIAGNOSTICS: 'false' });

    // Assess
    expect(set).toMatchObject({ enableErrorDiagnostics: true, partialIngestionPercent: 20 });
    expect(off).toMatchObject({ enableErrorDiagnostics: false });
    expect(off).not.toHaveProperty('partialIngestionPercent');
  });
});
