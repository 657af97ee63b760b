/**
 * The configuration rules both entry points share: the Lambdas' environment (functions/common/config.ts) and the
 * deployment file validated at synth (lib/config.ts). One rule per setting, so a config that synthesises also starts.
 *
 * Each rule takes an optional label: the environment names the variable in its message (`WINDOW_MINUTES must ...`),
 * the deployment file leaves it out because its messages already start with the JSON path.
 */
import * as z from 'zod';

/** Data residency → export host (mixpanel/docs pages/docs/other-bits/privacy-and-security/eu-residency.md). */
export const MIXPANEL_EXPORT_HOSTS = {
  us: 'https://data.mixpanel.com',
  eu: 'https://data-eu.mixpanel.com',
  in: 'https://data-in.mixpanel.com',
} as const;
export type MixpanelRegion = keyof typeof MIXPANEL_EXPORT_HOSTS;

/** Adobe IMS OAuth Server-to-Server token endpoint (experience-platform.en help/landing/api-authentication.md). */
export const DEFAULT_IMS_URL = 'https://ims-na1.adobelogin.com/ims/token/v3';
/** Platform API host (experience-platform.en help/landing/api-guide.md). */
export const DEFAULT_PLATFORM_URL = 'https://platform.adobe.io';

export const WINDOW_MODES = ['processing-time', 'event-time'] as const;
export type WindowMode = (typeof WINDOW_MODES)[number];
export const AEP_SINKS = ['streaming', 'batch'] as const;
/** Mappings built into the forward Lambda (functions/mapping/presets.ts). */
export const PRESET_NAMES = ['default', 'adobe-source'] as const;
export type AepSink = (typeof AEP_SINKS)[number];

/** Defaults named once; the deployment file writes them into the Lambda environment. */
export const DEFAULTS = {
  region: 'us' as MixpanelRegion,
  windowMinutes: 60,
  windowMode: 'processing-time' as WindowMode,
  settleMinutes: 30,
  lookbackDays: 5,
  maxWindowsPerRun: 24,
  // Mixpanel's raw export allows 60 queries/hour per project (mixpanel/docs pages/docs/other-bits/rate-limits.md);
  // keep a quarter for other tools.
  queriesPerHour: 45,
  // Our choice, not Mixpanel's limit: a million events stage in well under a minute at the measured export rate
  // (docs/performance.md), far inside the export function's timeout, and make parts of a manageable count.
  maxEventsPerExport: 1_000_000,
  sink: 'streaming' as AepSink,
  sandbox: 'prod',
  /** The dataset is not assumed to be enabled for Real-Time Customer Profile. */
  profileEnabled: false,
  /**
   * Profile's streaming throughput: "The initial combined throughput for streaming ingestion is 1500 records per
   * second" into Real-Time Customer Profile, per organisation across sandboxes (AdobeDocs/experience-platform.en
   * help/landing/license-usage-and-guardrails/capacity.md). The streaming sink stays under it when Profile is on.
   */
  profileRecordsPerSecond: 1_500,
  mapping: 'default',
  imsUrl: DEFAULT_IMS_URL,
  platformUrl: DEFAULT_PLATFORM_URL,
  // Streamed data reaches the data lake in "< 60 minutes" (AdobeDocs/experience-platform.en
  // help/ingestion/streaming-ingestion/overview.md): the verifier reads Platform's verdict on a run after that.
  verifySettleMinutes: 60,
  // How often the verifier asks Platform what it stored: asynchronous validation and batch promotion take minutes.
  verifyEveryMinutes: 5,
  // Batch sink. Partial ingestion at Platform's own default threshold of 5% (help/ingestion/batch-ingestion/partial.md,
  // "By default, this value is set to 5%"): a few bad rows no longer fail a whole window's batch, while a systemic
  // fault (most rows refused) still fails it, to be re-sent whole once fixed. Diagnostics name each failed row.
  batchPartialIngestionPercent: 5,
  batchErrorDiagnostics: true,
} as const;

/** Bounds of the numeric settings, inclusive. */
export const LIMITS = {
  windowMinutes: [5, 1440],
  settleMinutes: [0, 1440],
  lookbackDays: [0, 30],
  maxWindowsPerRun: [1, 500],
  // Mixpanel's raw export: 60 queries per hour per project (mixpanel/docs pages/docs/other-bits/rate-limits.md).
  queriesPerHour: [1, 60],
  verifySettleMinutes: [0, 1440],
  // At least 5: a verify round stops taking runs after 4 minutes (VERIFY_ROUND_MS), so rounds never overlap.
  verifyEveryMinutes: [5, 60],
  // A share of the batch's rows; 0 turns partial ingestion off (help/ingestion/batch-ingestion/partial.md).
  batchPartialIngestionPercent: [0, 100],
  // 1,500 initial plus up to 13,500 purchasable (help/landing/license-usage-and-guardrails/capacity.md).
  profileRecordsPerSecond: [1, 15_000],
  maxEventsPerExport: [10_000, 10_000_000],
} as const satisfies Record<string, readonly [number, number]>;

/** A message, prefixed with the variable name when there is one. */
const say = (label: string | undefined, text: string): string => (label === undefined ? text : `${label} ${text}`);

const bounded =
  ([min, max]: readonly [number, number]) =>
  (label?: string) =>
    z
      .int({ error: say(label, 'must be a whole number') })
      .min(min, say(label, `must be between ${min} and ${max}`))
      .max(max, say(label, `must be between ${min} and ${max}`));

const regex = (pattern: RegExp, text: string) => (label?: string) => z.string().regex(pattern, say(label, text));

const isTimeZone = (tz: string): boolean => {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
};

const isHttpUrl = (v: string): boolean => {
  if (!URL.canParse(v)) return false;
  const { protocol } = new URL(v);
  return protocol === 'https:' || protocol === 'http:';
};

const httpUrl = (label?: string) => z.string().refine(isHttpUrl, say(label, 'must be an http(s) URL'));

/**
 * Partial ingestion always produces error diagnostics ("enhanced error diagnostics are automatically enforced",
 * help/ingestion/batch-ingestion/partial.md): turning diagnostics off only makes sense without it.
 * @returns the problem, or undefined when the pair is consistent
 */
export function batchIngestionProblem(partialIngestionPercent: number, errorDiagnostics: boolean): string | undefined {
  return partialIngestionPercent > 0 && !errorDiagnostics
    ? 'error diagnostics cannot be turned off while partial ingestion is on (Platform enforces them with it): ' +
        'set the partial ingestion percentage to 0, or keep diagnostics on'
    : undefined;
}

/** `default` or `adobe-source`: a mapping built into the forward Lambda. */
export const isMappingPreset = (m: string): boolean => (PRESET_NAMES as readonly string[]).includes(m);

/**
 * One zod rule per shared setting, on the parsed value (numbers are numbers; the environment converts first).
 * Sandbox, schema `$id` and tenant shapes follow experience-platform.en help/sandboxes/home.md and
 * help/xdm/api/getting-started.md; the inlet is the streaming connection URL of
 * help/sources/tutorials/api/create/streaming/http.md.
 */
export const rules = {
  projectId: regex(/^\d+$/, 'must be the numeric Mixpanel project id'),
  region: (label?: string) =>
    z.enum(Object.keys(MIXPANEL_EXPORT_HOSTS) as [MixpanelRegion, ...MixpanelRegion[]], {
      error: say(label, 'must be us, eu or in'),
    }),
  timeZone: (label?: string) =>
    z.string().refine(isTimeZone, say(label, 'must be an IANA time zone such as UTC or America/Los_Angeles')),
  httpUrl,
  windowMinutes: (label?: string) =>
    bounded(LIMITS.windowMinutes)(label).refine(
      (n) => 1440 % n === 0,
      say(label, 'must divide a day (e.g. 15, 30, 60, 120, 1440)'),
    ),
  windowMode: (label?: string) => z.enum(WINDOW_MODES, { error: say(label, 'must be processing-time or event-time') }),
  settleMinutes: bounded(LIMITS.settleMinutes),
  lookbackDays: bounded(LIMITS.lookbackDays),
  maxWindowsPerRun: bounded(LIMITS.maxWindowsPerRun),
  queriesPerHour: bounded(LIMITS.queriesPerHour),
  verifySettleMinutes: bounded(LIMITS.verifySettleMinutes),
  verifyEveryMinutes: bounded(LIMITS.verifyEveryMinutes),
  batchPartialIngestionPercent: (label?: string) => {
    const [min, max] = LIMITS.batchPartialIngestionPercent;
    const text = say(label, `must be a percentage between ${min} and ${max} (0: no partial ingestion)`);
    return z.number({ error: text }).min(min, text).max(max, text);
  },
  profileRecordsPerSecond: bounded(LIMITS.profileRecordsPerSecond),
  maxEventsPerExport: bounded(LIMITS.maxEventsPerExport),
  // S3 bucket naming rules: 3-63 lowercase letters, digits, dots and hyphens, starting and ending alphanumeric.
  bucketName: regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, 'must be an S3 bucket name'),
  stagingPrefix: regex(/^([^/].*\/)?$/, 'must be empty or end with "/" (and not start with "/")'),
  sink: (label?: string) => z.enum(AEP_SINKS, { error: say(label, 'must be streaming or batch') }),
  inletUrl: (label?: string) =>
    httpUrl(label).refine(
      (v) => URL.canParse(v) && /\/collection\/[^/]+\/?$/.test(new URL(v).pathname),
      say(label, 'must be the streaming connection URL https://dcs.adobedc.net/collection/{connectionId}'),
    ),
  sandbox: regex(/^[a-z0-9-]+$/, 'must be a sandbox name such as prod'),
  datasetId: regex(/^[A-Za-z0-9]+$/, 'must be the dataset id'),
  schemaId: regex(
    /^https:\/\/ns\.adobe\.com\/.+\/schemas\/.+/,
    'must be the schema $id https://ns.adobe.com/{tenant}/schemas/{id}',
  ),
  tenantId: regex(/^_?[a-z0-9]+$/i, 'must be the tenant id, e.g. acme'),
  /** A preset name, `s3://bucket/key.json`, or a `.json` file (the deployment file; the environment takes any path). */
  mapping: (label?: string) => {
    const presets = PRESET_NAMES.map((p) => `"${p}"`).join(', ');
    return z
      .string()
      .refine(
        (m) => isMappingPreset(m) || /^s3:\/\/[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]\/.+/.test(m) || m.endsWith('.json'),
        say(label, `must be ${presets}, s3://bucket/key.json or a path to a .json file`),
      );
  },
} as const;
