/**
 * One configuration schema for the export Lambda, the forward Lambda and the local CLI.
 *
 * The variable names are a contract (docs/architecture.md#configuration). The environment is read once per container
 * (`readConfig` is called from a lazily memoised dependency factory in each handler) and every bad variable is named
 * in one error, with what it expects, so an operator fixes them all in one go. The rules themselves live in
 * settings.ts, shared with the deployment file's schema (lib/config.ts).
 */
import * as z from 'zod';
import { ConnectorError } from '#common/errors';
import {
  batchIngestionProblem,
  DEFAULTS,
  MIXPANEL_EXPORT_HOSTS,
  type MixpanelRegion,
  type WindowMode,
  rules,
} from './settings.ts';

export {
  DEFAULT_IMS_URL,
  DEFAULT_PLATFORM_URL,
  DEFAULTS,
  MIXPANEL_EXPORT_HOSTS,
  type MixpanelRegion,
  type WindowMode,
} from './settings.ts';

/** `schemaRef.contentType` names the schema's version, `application/vnd.adobe.xed-full+json;version={SCHEMA_VERSION}`
 * (experience-platform-apis streaming-ingestion.yaml, `SchemaReference`); the Schema Registry reports it as the
 * schema's `version`. `1.0` is what the connector always sent and what a new schema starts at. */
export const DEFAULT_SCHEMA_VERSION = '1.0';
export type Role = 'export' | 'forward' | 'local';

const bool = (name: string) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: `${name} must be true or false` })
    .transform((v) => v === 'true' || v === '1' || v === 'yes');

/** A whole number from its decimal text, then the shared rule for its range. */
const int = (name: string, rule: (label: string) => z.ZodType<number, number>) =>
  z.string().regex(/^\d+$/, `${name} must be a whole number`).transform(Number).pipe(rule(name));

const optional = <T extends z.ZodType>(schema: T) =>
  z.preprocess((v) => (typeof v === 'string' && v.trim() === '' ? undefined : v), schema.optional());

/** Raw environment schema: every variable optional here; what a role requires is checked below. */
const EnvSchema = z.object({
  MIXPANEL_PROJECT_ID: optional(rules.projectId('MIXPANEL_PROJECT_ID')),
  MIXPANEL_REGION: optional(rules.region('MIXPANEL_REGION')),
  MIXPANEL_SECRET_ID: optional(z.string()),
  MIXPANEL_USERNAME: optional(z.string()),
  MIXPANEL_SECRET: optional(z.string()),
  MIXPANEL_API_BASE_URL: optional(rules.httpUrl('MIXPANEL_API_BASE_URL')),
  MIXPANEL_PROJECT_TIMEZONE: optional(rules.timeZone('MIXPANEL_PROJECT_TIMEZONE')),
  MIXPANEL_LEGACY_LOCAL_TIME: optional(bool('MIXPANEL_LEGACY_LOCAL_TIME')),
  WINDOW_MINUTES: optional(int('WINDOW_MINUTES', rules.windowMinutes)),
  WINDOW_MODE: optional(rules.windowMode('WINDOW_MODE')),
  SETTLE_MINUTES: optional(int('SETTLE_MINUTES', rules.settleMinutes)),
  LOOKBACK_DAYS: optional(int('LOOKBACK_DAYS', rules.lookbackDays)),
  MAX_WINDOWS_PER_RUN: optional(int('MAX_WINDOWS_PER_RUN', rules.maxWindowsPerRun)),
  EXPORT_QUERIES_PER_HOUR: optional(int('EXPORT_QUERIES_PER_HOUR', rules.queriesPerHour)),
  MAX_EVENTS_PER_EXPORT: optional(int('MAX_EVENTS_PER_EXPORT', rules.maxEventsPerExport)),
  STAGING_BUCKET: optional(rules.bucketName('STAGING_BUCKET')),
  STAGING_PREFIX: optional(rules.stagingPrefix('STAGING_PREFIX')),
  AEP_SECRET_ID: optional(z.string()),
  AEP_CLIENT_ID: optional(z.string()),
  AEP_CLIENT_SECRET: optional(z.string()),
  AEP_ORG_ID: optional(z.string().regex(/@AdobeOrg$/, 'AEP_ORG_ID must end with @AdobeOrg')),
  AEP_SCOPES: optional(z.string()),
  AEP_IMS_URL: optional(rules.httpUrl('AEP_IMS_URL')),
  AEP_SINK: optional(rules.sink('AEP_SINK')),
  AEP_INLET_URL: optional(rules.inletUrl('AEP_INLET_URL')),
  AEP_PLATFORM_URL: optional(rules.httpUrl('AEP_PLATFORM_URL')),
  AEP_SANDBOX: optional(rules.sandbox('AEP_SANDBOX')),
  AEP_DATASET_ID: optional(rules.datasetId('AEP_DATASET_ID')),
  AEP_SCHEMA_ID: optional(rules.schemaId('AEP_SCHEMA_ID')),
  AEP_TENANT_ID: optional(rules.tenantId('AEP_TENANT_ID')),
  AEP_FLOW_ID: optional(z.string().regex(/^\S+$/, 'AEP_FLOW_ID must be the dataflow id')),
  FORWARD_QUEUE_URL: optional(rules.httpUrl('FORWARD_QUEUE_URL')),
  AEP_SCHEMA_VERSION: optional(
    z.string().regex(/^\d+(\.\d+)*$/, 'AEP_SCHEMA_VERSION must be the schema version, e.g. 1.0'),
  ),
  AEP_VERIFY_SETTLE_MINUTES: optional(int('AEP_VERIFY_SETTLE_MINUTES', rules.verifySettleMinutes)),
  AEP_BATCH_PARTIAL_INGESTION_PERCENT: optional(
    z
      .string()
      .regex(/^\d+(\.\d+)?$/, 'AEP_BATCH_PARTIAL_INGESTION_PERCENT must be a number')
      .transform(Number)
      .pipe(rules.batchPartialIngestionPercent('AEP_BATCH_PARTIAL_INGESTION_PERCENT')),
  ),
  AEP_BATCH_ERROR_DIAGNOSTICS: optional(bool('AEP_BATCH_ERROR_DIAGNOSTICS')),
  AEP_PROFILE_ENABLED: optional(bool('AEP_PROFILE_ENABLED')),
  AEP_PROFILE_RECORDS_PER_SECOND: optional(int('AEP_PROFILE_RECORDS_PER_SECOND', rules.profileRecordsPerSecond)),
  MAPPING: optional(z.string()),
});

export interface MixpanelConfig {
  readonly projectId: string;
  readonly region: MixpanelRegion;
  /** Origin of the export host; the client appends /api/2.0/export. */
  readonly apiBaseUrl: string;
  readonly credentials: { readonly secretId: string } | { readonly username: string; readonly secret: string };
  readonly projectTimezone: string;
  readonly legacyLocalTime: boolean;
}

export interface WindowConfig {
  readonly minutes: number;
  readonly mode: WindowMode;
  readonly settleMinutes: number;
  readonly lookbackDays: number;
  /** Upper bound on windows exported by one invocation (catch-up and backfills continue in the next one). */
  readonly maxWindowsPerRun: number;
  /** Share of Mixpanel's 60 queries/hour this connector may use (leaves room for other tools on the project). */
  readonly queriesPerHour: number;
  /** Ceiling of events one Mixpanel query is sized for (functions/windows/size.ts). */
  readonly maxEventsPerExport: number;
}

export interface StagingConfig {
  readonly bucket: string;
  readonly prefix: string;
}

export interface AepConfig {
  readonly credentials:
    | { readonly secretId: string }
    | { readonly clientId: string; readonly clientSecret: string; readonly orgId: string; readonly scopes?: string[] };
  readonly imsUrl: string;
  readonly sink: 'streaming' | 'batch';
  readonly inletUrl?: string;
  readonly platformUrl: string;
  readonly sandbox: string;
  readonly datasetId: string;
  readonly schemaId: string;
  /** Tenant id without the leading underscore. */
  readonly tenantId: string;
  /** The HTTP API dataflow's id, sent as `header.flowId` of every streaming message (required for streaming). */
  readonly flowId?: string;
  /**
   * The forward queue (the stack sets it): a partitioned window's partitions are sent there as messages of their own
   * and forwarded concurrently (streaming sink). Absent: one invocation forwards every partition in turn.
   */
  readonly forwardQueueUrl?: string;
  /** Schema version named in `schemaRef.contentType` (`…xed-full+json;version={SCHEMA_VERSION}`). */
  readonly schemaVersion: string;
  /** Minutes after a streaming run before the verifier reads Platform's verdict (its data-lake latency). */
  readonly verifySettleMinutes: number;
  /** Batch sink: `partialIngestionPercent` of each batch; 0 sends none (any failed row fails the batch). */
  readonly batchPartialIngestionPercent: number;
  /** Batch sink: `enableErrorDiagnostics` of each batch (per-row errors in Catalog and the Data Access API). */
  readonly batchErrorDiagnostics: boolean;
  /**
   * The dataset is enabled for Real-Time Customer Profile: records over Profile's 10 KB event limit and records
   * without identity are rejected before sending, and the streaming sink keeps to `profileRecordsPerSecond`.
   */
  readonly profileEnabled: boolean;
  /** Streaming send rate while Profile is enabled (records per second). */
  readonly profileRecordsPerSecond: number;
  readonly mapping: string;
}

export interface Config {
  readonly mixpanel?: MixpanelConfig;
  readonly windows: WindowConfig;
  readonly staging: StagingConfig;
  readonly aep?: AepConfig;
}

/** Raised with every bad or missing variable and what it should be. */
export class ConfigError extends ConnectorError {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    const count = `${problems.length} problem${problems.length === 1 ? '' : 's'}`;
    super(
      'config',
      `Invalid configuration (${count}):\n  - ${problems.join('\n  - ')}\n` +
        "Set these environment variables (see the README's configuration table) and try again.",
    );
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/**
 * Reads and validates the environment for one role.
 * - `export` needs Mixpanel + staging; `forward` needs AEP + staging; `local` (CLI) needs whatever is present.
 * Deployed Lambdas (AWS_LAMBDA_FUNCTION_NAME set) must use secret ids, never plain secrets in the environment.
 */
export function readConfig(env: NodeJS.ProcessEnv, role: Role): Config {
  // Each variable is parsed on its own so that type errors and missing variables are all reported together.
  const problems: string[] = [];
  const values: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(EnvSchema.shape)) {
    const result = (schema as z.ZodType).safeParse(env[name]);
    if (result.success) values[name] = result.data;
    else
      problems.push(
        `${name}: ${result.error.issues.map((i) => i.message).join('; ')} (got ${JSON.stringify(redactable(name, env[name]))})`,
      );
  }
  const e = values as z.infer<typeof EnvSchema>;
  const deployed = env.AWS_LAMBDA_FUNCTION_NAME !== undefined;
  const need = (name: keyof typeof e, why: string): void => {
    if (e[name] === undefined && env[name] === undefined) problems.push(`${name} is required ${why}`);
  };

  const wantsMixpanel = role === 'export' || (role === 'local' && env.MIXPANEL_PROJECT_ID !== undefined);
  const wantsAep = role === 'forward' || (role === 'local' && env.AEP_DATASET_ID !== undefined);

  let mixpanel: MixpanelConfig | undefined;
  if (wantsMixpanel) {
    need('MIXPANEL_PROJECT_ID', 'to export events (the numeric Mixpanel project id)');
    const plain = e.MIXPANEL_USERNAME !== undefined && e.MIXPANEL_SECRET !== undefined;
    if (e.MIXPANEL_SECRET_ID === undefined && !plain) {
      problems.push(
        'MIXPANEL_SECRET_ID is required (Secrets Manager id of {"username","secret"}); locally MIXPANEL_USERNAME and MIXPANEL_SECRET may be used instead',
      );
    }
    if (deployed && plain && e.MIXPANEL_SECRET_ID === undefined) {
      problems.push(
        'MIXPANEL_SECRET must not be set in a deployed Lambda: store the service account in Secrets Manager and set MIXPANEL_SECRET_ID',
      );
    }
    const region: MixpanelRegion = e.MIXPANEL_REGION ?? DEFAULTS.region;
    mixpanel = {
      projectId: e.MIXPANEL_PROJECT_ID ?? '',
      region,
      apiBaseUrl: (e.MIXPANEL_API_BASE_URL ?? MIXPANEL_EXPORT_HOSTS[region]).replace(/\/+$/, ''),
      credentials:
        e.MIXPANEL_SECRET_ID !== undefined
          ? { secretId: e.MIXPANEL_SECRET_ID }
          : { username: e.MIXPANEL_USERNAME ?? '', secret: e.MIXPANEL_SECRET ?? '' },
      projectTimezone: e.MIXPANEL_PROJECT_TIMEZONE ?? 'UTC',
      legacyLocalTime: e.MIXPANEL_LEGACY_LOCAL_TIME ?? false,
    };
  }

  need('STAGING_BUCKET', 'to stage events (the S3 bucket name)');

  let aep: AepConfig | undefined;
  if (wantsAep) {
    const sink = e.AEP_SINK ?? DEFAULTS.sink;
    need('AEP_DATASET_ID', 'to forward events (the target dataset id)');
    need('AEP_SCHEMA_ID', 'to forward events (the schema $id)');
    need('AEP_TENANT_ID', 'to forward events (the tenant id, e.g. acme)');
    if (sink === 'streaming') need('AEP_INLET_URL', 'when AEP_SINK=streaming (the streaming connection URL)');
    // DCS requires `flowId` in every message header (streaming-ingestion.yaml, `messageHeader.required`).
    if (sink === 'streaming') {
      need(
        'AEP_FLOW_ID',
        'when AEP_SINK=streaming (the id of the HTTP API dataflow from the streaming connection to the dataset: ' +
          'Platform UI, Sources > Dataflows; or GET /flows of the Flow Service API; `npm run cli -- provision` ' +
          'prints it)',
      );
    }
    const plain = e.AEP_CLIENT_ID !== undefined && e.AEP_CLIENT_SECRET !== undefined && e.AEP_ORG_ID !== undefined;
    if (e.AEP_SECRET_ID === undefined && !plain) {
      problems.push(
        'AEP_SECRET_ID is required (Secrets Manager id of {"clientId","clientSecret","orgId","scopes"?}); locally AEP_CLIENT_ID, AEP_CLIENT_SECRET and AEP_ORG_ID may be used instead',
      );
    }
    if (deployed && plain && e.AEP_SECRET_ID === undefined) {
      problems.push(
        'AEP_CLIENT_SECRET must not be set in a deployed Lambda: store the credentials in Secrets Manager and set AEP_SECRET_ID',
      );
    }
    const batchPartialIngestionPercent = e.AEP_BATCH_PARTIAL_INGESTION_PERCENT ?? DEFAULTS.batchPartialIngestionPercent;
    const batchErrorDiagnostics = e.AEP_BATCH_ERROR_DIAGNOSTICS ?? DEFAULTS.batchErrorDiagnostics;
    const batchProblem = batchIngestionProblem(batchPartialIngestionPercent, batchErrorDiagnostics);
    if (batchProblem !== undefined) {
      problems.push(`AEP_BATCH_ERROR_DIAGNOSTICS=false with AEP_BATCH_PARTIAL_INGESTION_PERCENT > 0: ${batchProblem}`);
    }
    const scopes = e.AEP_SCOPES?.split(',')
      .map((s) => s.trim())
      .filter(Boolean);
    aep = {
      credentials:
        e.AEP_SECRET_ID !== undefined
          ? { secretId: e.AEP_SECRET_ID }
          : {
              clientId: e.AEP_CLIENT_ID ?? '',
              clientSecret: e.AEP_CLIENT_SECRET ?? '',
              orgId: e.AEP_ORG_ID ?? '',
              ...(scopes ? { scopes } : {}),
            },
      imsUrl: e.AEP_IMS_URL ?? DEFAULTS.imsUrl,
      sink,
      ...(e.AEP_INLET_URL !== undefined ? { inletUrl: e.AEP_INLET_URL } : {}),
      platformUrl: (e.AEP_PLATFORM_URL ?? DEFAULTS.platformUrl).replace(/\/+$/, ''),
      sandbox: e.AEP_SANDBOX ?? DEFAULTS.sandbox,
      datasetId: e.AEP_DATASET_ID ?? '',
      schemaId: e.AEP_SCHEMA_ID ?? '',
      tenantId: (e.AEP_TENANT_ID ?? '').replace(/^_/, ''),
      ...(e.AEP_FLOW_ID !== undefined ? { flowId: e.AEP_FLOW_ID } : {}),
      ...(e.FORWARD_QUEUE_URL !== undefined ? { forwardQueueUrl: e.FORWARD_QUEUE_URL } : {}),
      schemaVersion: e.AEP_SCHEMA_VERSION ?? DEFAULT_SCHEMA_VERSION,
      verifySettleMinutes: e.AEP_VERIFY_SETTLE_MINUTES ?? DEFAULTS.verifySettleMinutes,
      batchPartialIngestionPercent,
      batchErrorDiagnostics,
      profileEnabled: e.AEP_PROFILE_ENABLED ?? DEFAULTS.profileEnabled,
      profileRecordsPerSecond: e.AEP_PROFILE_RECORDS_PER_SECOND ?? DEFAULTS.profileRecordsPerSecond,
      mapping: e.MAPPING ?? DEFAULTS.mapping,
    };
  }

  const windows: WindowConfig = {
    minutes: e.WINDOW_MINUTES ?? DEFAULTS.windowMinutes,
    mode: e.WINDOW_MODE ?? DEFAULTS.windowMode,
    settleMinutes: e.SETTLE_MINUTES ?? DEFAULTS.settleMinutes,
    lookbackDays: e.LOOKBACK_DAYS ?? DEFAULTS.lookbackDays,
    maxWindowsPerRun: e.MAX_WINDOWS_PER_RUN ?? DEFAULTS.maxWindowsPerRun,
    queriesPerHour: e.EXPORT_QUERIES_PER_HOUR ?? DEFAULTS.queriesPerHour,
    maxEventsPerExport: e.MAX_EVENTS_PER_EXPORT ?? DEFAULTS.maxEventsPerExport,
  };
  if (aep?.sink === 'batch' && windows.minutes < 20 && role === 'forward') {
    // ~90 ExperienceEvent batches per day per sandbox for Profile (help/ingestion/guardrails.md): one batch per window.
    problems.push(
      'WINDOW_MINUTES must be at least 20 with AEP_SINK=batch (one Platform batch per window stays under the ~90 batches/day guardrail)',
    );
  }

  if (problems.length > 0) throw new ConfigError(problems);
  return {
    ...(mixpanel ? { mixpanel } : {}),
    windows,
    staging: { bucket: e.STAGING_BUCKET ?? '', prefix: e.STAGING_PREFIX ?? '' },
    ...(aep ? { aep } : {}),
  };
}

/** Values of secret-bearing variables never appear in an error message. */
function redactable(name: string, value: string | undefined): string | undefined {
  return value !== undefined && /SECRET/.test(name) && !name.endsWith('_ID') ? '***' : value;
}
