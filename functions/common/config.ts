/**
 * One configuration schema for the export Lambda, the forward Lambda and the local CLI.
 *
 * The variable names are a contract (ARCHITECTURE.md "Configuration"). The environment is read once per container
 * (`readConfig` is called from a lazily memoised dependency factory in each handler) and every bad variable is named
 * in one error, with what it expects, so an operator fixes them all in one go.
 */
import * as z from 'zod';

/** Mixpanel data residency → export host. https://developer.mixpanel.com/reference/raw-event-export */
export const MIXPANEL_EXPORT_HOSTS = {
  us: 'https://data.mixpanel.com',
  eu: 'https://data-eu.mixpanel.com',
  in: 'https://data-in.mixpanel.com',
} as const;
export type MixpanelRegion = keyof typeof MIXPANEL_EXPORT_HOSTS;

/** Adobe IMS OAuth Server-to-Server token endpoint (experience-platform.en help/landing/api-authentication.md). */
export const DEFAULT_IMS_URL = 'https://ims-na1.adobelogin.com/ims/token/v3';
export const DEFAULT_PLATFORM_URL = 'https://platform.adobe.io';
/** `schemaRef.contentType` names the schema's version, `application/vnd.adobe.xed-full+json;version={SCHEMA_VERSION}`
 * (experience-platform-apis streaming-ingestion.yaml, `SchemaReference`); the Schema Registry reports it as the
 * schema's `version`. `1.0` is what the connector always sent and what a new schema starts at. */
export const DEFAULT_SCHEMA_VERSION = '1.0';

export type WindowMode = 'processing-time' | 'event-time';
export type Role = 'export' | 'forward' | 'local';

const bool = (name: string) =>
  z
    .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: `${name} must be true or false` })
    .transform((v) => v === 'true' || v === '1' || v === 'yes');

const int = (name: string, min: number, max: number) =>
  z
    .string()
    .regex(/^\d+$/, `${name} must be a whole number`)
    .transform(Number)
    .refine((n) => n >= min && n <= max, `${name} must be between ${min} and ${max}`);

const url = (name: string) =>
  z.string().refine((v) => {
    try {
      const u = new URL(v);
      return u.protocol === 'http:' || u.protocol === 'https:';
    } catch {
      return false;
    }
  }, `${name} must be an http(s) URL`);

const timeZone = z.string().refine((tz) => {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}, 'MIXPANEL_PROJECT_TIMEZONE must be an IANA time zone such as UTC or America/Los_Angeles');

const optional = <T extends z.ZodType>(schema: T) =>
  z.preprocess((v) => (typeof v === 'string' && v.trim() === '' ? undefined : v), schema.optional());

/** Raw environment schema: every variable optional here; what a role requires is checked below. */
const EnvSchema = z.object({
  MIXPANEL_PROJECT_ID: optional(z.string().regex(/^\d+$/, 'MIXPANEL_PROJECT_ID must be the numeric project id')),
  MIXPANEL_REGION: optional(z.enum(['us', 'eu', 'in'], { error: 'MIXPANEL_REGION must be us, eu or in' })),
  MIXPANEL_SECRET_ID: optional(z.string()),
  MIXPANEL_USERNAME: optional(z.string()),
  MIXPANEL_SECRET: optional(z.string()),
  MIXPANEL_API_BASE_URL: optional(url('MIXPANEL_API_BASE_URL')),
  MIXPANEL_PROJECT_TIMEZONE: optional(timeZone),
  MIXPANEL_LEGACY_LOCAL_TIME: optional(bool('MIXPANEL_LEGACY_LOCAL_TIME')),
  WINDOW_MINUTES: optional(
    int('WINDOW_MINUTES', 5, 1440).refine((n) => 1440 % n === 0, 'WINDOW_MINUTES must divide a day (e.g. 15, 30, 60, 120, 1440)'),
  ),
  WINDOW_MODE: optional(z.enum(['processing-time', 'event-time'], { error: 'WINDOW_MODE must be processing-time or event-time' })),
  SETTLE_MINUTES: optional(int('SETTLE_MINUTES', 0, 1440)),
  LOOKBACK_DAYS: optional(int('LOOKBACK_DAYS', 0, 30)),
  MAX_WINDOWS_PER_RUN: optional(int('MAX_WINDOWS_PER_RUN', 1, 500)),
  EXPORT_QUERIES_PER_HOUR: optional(int('EXPORT_QUERIES_PER_HOUR', 1, 60)),
  STAGING_BUCKET: optional(z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'STAGING_BUCKET must be an S3 bucket name')),
  STAGING_PREFIX: optional(z.string().regex(/^([^/].*\/)?$/, 'STAGING_PREFIX must be empty or end with "/" (and not start with "/")')),
  AEP_SECRET_ID: optional(z.string()),
  AEP_CLIENT_ID: optional(z.string()),
  AEP_CLIENT_SECRET: optional(z.string()),
  AEP_ORG_ID: optional(z.string().regex(/@AdobeOrg$/, 'AEP_ORG_ID must end with @AdobeOrg')),
  AEP_SCOPES: optional(z.string()),
  AEP_IMS_URL: optional(url('AEP_IMS_URL')),
  AEP_SINK: optional(z.enum(['streaming', 'batch'], { error: 'AEP_SINK must be streaming or batch' })),
  AEP_INLET_URL: optional(
    url('AEP_INLET_URL').refine(
      (v) => /\/collection\/[^/]+\/?$/.test(new URL(v).pathname),
      'AEP_INLET_URL must be the streaming connection URL https://dcs.adobedc.net/collection/{connectionId}',
    ),
  ),
  AEP_PLATFORM_URL: optional(url('AEP_PLATFORM_URL')),
  AEP_SANDBOX: optional(z.string().regex(/^[a-z0-9-]+$/, 'AEP_SANDBOX must be a sandbox name such as prod')),
  AEP_DATASET_ID: optional(z.string().regex(/^[A-Za-z0-9]+$/, 'AEP_DATASET_ID must be the dataset id')),
  AEP_SCHEMA_ID: optional(
    z.string().regex(/^https:\/\/ns\.adobe\.com\/.+\/schemas\/.+/, 'AEP_SCHEMA_ID must be the schema $id https://ns.adobe.com/{tenant}/schemas/{id}'),
  ),
  AEP_TENANT_ID: optional(z.string().regex(/^_?[a-z0-9]+$/i, 'AEP_TENANT_ID must be the tenant id, e.g. acme')),
  AEP_FLOW_ID: optional(z.string().regex(/^\S+$/, 'AEP_FLOW_ID must be the dataflow id')),
  AEP_SCHEMA_VERSION: optional(z.string().regex(/^\d+(\.\d+)*$/, 'AEP_SCHEMA_VERSION must be the schema version, e.g. 1.0')),
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
  /** Schema version named in `schemaRef.contentType` (`…xed-full+json;version={SCHEMA_VERSION}`). */
  readonly schemaVersion: string;
  readonly mapping: string;
}

export interface Config {
  readonly mixpanel?: MixpanelConfig;
  readonly windows: WindowConfig;
  readonly staging: StagingConfig;
  readonly aep?: AepConfig;
}

/** Raised with every bad or missing variable and what it should be. */
export class ConfigError extends Error {
  readonly problems: readonly string[];
  constructor(problems: readonly string[]) {
    super(`Invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n  - ${problems.join('\n  - ')}\nSet these environment variables (see the README's configuration table) and try again.`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

/** Defaults named here once (ARCHITECTURE.md "Configuration"). */
export const DEFAULTS = {
  windowMinutes: 60,
  windowMode: 'processing-time' as WindowMode,
  settleMinutes: 30,
  lookbackDays: 5,
  maxWindowsPerRun: 24,
  // Mixpanel's raw export allows 60 queries/hour per project (reference/rate-limits); keep a quarter for other tools.
  queriesPerHour: 45,
} as const;

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
    else problems.push(`${name}: ${result.error.issues.map((i) => i.message).join('; ')} (got ${JSON.stringify(redactable(name, env[name]))})`);
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
      problems.push('MIXPANEL_SECRET_ID is required (Secrets Manager id of {"username","secret"}); locally MIXPANEL_USERNAME and MIXPANEL_SECRET may be used instead');
    }
    if (deployed && plain && e.MIXPANEL_SECRET_ID === undefined) {
      problems.push('MIXPANEL_SECRET must not be set in a deployed Lambda: store the service account in Secrets Manager and set MIXPANEL_SECRET_ID');
    }
    const region = (e.MIXPANEL_REGION ?? 'us') as MixpanelRegion;
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
    const sink = e.AEP_SINK ?? 'streaming';
    need('AEP_DATASET_ID', 'to forward events (the target dataset id)');
    need('AEP_SCHEMA_ID', 'to forward events (the schema $id)');
    need('AEP_TENANT_ID', 'to forward events (the tenant id, e.g. acme)');
    if (sink === 'streaming') need('AEP_INLET_URL', 'when AEP_SINK=streaming (the streaming connection URL)');
    // DCS requires `flowId` in every message header (streaming-ingestion.yaml, `messageHeader.required`).
    if (sink === 'streaming') {
      need(
        'AEP_FLOW_ID',
        'when AEP_SINK=streaming (the id of the HTTP API dataflow from the streaming connection to the dataset: ' +
          'Platform UI, Sources > Dataflows; or GET /flows of the Flow Service API)',
      );
    }
    const plain = e.AEP_CLIENT_ID !== undefined && e.AEP_CLIENT_SECRET !== undefined && e.AEP_ORG_ID !== undefined;
    if (e.AEP_SECRET_ID === undefined && !plain) {
      problems.push('AEP_SECRET_ID is required (Secrets Manager id of {"clientId","clientSecret","orgId","scopes"?}); locally AEP_CLIENT_ID, AEP_CLIENT_SECRET and AEP_ORG_ID may be used instead');
    }
    if (deployed && plain && e.AEP_SECRET_ID === undefined) {
      problems.push('AEP_CLIENT_SECRET must not be set in a deployed Lambda: store the credentials in Secrets Manager and set AEP_SECRET_ID');
    }
    const scopes = e.AEP_SCOPES?.split(',').map((s) => s.trim()).filter(Boolean);
    aep = {
      credentials:
        e.AEP_SECRET_ID !== undefined
          ? { secretId: e.AEP_SECRET_ID }
          : { clientId: e.AEP_CLIENT_ID ?? '', clientSecret: e.AEP_CLIENT_SECRET ?? '', orgId: e.AEP_ORG_ID ?? '', ...(scopes ? { scopes } : {}) },
      imsUrl: e.AEP_IMS_URL ?? DEFAULT_IMS_URL,
      sink,
      ...(e.AEP_INLET_URL !== undefined ? { inletUrl: e.AEP_INLET_URL } : {}),
      platformUrl: (e.AEP_PLATFORM_URL ?? DEFAULT_PLATFORM_URL).replace(/\/+$/, ''),
      sandbox: e.AEP_SANDBOX ?? 'prod',
      datasetId: e.AEP_DATASET_ID ?? '',
      schemaId: e.AEP_SCHEMA_ID ?? '',
      tenantId: (e.AEP_TENANT_ID ?? '').replace(/^_/, ''),
      ...(e.AEP_FLOW_ID !== undefined ? { flowId: e.AEP_FLOW_ID } : {}),
      schemaVersion: e.AEP_SCHEMA_VERSION ?? DEFAULT_SCHEMA_VERSION,
      mapping: e.MAPPING ?? 'default',
    };
  }

  const windows: WindowConfig = {
    minutes: e.WINDOW_MINUTES ?? DEFAULTS.windowMinutes,
    mode: e.WINDOW_MODE ?? DEFAULTS.windowMode,
    settleMinutes: e.SETTLE_MINUTES ?? DEFAULTS.settleMinutes,
    lookbackDays: e.LOOKBACK_DAYS ?? DEFAULTS.lookbackDays,
    maxWindowsPerRun: e.MAX_WINDOWS_PER_RUN ?? DEFAULTS.maxWindowsPerRun,
    queriesPerHour: e.EXPORT_QUERIES_PER_HOUR ?? DEFAULTS.queriesPerHour,
  };
  if (aep?.sink === 'batch' && windows.minutes < 20 && role === 'forward') {
    // ~90 ExperienceEvent batches per day per sandbox for Profile (help/ingestion/guardrails.md): one batch per window.
    problems.push('WINDOW_MINUTES must be at least 20 with AEP_SINK=batch (one Platform batch per window stays under the ~90 batches/day guardrail)');
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
