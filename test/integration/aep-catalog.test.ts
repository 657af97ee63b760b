/**
 * The Platform read client (Catalog batches, Data Access failed records and error diagnostics) against the AEP
 * emulator: what Platform stored after streaming and batch ingestion, as the verifier reads it.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startAepEmulator, type AepEmulator } from '#emulators/aep/server';
import type { RetryPolicy } from '#common/retry';
import { ImsTokenProvider, type AepCredentials } from '#aep/ims';
import { StreamingSink, type SinkRecord } from '#aep/streaming';
import { BatchSink } from '#aep/batch';
import { type DataAccessLine, PlatformCatalog, platformErrors } from '#aep/catalog';

const CREDS: AepCredentials = { clientId: 'client-1', clientSecret: 'secret-value-1', orgId: 'ORG1@AdobeOrg' };
const DATASET = 'ds-events';
const SCHEMA = 'https://ns.adobe.com/acme/schemas/mixpanel-events';
const CONNECTION = 'conn-auth';
const SANDBOX = 'dev';
const FAST: RetryPolicy = { maxAttempts: 5, baseDelayMs: 50, maxDelayMs: 500, maxRetryAfterMs: 60_000 };

let aep: AepEmulator;
let requested: string[];

beforeEach(async () => {
  aep = await startAepEmulator({
    clients: [CREDS],
    tenant: 'acme',
    sandbox: SANDBOX,
    datasets: [{ id: DATASET, schemaId: SCHEMA }],
    connections: [{ id: CONNECTION, authenticated: true }],
    flows: [{ id: 'flow-1', connectionId: CONNECTION, datasetId: DATASET }],
  });
  requested = [];
});

afterEach(async () => {
  await aep.close();
});

const sleep = async (): Promise<void> => undefined;

function tokens(): ImsTokenProvider {
  return new ImsTokenProvider({ imsUrl: aep.imsTokenUrl, credentials: async () => CREDS, retry: FAST, sleep });
}

/** The client under test; every URL it requests is recorded. */
function catalog(): PlatformCatalog {
  const recording: typeof fetch = (input, init) => {
    requested.push(String(input));
    return fetch(input, init);
  };
  return new PlatformCatalog({
    target: { platformUrl: aep.platformUrl, sandbox: SANDBOX },
    tokens: tokens(),
    fetch: recording,
    retry: FAST,
    sleep,
  });
}

function batchSink(): BatchSink {
  return new BatchSink({
    target: { platformUrl: aep.platformUrl, datasetId: DATASET, sandbox: SANDBOX },
    tokens: tokens(),
    retry: FAST,
    sleep,
  });
}

function entity(id: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { _id: id, timestamp: '2024-03-01T12:00:00.000Z', eventType: 'mixpanel.track', _acme: { n: 1 }, ...extra };
}

function record(id: string, extra: Record<string, unknown> = {}): SinkRecord {
  return { id, json: JSON.stringify(entity(id, extra)) };
}

async function all<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

describe('Platform catalog client: streaming verdict', () => {
  it('should find a record refused by asynchronous validation in a failed batch, with its _id and errors', async () => {
    // Prepare
    const before = Date.now() - 1;
    const sink = new StreamingSink({
      target: {
        inletUrl: aep.inletUrl(CONNECTION),
        datasetId: DATASET,
        schemaId: SCHEMA,
        orgId: CREDS.orgId,
        sandbox: SANDBOX,
        flowId: 'flow-1',
      },
      tokens: tokens(),
      retry: FAST,
      sleep,
    });
    const sent = await sink.send([record('good-1'), record('bad-1', { timestamp: '2024-00-10T22:07:56Z' })]);
    const client = catalog();

    // Act
    const beforeSettle = await all(client.listBatches({ datasetId: DATASET, createdAfter: before }));
    aep.settle();
    const failed = await all(client.listBatches({ datasetId: DATASET, createdAfter: before, status: 'failed' }));
    const succeeded = await all(client.listBatches({ datasetId: DATASET, status: ['success', 'active'] }));
    const lines = await all(client.failedRecords(failed[0]?.id as string));
    const again = await client.getBatch(failed[0]?.id as string);

    // Assess
    expect(sent.accepted).toEqual(['good-1', 'bad-1']);
    expect(beforeSettle).toEqual([]);
    expect(failed).toHaveLength(1);
    expect(failed[0]).toMatchObject({
      status: 'failed',
      recordCount: 1,
      failedRecordCount: 1,
      datasetIds: [DATASET],
      created: expect.any(Number),
      completed: expect.any(Number),
    });
    expect(succeeded.map((b) => [b.status, b.recordCount])).toEqual([['success', 1]]);
    expect(lines).toHaveLength(1);
    expect(lines[0]?.record?._id).toBe('bad-1');
    expect(platformErrors(lines[0]?.record)).toEqual([
      {
        code: 'format',
        message: expect.stringContaining('is not a valid date-time'),
        path: '#/timestamp',
      },
    ]);
    expect(again).toMatchObject({ id: failed[0]?.id, status: 'failed', failedRecordCount: 1 });
    // The empty _SUCCESS marker is listed but never downloaded.
    expect(requested.some((u) => u.includes('path=_SUCCESS'))).toBe(false);
  });

  it('should read the errors of a record whose envelope Platform refused after accepting it', async () => {
    // Prepare
    const token = (await tokens().auth()).accessToken;
    const schemaRef = { id: SCHEMA, contentType: 'application/vnd.adobe.xed-full+json;version=1.0' };
    const message = {
      header: { schemaRef, imsOrgId: CREDS.orgId, datasetId: DATASET, flowId: 'flow-1', source: {} },
      body: { xdmMeta: { schemaRef }, xdmEntity: entity('nameless-1') },
    };
    await fetch(aep.inletUrl(CONNECTION), {
      method: 'POST',
      headers: {
        authorization: `Bearer ${token}`,
        'x-api-key': CREDS.clientId,
        'x-gw-ims-org-id': CREDS.orgId,
        'x-sandbox-name': SANDBOX,
        'content-type': 'application/json',
      },
      body: JSON.stringify(message),
    });
    aep.settle();
    const client = catalog();

    // Act
    const [batch] = await all(client.listBatches({ datasetId: DATASET, status: 'failed' }));
    const lines = await all(client.failedRecords(batch?.id as string));

    // Assess
    expect(lines.map((l) => l.record?._id)).toEqual(['nameless-1']);
    expect(platformErrors(lines[0]?.record)).toEqual([
      { code: 'streamingValidation', message: 'Payload header is missing Source Name' },
    ]);
  });
});

describe('Platform catalog client: batch ingestion verdict', () => {
  it('should return the row errors of a partially ingested batch from its error diagnostics', async () => {
    // Prepare
    const sink = batchSink();
    const good = Array.from({ length: 9 }, (_, i) => JSON.stringify(entity(`ok-${i}`)));
    const missing = JSON.stringify(entity('missing-ts', { timestamp: undefined }));
    const batchId = await sink.createBatch({ enableErrorDiagnostics: true, partialIngestionPercent: 20 });
    await sink.uploadFile(batchId, 'part-00000.json', `${[...good, missing].join('\n')}\n{not json\n`);
    await sink.completeBatch(batchId);
    const client = catalog();

    // Act
    const batch = await client.getBatch(batchId);
    const rows = await all(client.rowErrors(batchId));
    const failedFiles = await all(client.failedRecords(batchId));

    // Assess
    expect(batch).toMatchObject({ status: 'success', recordCount: 11, failedRecordCount: 2, datasetIds: [DATASET] });
    expect(batch.errors?.map((e) => e.code)).toContain('INGEST-1212-400');
    const byFile = (name: string): DataAccessLine[] => rows.filter((r) => r.file === name);
    expect(byFile('conversion_errors_0.json').map((r) => r.record?._id)).toEqual(['missing-ts']);
    expect(platformErrors(byFile('conversion_errors_0.json')[0]?.record)).toEqual([
      { code: '1555', message: expect.any(String) },
    ]);
    expect(byFile('parsing_errors_0.json').map((r) => r.record?._corrupt_record)).toEqual(['{not json']);
    expect(platformErrors(byFile('parsing_errors_0.json')[0]?.record)).toEqual([
      { code: '1401', message: expect.any(String) },
    ]);
    expect(failedFiles).toEqual([]);
    expect(aep.acceptedIds(DATASET)).toHaveLength(9);
  });

  it('should yield no row errors for a batch without error diagnostics (404 for the directory)', async () => {
    // Prepare
    const sink = batchSink();
    const batchId = await sink.createBatch();
    await sink.uploadFile(batchId, 'part-00000.json', `${JSON.stringify(entity('only-1'))}\n`);
    await sink.completeBatch(batchId);

    // Act
    const rows = await all(catalog().rowErrors(batchId));

    // Assess
    expect(rows).toEqual([]);
    expect(requested.filter((u) => u.includes('/meta'))).toHaveLength(1);
  });

  it('should page over more than 100 batches oldest first, each exactly once, with limit 100', async () => {
    // Prepare
    const sink = batchSink();
    const created: string[] = [];
    for (let i = 0; i < 205; i += 1) created.push(await sink.createBatch());
    const client = catalog();

    // Act
    const listed = await all(client.listBatches({ datasetId: DATASET }));
    const loading = await all(client.listBatches({ datasetId: DATASET, status: 'loading', createdAfter: 0 }));

    // Assess
    expect(listed.map((b) => b.id)).toEqual(created);
    expect(loading).toHaveLength(205);
    const pages = requested.filter((u) => new URL(u).pathname === '/data/foundation/catalog/batches');
    expect(pages).toHaveLength(6);
    for (const page of pages) {
      expect(new URL(page).searchParams.get('limit')).toBe('100');
      expect(new URL(page).searchParams.get('orderBy')).toBe('asc:created');
    }
    expect(pages.slice(0, 3).map((u) => new URL(u).searchParams.get('start'))).toEqual(['0', '100', '200']);
  });

  it('should retry a Catalog read Platform answered 503', async () => {
    // Prepare
    const batchId = await batchSink().createBatch();
    aep.injectFault({ kind: 'status', target: 'catalog', status: 503 });

    // Act
    const batch = await catalog().getBatch(batchId);

    // Assess
    expect(batch).toMatchObject({ id: batchId, status: 'loading' });
    expect(requested.filter((u) => u.endsWith(`/catalog/batches/${batchId}`))).toHaveLength(2);
  });
});
