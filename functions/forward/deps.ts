/**
 * Builds the forward path's dependencies from configuration: one place for the Lambda handler and the CLI.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { type AepConfig, type Config, ConfigError } from '#common/config';
import { ImsTokenProvider, type AepCredentials } from '#aep/ims';
import { StreamingSink } from '#aep/streaming';
import { BatchSink } from '#aep/batch';
import { PlatformCatalog } from '#aep/catalog';
import { type Log, logger } from '#common/log';
import { type Mapper, compileMapper } from '#mapping/mapper';
import type { MappingConfig } from '#mapping/config';
import { AepSecretSchema, type SecretReader, rereadAfterFirst, secretFromManager, staticSecret } from '#common/secrets';
import { StagingLayout } from '#staging/layout';
import type { Manifest } from '#staging/manifest';
import { createS3Client } from '#staging/s3';
import type { PlatformReader } from '#verify/platform';
import { sqsFanOut } from './fan-out.ts';
import { loadMappingConfig } from './mapping-source.ts';
import type { ForwardDeps, RecordSink } from './window.ts';

export interface ForwardDepsOverrides {
  readonly s3?: S3Client;
  readonly secretsManager?: SecretsManagerClient;
  readonly fetch?: typeof fetch;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly log?: Log;
  readonly maxInFlight?: number;
  /** Replaces the SQS sender of the fan-out (tests: the rig's queue). */
  readonly fanOut?: ForwardDeps['fanOut'];
}

export type ForwardBaseDeps = Omit<ForwardDeps, 'deadlineMs'> & {
  readonly aep: AepConfig;
  readonly mapping: MappingConfig;
  /** Catalog and Data Access reads for the verifier (functions/verify). */
  readonly platform: PlatformReader;
};

export function aepCredentials(
  aep: AepConfig,
  secretsManager: () => SecretsManagerClient,
): SecretReader<AepCredentials> {
  if ('secretId' in aep.credentials) {
    return secretFromManager(
      secretsManager(),
      aep.credentials.secretId,
      AepSecretSchema,
      'AEP OAuth Server-to-Server',
    ) as SecretReader<AepCredentials>;
  }
  return staticSecret<AepCredentials>(aep.credentials);
}

export async function createForwardDeps(config: Config, o: ForwardDepsOverrides = {}): Promise<ForwardBaseDeps> {
  const aep = config.aep;
  if (aep === undefined)
    throw new ConfigError(['AEP_DATASET_ID, AEP_SCHEMA_ID and AEP_TENANT_ID are required to forward events']);
  const s3 = o.s3 ?? createS3Client();
  const log = o.log ?? logger;
  const now = o.now ?? Date.now;
  let sm = o.secretsManager;
  const secret = aepCredentials(aep, () => (sm ??= new SecretsManagerClient({})));
  const tokens = new ImsTokenProvider({
    imsUrl: aep.imsUrl,
    // After a refused token the provider is invalidated; read the secret again then, so a rotation is picked up.
    credentials: rereadAfterFirst(secret),
    ...(o.fetch ? { fetch: o.fetch } : {}),
    now,
    ...(o.sleep ? { sleep: o.sleep } : {}),
    log,
  });
  const common = { ...(o.fetch ? { fetch: o.fetch } : {}), now, ...(o.sleep ? { sleep: o.sleep } : {}), log };
  let sink: RecordSink;
  if (aep.sink === 'batch') {
    const batches = new BatchSink({
      target: { platformUrl: aep.platformUrl, datasetId: aep.datasetId, sandbox: aep.sandbox },
      tokens,
      ...common,
    });
    sink = {
      kind: 'batch',
      batches: {
        // Partial ingestion and error diagnostics from configuration (partial.md; api-overview.md "Create batch").
        createBatch: () =>
          batches.createBatch({
            enableErrorDiagnostics: aep.batchErrorDiagnostics,
            ...(aep.batchPartialIngestionPercent > 0
              ? { partialIngestionPercent: aep.batchPartialIngestionPercent }
              : {}),
          }),
        uploadFile: (id, name, body) => batches.uploadFile(id, name, body),
        completeBatch: (id) => batches.completeBatch(id),
        abortBatch: (id) => batches.abortBatch(id),
        batchStatus: (id) => batches.batchStatus(id),
      },
    };
  } else {
    const streaming = new StreamingSink({
      target: {
        inletUrl: aep.inletUrl ?? '',
        datasetId: aep.datasetId,
        schemaId: aep.schemaId,
        schemaVersion: aep.schemaVersion,
        sandbox: aep.sandbox,
        flowId: aep.flowId ?? '',
      },
      tokens,
      ...(o.maxInFlight ? { maxInFlight: o.maxInFlight } : {}),
      // Profile's streaming throughput (DEFAULTS.profileRecordsPerSecond) holds only for Profile-enabled datasets.
      ...(aep.profileEnabled ? { maxRecordsPerSecond: aep.profileRecordsPerSecond } : {}),
      ...common,
    });
    sink = { kind: 'streaming', send: (records, opts) => streaming.send(records, opts) };
  }
  const platform = new PlatformCatalog({
    target: { platformUrl: aep.platformUrl, sandbox: aep.sandbox },
    tokens,
    ...common,
  });
  const mapping = await loadMappingConfig(aep.mapping, s3);
  const mappers = new Map<string, Mapper>();
  const mapperFor = (m: Manifest): Mapper => {
    const key = `${m.projectId}|${m.project.timezone}|${m.project.legacyLocalTime}`;
    let mapper = mappers.get(key);
    if (mapper === undefined) {
      mapper = compileMapper(mapping, {
        projectId: m.projectId,
        tenant: aep.tenantId,
        projectTimezone: m.project.timezone,
        legacyLocalTime: m.project.legacyLocalTime,
        profile: aep.profileEnabled,
      });
      mappers.set(key, mapper);
    }
    return mapper;
  };
  const fanOut = o.fanOut ?? (aep.forwardQueueUrl !== undefined ? sqsFanOut(aep.forwardQueueUrl) : undefined);
  return {
    s3,
    ...(fanOut !== undefined ? { fanOut } : {}),
    bucket: config.staging.bucket,
    layout: new StagingLayout(config.staging.prefix),
    sink,
    mapperFor,
    now,
    ...(o.sleep ? { sleep: o.sleep } : {}),
    log,
    aep,
    mapping,
    platform,
  };
}
