/**
 * Builds the export path's dependencies from configuration: one place for the Lambda handler and the CLI.
 * AWS clients are created once per container and may be injected (tests point them at s3rver or a fake).
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { type Config, type MixpanelConfig, ConfigError } from '#common/config';
import { type Log, logger } from '#common/log';
import { QueryBudget } from '#mixpanel/budget';
import { type MixpanelCredentials, MixpanelExportClient } from '#mixpanel/client';
import { MixpanelSecretSchema, type SecretReader, secretFromManager, staticSecret } from '#common/secrets';
import { StagingLayout } from '#staging/layout';
import { createS3Client } from '#staging/s3';
import { StateStore } from '#staging/state';
import { sleep as realSleep } from '#common/retry';
import { type ExportDeps, dateZone } from './run.ts';

export interface ExportDepsOverrides {
  readonly s3?: S3Client;
  readonly secretsManager?: SecretsManagerClient;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly log?: Log;
  readonly onWindow?: ExportDeps['onWindow'];
}

export function mixpanelCredentials(
  m: MixpanelConfig,
  secretsManager: () => SecretsManagerClient,
): SecretReader<MixpanelCredentials> {
  if ('secretId' in m.credentials) {
    return secretFromManager(
      secretsManager(),
      m.credentials.secretId,
      MixpanelSecretSchema,
      'Mixpanel service account',
    );
  }
  return staticSecret({ username: m.credentials.username, secret: m.credentials.secret });
}

export type ExportBaseDeps = Omit<ExportDeps, 'remainingMs'>;

export function createExportDeps(config: Config, o: ExportDepsOverrides = {}): ExportBaseDeps {
  const mixpanel = config.mixpanel;
  if (mixpanel === undefined) throw new ConfigError(['MIXPANEL_PROJECT_ID is required to export events']);
  const s3 = o.s3 ?? createS3Client();
  const now = o.now ?? Date.now;
  const sleep = o.sleep ?? realSleep;
  const log = o.log ?? logger;
  const layout = new StagingLayout(config.staging.prefix);
  const bucket = config.staging.bucket;
  const budget = new QueryBudget({
    s3,
    bucket,
    key: layout.budgetKey(mixpanel.projectId),
    perHour: config.windows.queriesPerHour,
    now,
    sleep,
  });
  let sm = o.secretsManager;
  const client = new MixpanelExportClient({
    baseUrl: mixpanel.apiBaseUrl,
    projectId: mixpanel.projectId,
    credentials: mixpanelCredentials(mixpanel, () => (sm ??= new SecretsManagerClient({}))),
    beforeRequest: () => budget.acquire(),
    onRetry: (r) => log.warn('retrying Mixpanel export', r),
    sleep,
    dateZone: dateZone(mixpanel),
  });
  return {
    s3,
    bucket,
    layout,
    client,
    state: new StateStore(s3, bucket, layout, mixpanel.projectId),
    mixpanel,
    windows: config.windows,
    now,
    log,
    ...(o.onWindow ? { onWindow: o.onWindow } : {}),
  };
}
