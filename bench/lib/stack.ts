/**
 * The benchmark's external systems, each in a process of its own (their CPU is not charged to the measured process):
 * the Mixpanel export emulator (rate limit off, one project per dataset), the AEP emulator (IMS + DCS, keeping only
 * ids) and s3rver. Returns the environment a deployed function would have, pointed at them.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { DatasetSpec } from '#emulators/mixpanel/generator';
import {
  LAMBDA_MALLOC_ENV,
  LAMBDA_NODE_ARGS,
  LAMBDA_NODE_OPTIONS,
  runtimeOldSpaceMb,
} from '../../lib/constructs/connector-function.ts';
import { type Service, startService } from './proc.ts';

export interface BenchProject {
  readonly projectId: string;
  readonly dataset: DatasetSpec;
}

export interface BenchStack {
  readonly mixpanelUrl: string;
  readonly aepUrl: string;
  readonly s3Url: string;
  readonly bucket: string;
  readonly credentials: { readonly username: string; readonly secret: string };
  /** Environment of a connector function for `projectId` (staging prefix set per run by the caller). */
  env(projectId: string): Record<string, string>;
  /** Current AEP emulator counters (`GET /__emulator/state`). */
  aepState(): Promise<{
    stats: { requests: number; maxRequestBytes: number; messagesAccepted: number; messagesRejected: number };
    acceptedTotal: number;
    /** Records whose `_id` the emulator already held (over every dataset). */
    duplicatesTotal: number;
  }>;
  readonly pids: Record<string, number>;
  close(): Promise<void>;
}

export const BENCH_TENANT = 'acme';

export async function startBenchStack(projects: readonly BenchProject[]): Promise<BenchStack> {
  const dir = await mkdtemp(path.join(tmpdir(), 'mixpanel-aep-bench-'));
  const bucket = 'mixpanel-aep-bench';
  const username = `sa-${randomBytes(4).toString('hex')}.mp-service-account`;
  const secret = randomBytes(16).toString('hex');
  const clientId = randomBytes(16).toString('hex');
  const clientSecret = `p8e-${randomBytes(16).toString('hex')}`;
  const orgId = `${randomBytes(12).toString('hex').toUpperCase()}@AdobeOrg`;
  const datasetId = '6650a1b2c3d4e5f6a7b8c9d0';
  const schemaId = `https://ns.adobe.com/${BENCH_TENANT}/schemas/5e0a8c1f2b3d4e5f60718293a4b5c6d7`;
  const connectionId = 'b7d0c2f1e3a94d5b8c6e7f8091a2b3c4';
  const flowId = '5f0e7c2a-3b1d-4e8f-9a6c-2d4b8e1f0a37'; // the HTTP API dataflow from that connection to the dataset

  const mixpanelConfig = path.join(dir, 'mixpanel.json');
  await writeFile(
    mixpanelConfig,
    JSON.stringify({
      projects: projects.map((p) => ({ projectId: p.projectId, dataset: p.dataset })),
      serviceAccounts: [{ username, secret, projectIds: projects.map((p) => p.projectId) }],
      rateLimit: false,
      control: false,
    }),
  );
  const aepConfig = path.join(dir, 'aep.json');
  await writeFile(
    aepConfig,
    JSON.stringify({
      clients: [{ clientId, clientSecret, orgId }],
      tenant: BENCH_TENANT,
      datasets: [{ id: datasetId, schemaId }],
      connections: [{ id: connectionId, authenticated: true }],
      flows: [{ id: flowId, connectionId, datasetId }],
      keep: 'ids',
    }),
  );
  const services: Array<Service<unknown>> = [];
  const started = await Promise.allSettled([
    startService<{ url: string }>('s3rver', 'bench/services/s3-server.ts', [bucket], {
      nodeArgs: ['--openssl-legacy-provider'],
    }),
    startService<{ url: string }>('Mixpanel emulator', 'emulators/mixpanel/main.ts', ['--config', mixpanelConfig]),
    startService<{ url: string; imsTokenUrl: string; platformUrl: string }>('AEP emulator', 'emulators/aep/main.ts', [
      '--config',
      aepConfig,
    ]),
  ]);
  for (const s of started) if (s.status === 'fulfilled') services.push(s.value as Service<unknown>);
  try {
    const [s3, mixpanel, aep] = started.map((s) => {
      if (s.status === 'rejected') throw s.reason;
      return s.value;
    }) as [
      Service<{ url: string }>,
      Service<{ url: string }>,
      Service<{ url: string; imsTokenUrl: string; platformUrl: string }>,
    ];
    return {
      mixpanelUrl: mixpanel.info.url,
      aepUrl: aep.info.url,
      s3Url: s3.info.url,
      bucket,
      credentials: { username, secret },
      pids: { s3rver: s3.pid, mixpanelEmulator: mixpanel.pid, aepEmulator: aep.pid },
      env: (projectId) => ({
        MIXPANEL_PROJECT_ID: projectId,
        MIXPANEL_API_BASE_URL: mixpanel.info.url,
        MIXPANEL_USERNAME: username,
        MIXPANEL_SECRET: secret,
        MIXPANEL_PROJECT_TIMEZONE: 'UTC',
        WINDOW_MINUTES: '60',
        SETTLE_MINUTES: '0',
        EXPORT_QUERIES_PER_HOUR: '60',
        STAGING_BUCKET: bucket,
        AWS_ENDPOINT_URL_S3: s3.info.url,
        AWS_REGION: 'us-east-1',
        AEP_CLIENT_ID: clientId,
        AEP_CLIENT_SECRET: clientSecret,
        AEP_ORG_ID: orgId,
        AEP_IMS_URL: aep.info.imsTokenUrl,
        AEP_SINK: 'streaming',
        AEP_INLET_URL: `${aep.info.url}/collection/${connectionId}`,
        AEP_FLOW_ID: flowId,
        AEP_PLATFORM_URL: aep.info.platformUrl,
        AEP_SANDBOX: 'prod',
        AEP_DATASET_ID: datasetId,
        AEP_SCHEMA_ID: schemaId,
        AEP_TENANT_ID: BENCH_TENANT,
        MAPPING: 'default',
        // The Node options and malloc settings the stack deploys its functions with, the old-generation limit
        // Lambda's runtime adds on the command line for the functions' memory (the exec wrapper keeps it), and the
        // flags the exec wrapper adds (bench/lib/proc.ts puts them on the worker's command line).
        NODE_OPTIONS: `${LAMBDA_NODE_OPTIONS} --max-old-space-size=${runtimeOldSpaceMb()}`,
        ...LAMBDA_MALLOC_ENV,
        CONNECTOR_NODE_ARGS: LAMBDA_NODE_ARGS,
      }),
      aepState: async () => {
        const res = await fetch(`${aep.info.url}/__emulator/state`);
        return (await res.json()) as Awaited<ReturnType<BenchStack['aepState']>>;
      },
      close: async () => {
        await Promise.allSettled(services.map((s) => s.stop()));
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await Promise.allSettled(services.map((s) => s.stop()));
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}
