/**
 * Every external system of the product on loopback: the Mixpanel export emulator, S3 (s3rver), the AEP emulator
 * (IMS + DCS + Batch Ingestion) and SQS (the forward queue and its dead-letter queue), with the matching configuration. Used by `npm start`, the integration tests and
 * the benchmarks, so all three exercise the real clients against real HTTP servers.
 */
import { randomBytes } from 'node:crypto';
import { SQSClient } from '@aws-sdk/client-sqs';
import { type AepEmulator, type AepEmulatorOptions, startAepEmulator } from '#emulators/aep/server';
import type { DatasetSpec } from '#emulators/mixpanel/generator';
import { type MixpanelEmulator, type MixpanelEmulatorOptions, startMixpanelEmulator } from '#emulators/mixpanel/server';
import { type LocalS3, startLocalS3 } from '#emulators/s3';
import { type SqsEmulator, startSqsEmulator } from '#emulators/sqs/server';
import { type Config, readConfig } from '#common/config';

export interface LocalStackOptions {
  readonly projectId?: string;
  readonly dataset?: Omit<DatasetSpec, 'projectTimezone' | 'legacyLocalTime'>;
  readonly timezone?: string;
  readonly legacyLocalTime?: boolean;
  readonly sink?: 'streaming' | 'batch';
  /** Folder for s3rver (kept after close); a temporary one by default. */
  readonly s3Directory?: string;
  readonly mixpanel?: Partial<MixpanelEmulatorOptions>;
  readonly keep?: 'records' | 'ids';
  /** AEP emulator options beyond the stack's own (e.g. the `syncValidationForTests` convenience). */
  readonly aep?: Pick<AepEmulatorOptions, 'syncValidationForTests' | 'streamingSliceMs' | 'batchSettleDelayMs'>;
  readonly mapping?: string;
  /** The dataset is enabled for Real-Time Customer Profile (emulator and AEP_PROFILE_ENABLED=true). @default false */
  readonly profile?: boolean;
  /** Extra environment (window settings, …). */
  readonly env?: Record<string, string>;
  readonly now?: () => number;
}

export interface LocalStack {
  readonly mixpanel: MixpanelEmulator;
  readonly aep: AepEmulator;
  readonly s3: LocalS3;
  /** The SQS stand-in holding the forward queue (`FORWARD_QUEUE_URL` of a deployed forwarder) and its DLQ. */
  readonly sqs: SqsEmulator;
  readonly forwardQueue: { readonly url: string; readonly arn: string };
  /** A client of the SQS stand-in (the caller destroys it). */
  sqsClient(): SQSClient;
  /** The environment a deployed function would have, with local credentials instead of secret ids. */
  readonly env: Record<string, string>;
  readonly exportConfig: Config;
  readonly forwardConfig: Config;
  readonly bucket: string;
  readonly datasetId: string;
  readonly secrets: { readonly mixpanelSecret: string; readonly aepClientSecret: string };
  close(): Promise<void>;
}

export const LOCAL_TENANT = 'acme';

/**
 * The forward queue as the stack configures it (lib/constructs/forwarder.ts): visibility timeout 6 × the forward
 * function's 10-minute timeout, dead-letter queue after 5 receives.
 */
const FORWARD_QUEUE = { name: 'forward', visibilityTimeout: 3600, maxReceiveCount: 5 } as const;

export async function startLocalStack(o: LocalStackOptions = {}): Promise<LocalStack> {
  const projectId = o.projectId ?? '3141592';
  const bucket = 'mixpanel-aep-staging';
  const datasetId = '6650a1b2c3d4e5f6a7b8c9d0';
  const schemaId = `https://ns.adobe.com/${LOCAL_TENANT}/schemas/5e0a8c1f2b3d4e5f60718293a4b5c6d7`;
  const connectionId = 'b7d0c2f1e3a94d5b8c6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4';
  // The HTTP API dataflow from that connection to the dataset (a Flow Service flow id is a UUID).
  const flowId = 'd2b5e0c4-6f1a-4c8e-9b3d-7a2f1e0c5b94';
  // Fresh random credentials per run: nothing secret is committed, and tests can look for them in outputs.
  const mixpanelUser = `sa-${randomBytes(4).toString('hex')}.mp-service-account`;
  const mixpanelSecret = randomBytes(16).toString('hex');
  const clientId = randomBytes(16).toString('hex');
  const clientSecret = `p8e-${randomBytes(16).toString('hex')}`;
  const orgId = `${randomBytes(12).toString('hex').toUpperCase()}@AdobeOrg`;

  const s3 = await startLocalS3([bucket], o.s3Directory);
  const sqs = await startSqsEmulator({
    queues: [
      { name: `${FORWARD_QUEUE.name}-dlq` },
      {
        name: FORWARD_QUEUE.name,
        visibilityTimeout: FORWARD_QUEUE.visibilityTimeout,
        redrive: { deadLetterQueue: `${FORWARD_QUEUE.name}-dlq`, maxReceiveCount: FORWARD_QUEUE.maxReceiveCount },
      },
    ],
  });
  const mixpanel = await startMixpanelEmulator({
    projects: [
      {
        projectId,
        timezone: o.timezone ?? 'UTC',
        legacyLocalTime: o.legacyLocalTime ?? false,
        ...(o.dataset
          ? {
              dataset: {
                ...o.dataset,
                projectTimezone: o.timezone ?? 'UTC',
                legacyLocalTime: o.legacyLocalTime ?? false,
              },
            }
          : {}),
      },
    ],
    serviceAccounts: [{ username: mixpanelUser, secret: mixpanelSecret, projectIds: [projectId] }],
    ...(o.now ? { now: o.now } : {}),
    ...o.mixpanel,
  });
  const aep = await startAepEmulator(
    {
      clients: [{ clientId, clientSecret, orgId }],
      tenant: LOCAL_TENANT,
      datasets: [{ id: datasetId, schemaId, ...(o.profile === true ? { profile: true } : {}) }],
      connections: [{ id: connectionId, authenticated: true }],
      flows: [{ id: flowId, connectionId, datasetId }],
      keep: o.keep ?? 'records',
      ...o.aep,
    },
    // Platform and the connector share one clock: the simulated one, when the caller runs on simulated time.
    o.now,
  );
  const env: Record<string, string> = {
    MIXPANEL_PROJECT_ID: projectId,
    MIXPANEL_API_BASE_URL: mixpanel.url,
    MIXPANEL_USERNAME: mixpanelUser,
    MIXPANEL_SECRET: mixpanelSecret,
    MIXPANEL_PROJECT_TIMEZONE: o.timezone ?? 'UTC',
    MIXPANEL_LEGACY_LOCAL_TIME: String(o.legacyLocalTime ?? false),
    STAGING_BUCKET: bucket,
    AEP_CLIENT_ID: clientId,
    AEP_CLIENT_SECRET: clientSecret,
    AEP_ORG_ID: orgId,
    AEP_IMS_URL: aep.imsTokenUrl,
    AEP_SINK: o.sink ?? 'streaming',
    AEP_INLET_URL: aep.inletUrl(connectionId),
    AEP_FLOW_ID: flowId,
    AEP_PLATFORM_URL: aep.platformUrl,
    AEP_SANDBOX: 'prod',
    AEP_DATASET_ID: datasetId,
    AEP_SCHEMA_ID: schemaId,
    AEP_TENANT_ID: LOCAL_TENANT,
    MAPPING: o.mapping ?? 'default',
    ...(o.profile === true ? { AEP_PROFILE_ENABLED: 'true' } : {}),
    ...o.env,
  };
  return {
    mixpanel,
    aep,
    s3,
    sqs,
    forwardQueue: { url: sqs.queueUrl(FORWARD_QUEUE.name), arn: sqs.queueArn(FORWARD_QUEUE.name) },
    sqsClient: () =>
      new SQSClient({
        endpoint: sqs.url,
        region: 'us-east-1',
        credentials: { accessKeyId: 'LOCAL', secretAccessKey: 'LOCAL' },
      }),
    env,
    exportConfig: readConfig(env, 'export'),
    forwardConfig: readConfig(env, 'forward'),
    bucket,
    datasetId,
    secrets: { mixpanelSecret, aepClientSecret: clientSecret },
    close: async () => {
      await Promise.allSettled([mixpanel.close(), aep.close(), sqs.close()]);
      await s3.close();
    },
  };
}
