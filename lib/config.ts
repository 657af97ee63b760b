/**
 * The deployment configuration file (`connector.config.json`), validated with zod when the CDK app synthesises.
 *
 * Every problem is reported at once with its JSON path (`projects[1].schedule.expression: ...`) so an operator fixes
 * the file in one pass. What the file shares with the Lambdas' environment (windows, region, sink, mapping, URLs) is
 * checked by the same rules (functions/common/settings.ts), so a config that synthesises also starts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { ConnectorError } from '#common/errors';
import { batchIngestionProblem, DEFAULTS, isMappingPreset, rules } from '#common/settings';

/** CloudWatch Logs accepts only these retention periods (AWS::Logs::LogGroup RetentionInDays). */
export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const;

/**
 * A CloudWatch alarm may look back at most 7 days (period × evaluation periods ≤ 604,800 s), and at most 1 day when
 * its period is shorter than an hour.
 * https://docs.aws.amazon.com/AmazonCloudWatch/latest/APIReference/API_PutMetricAlarm.html
 */
const ALARM_MAX_LOOKBACK_SECONDS = 604_800;
const ALARM_MAX_LOOKBACK_SHORT_PERIOD_SECONDS = 86_400;

const timeZone = rules.timeZone();
const httpUrl = rules.httpUrl();

const days = z.int().min(1).max(36_500).nullable();

/** The end of a secret ARN that may be Secrets Manager's random suffix ("-" + 6 letters or digits). */
export const SECRET_SUFFIX_LIKE = /-[A-Za-z0-9]{6}$/;

/**
 * A secret is referenced by name or ARN, or created as a placeholder that the operator fills after the first deploy.
 * Only the id ever reaches a Lambda's environment, never the value.
 */
const SecretSchema = z
  .strictObject({
    /** Name of an existing secret in this account and region, e.g. `mixpanel/web`. */
    name: z
      .string()
      .regex(/^[A-Za-z0-9/_+=.@-]{1,512}$/, 'must be a Secrets Manager secret name (letters, digits and /_+=.@-)')
      .optional(),
    /** ARN of an existing secret (complete, with the 6-character suffix, or partial). */
    arn: z
      .string()
      .regex(
        /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$/,
        'must be a Secrets Manager secret ARN',
      )
      .optional(),
    /**
     * With `arn`: whether it is the complete ARN (ending in Secrets Manager's "-" + 6 random characters) or a
     * partial one. Required when the ARN ends in "-" + 6 letters or digits, which reads either way
     * (lib/constructs/secret-ref.ts).
     */
    complete: z.boolean().optional(),
    /** `true`: the stack creates a placeholder secret whose description says which JSON to store in it. */
    create: z.literal(true).optional(),
    /** Customer managed KMS key the secret is encrypted with, if any (the function gets kms:Decrypt via Secrets Manager only). */
    kmsKeyArn: z
      .string()
      .regex(
        /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/,
        'must be a KMS key ARN (arn:aws:kms:region:account:key/id)',
      )
      .optional(),
  })
  .superRefine((s, ctx) => {
    const given = [s.name, s.arn, s.create].filter((v) => v !== undefined).length;
    if (given !== 1) {
      ctx.addIssue({ code: 'custom', message: 'give exactly one of "name", "arn" or "create": true' });
    }
    // --- Complete vs partial ARN (deploy proof, issue 17)
    if (s.complete !== undefined && s.arn === undefined) {
      ctx.addIssue({ code: 'custom', path: ['complete'], message: 'only applies to "arn"' });
    } else if (s.arn !== undefined && SECRET_SUFFIX_LIKE.test(s.arn) && s.complete === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['complete'],
        message: `is required: "${s.arn.slice(-7)}" may be Secrets Manager's random suffix or the end of the name; set true for the complete ARN (as the console shows it), false for a partial one`,
      });
    } else if (s.arn !== undefined && s.complete === true && !SECRET_SUFFIX_LIKE.test(s.arn)) {
      ctx.addIssue({
        code: 'custom',
        path: ['complete'],
        message: 'a complete ARN ends in "-" and the 6 characters Secrets Manager adds to the name',
      });
    }
  });

const ScheduleSchema = z.strictObject({
  /** EventBridge Scheduler expression: `rate(1 hour)`, `rate(15 minutes)` or `cron(5 * * * ? *)`. */
  expression: z.string().superRefine((expr, ctx) => {
    const rate = /^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$/.exec(expr);
    if (rate) {
      const n = Number(rate[1]);
      const singular = !rate[2]!.endsWith('s');
      if (n < 1) ctx.addIssue({ code: 'custom', message: 'a rate must be at least 1' });
      else if (singular !== (n === 1)) {
        ctx.addIssue({
          code: 'custom',
          message: `write "rate(1 ${rate[2]!.replace(/s$/, '')})" for one and "rate(${n} ${rate[2]!.replace(/s?$/, 's')})" for more`,
        });
      }
      return;
    }
    if (/^cron\(\S+( \S+){5}\)$/.test(expr)) return;
    ctx.addIssue({
      code: 'custom',
      message:
        'must be "rate(<n> minute[s]|hour[s]|day[s])" or "cron(<min> <hour> <day-of-month> <month> <day-of-week> <year>)"',
    });
  }),
  /** Zone the cron expression is read in. @default the project's timezone */
  timezone: timeZone.optional(),
  /**
   * How often the schedule fires, in minutes; required for cron expressions (rate expressions imply it). The
   * missed-window alarm fires after `alarms.missedWindows` such intervals without a committed window.
   */
  intervalMinutes: z.int().min(1).max(10_080).optional(),
});

const WindowSchema = z.strictObject({
  /** Window length; windows are aligned to it. @default 60 */
  minutes: rules.windowMinutes().default(DEFAULTS.windowMinutes),
  /** @default processing-time */
  mode: rules.windowMode().default(DEFAULTS.windowMode),
  /** Windows end at least this long before the run, so Mixpanel has ingested them. @default 30 */
  settleMinutes: rules.settleMinutes().default(DEFAULTS.settleMinutes),
  /** How far back in event time a processing-time window looks for late events. @default 5 */
  lookbackDays: rules.lookbackDays().default(DEFAULTS.lookbackDays),
  /** Upper bound on windows per run (catch-up continues next run). @default the Lambda's own (24) */
  maxWindowsPerRun: rules.maxWindowsPerRun().optional(),
  /** Share of Mixpanel's 60 export queries/hour this connector may use. @default the Lambda's own (45) */
  queriesPerHour: rules.queriesPerHour().optional(),
  /** Events one Mixpanel query is sized for (windows split to stay near it). @default the Lambda's own (1,000,000) */
  maxEventsPerExport: rules.maxEventsPerExport().optional(),
});

const ProjectSchema = z.strictObject({
  /** Numeric Mixpanel project id. */
  id: z.union([z.string(), z.int().positive()]).transform(String).pipe(rules.projectId()),
  /** A label for humans (dashboard, descriptions). @default the id */
  name: z
    .string()
    .regex(/^[A-Za-z0-9 _.-]{1,40}$/, 'must be 1-40 letters, digits, spaces or _.-')
    .optional(),
  /** Data residency of the project. @default us */
  region: rules.region().default(DEFAULTS.region),
  /** The project's timezone (Project Settings → Overview). */
  timezone: timeZone,
  /** `true` when `time` is stored in project-local seconds (projects created before 2023). @default false */
  legacyLocalTime: z.boolean().default(false),
  /** The Mixpanel service account: `{"username": "...", "secret": "..."}`. */
  secret: SecretSchema,
  schedule: ScheduleSchema,
  window: WindowSchema.prefault({}),
  /** Origin override of the export host (testing against an emulator). @default from region */
  apiBaseUrl: httpUrl.optional(),
  /** `false` deploys the project with its schedule disabled. @default true */
  enabled: z.boolean().default(true),
});

/**
 * Most forward Lambdas at once with the batch sink (`aep.maxConcurrency`). Platform takes up to 20 GB of data an hour
 * per organisation through the Batch Ingestion API (AdobeDocs/experience-platform.en help/ingestion/guardrails.md,
 * "Guardrails for batch ingestion"). One deployed 1,024 MB forwarder maps ~9,500 records/s (docs/deploy.md); the
 * batch sink maps each record twice (to dedupe, then to write its part's file), so ~4,750 records/s, and at ~1,500
 * bytes a mapped record (cli/plan.ts ASSUMED_RECORD_BYTES) that is ~7 MB/s, ~25 GB/h: one forwarder already fills the
 * hourly guardrail. 2 is the least maximum concurrency SQS accepts; more would only queue batches at Platform. The
 * other batch guardrails do not bind here: a run's one batch holds one file per part (at most a few dozen, against
 * 25,000 files and 1 TB per batch), and runs make far fewer than 2,000 batches a minute.
 */
export const BATCH_MAX_CONCURRENCY = 2;

/** The batch sink's per-batch options (Batch Ingestion "Create batch", help/ingestion/batch-ingestion/partial.md). */
const AepBatchSchema = z.strictObject({
  /** Share of failed rows a batch tolerates before Platform fails it whole; 0: no partial ingestion. @default 5 */
  partialIngestionPercent: rules.batchPartialIngestionPercent().default(DEFAULTS.batchPartialIngestionPercent),
  /** Per-row error diagnostics (required while partial ingestion is on). @default true */
  errorDiagnostics: z.boolean().default(DEFAULTS.batchErrorDiagnostics),
});

const AepSchema = z.strictObject({
  /** Adobe OAuth Server-to-Server credentials: `{"clientId","clientSecret","orgId","scopes"?}`. */
  secret: SecretSchema,
  imsUrl: httpUrl.default(DEFAULTS.imsUrl),
  sink: rules.sink().default(DEFAULTS.sink),
  /** Streaming connection URL `https://dcs.adobedc.net/collection/{connectionId}`; required for the streaming sink. */
  inletUrl: rules.inletUrl().optional(),
  platformUrl: httpUrl.default(DEFAULTS.platformUrl),
  sandbox: rules.sandbox().default(DEFAULTS.sandbox),
  datasetId: rules.datasetId(),
  schemaId: rules.schemaId(),
  tenantId: rules.tenantId(),
  /** The HTTP API dataflow id sent as `header.flowId` of every message; required for the streaming sink. */
  flowId: z.string().regex(/^\S+$/, 'must be the dataflow id').optional(),
  /** Schema version named in `schemaRef.contentType`. @default "1.0" */
  schemaVersion: z
    .string()
    .regex(/^\d+(\.\d+)*$/, 'must be the schema version, e.g. 1.0')
    .optional(),
  /**
   * The dataset is enabled for Real-Time Customer Profile (`provision --profile` writes it): records over Profile's
   * 10 KB event limit or without identity are rejected before sending, and streaming keeps to
   * `profileRecordsPerSecond`. @default false
   */
  profileEnabled: z.boolean().default(DEFAULTS.profileEnabled),
  /** Streaming records per second while Profile is enabled (per forward Lambda). @default 1500 */
  profileRecordsPerSecond: rules.profileRecordsPerSecond().optional(),
  /**
   * Forward Lambdas running at once (the SQS event source's maximum concurrency). AEP streaming ingestion allows
   * ~1,000 requests/s per organisation; the arithmetic: docs/deploy.md "Forwarder concurrency and AEP's limits".
   * @default 2
   */
  maxConcurrency: z.int().min(2).max(50).default(2),
  /**
   * Minutes between two runs of the Platform verifier (an EventBridge Scheduler schedule invoking the forward Lambda
   * with `{"action":"verify"}`), which reads from Catalog what Platform stored of each forwarded window. @default 5
   */
  verifyEveryMinutes: rules.verifyEveryMinutes().default(DEFAULTS.verifyEveryMinutes),
  /** Batch sink only: partial ingestion and error diagnostics of each batch. */
  batch: AepBatchSchema.prefault({}),
});

const AlarmsSchema = z.strictObject({
  /** An email address subscribed to a new SNS topic that receives every alarm. */
  email: z.email().optional(),
  /** An existing SNS topic that receives every alarm. */
  snsTopicArn: z
    .string()
    .regex(/^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_.-]+$/, 'must be an SNS topic ARN')
    .optional(),
  /** Alarm when rejected/(accepted+rejected) over an hour exceeds this share. @default 0.05 */
  maxRejectionRate: z.number().gt(0).lte(1).default(0.05),
  /** Alarm when this many schedule intervals pass without a committed window. @default 3 */
  missedWindows: z.int().min(1).max(100).default(3),
});

const RetentionSchema = z.strictObject({
  /** Days raw parts and manifests stay in `staging/` (null: forever). @default 30 */
  stagingDays: days.default(30),
  /** @default 90 */
  quarantineDays: days.default(90),
  /** @default 90 */
  rejectedDays: days.default(90),
  /** Days S3 server access logs are kept. @default 365 */
  accessLogsDays: days.default(365),
});

const StagingSchema = z.strictObject({
  /** Key prefix for everything the connector writes: empty, or ending with "/". @default "" */
  prefix: rules.stagingPrefix().default(''),
  /** Physical bucket name. @default generated by CloudFormation */
  bucketName: rules.bucketName().optional(),
  /** `destroy` deletes the bucket and its objects with the stack: for throwaway test stacks only. @default retain */
  removalPolicy: z.enum(['retain', 'destroy']).default('retain'),
});

// --- Deployment options: network placement and export concurrency (deploy proof, issue 17) ---

const ipv4 = z.string().regex(/^(\d{1,3}\.){3}\d{1,3}$/, 'must be an IPv4 address');

/**
 * Where the functions run. `none`: Lambda's own network (egress from AWS's shared, changing addresses). `create`: a new
 * VPC whose private subnets leave through NAT gateways with Elastic IPs, the stable addresses to allow-list.
 * `existing`: your VPC's private subnets (egress through your NAT). Both VPC modes add endpoints for S3 and Secrets
 * Manager, so only Mixpanel and Adobe traffic crosses the NAT (docs/deploy.md, costs included).
 */
const NetworkSchema = z.discriminatedUnion('mode', [
  z.strictObject({ mode: z.literal('none') }),
  z.strictObject({
    mode: z.literal('create'),
    /** NAT gateways, one per AZ, each with its Elastic IP (1 is cheaper, 2 survives an AZ outage). @default 2 */
    natGateways: z.int().min(1).max(3).default(2),
    /** @default 10.80.0.0/16 */
    cidr: z
      .string()
      .regex(/^(\d{1,3}\.){3}\d{1,3}\/(1[6-9]|2[0-4])$/, 'must be an IPv4 CIDR from /16 to /24')
      .default('10.80.0.0/16'),
  }),
  z.strictObject({
    mode: z.literal('existing'),
    vpcId: z.string().regex(/^vpc-[0-9a-f]{8,17}$/, 'must be a VPC id (vpc-…)'),
    /** Private subnets with a route to a NAT gateway, one per AZ listed below (same order). */
    privateSubnetIds: z.array(z.string().regex(/^subnet-[0-9a-f]{8,17}$/, 'must be a subnet id (subnet-…)')).min(1),
    availabilityZones: z.array(z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d[a-z]$/, 'must be an availability zone')).min(1),
    /** The subnets' route tables (same order), for the S3 gateway endpoint. */
    privateSubnetRouteTableIds: z
      .array(z.string().regex(/^rtb-[0-9a-f]{8,17}$/, 'must be a route table id (rtb-…)'))
      .min(1),
    /**
     * `false` when the VPC already has S3 and Secrets Manager endpoints (a second private-DNS one fails).
     * @default true
     */
    createEndpoints: z.boolean().default(true),
    /** Your NAT's public addresses, repeated in the EgressIps output. */
    egressIps: z.array(ipv4).optional(),
  }),
]);
export type NetworkConfig = z.output<typeof NetworkSchema>;

// --- End of deployment options ---

export const ConnectorConfigSchema = z
  .strictObject({
    $schema: z.string().optional(),
    /** @default MixpanelAepConnector */
    stackName: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9-]{0,127}$/, 'must start with a letter and hold only letters, digits and -')
      .default('MixpanelAepConnector'),
    /** Account and region to deploy to. @default the CLI's current credentials and region */
    env: z
      .strictObject({
        account: z
          .string()
          .regex(/^\d{12}$/, 'must be a 12-digit account id')
          .optional(),
        region: z
          .string()
          .regex(/^[a-z]{2}(-[a-z]+)+-\d$/, 'must be an AWS region such as eu-west-1')
          .optional(),
      })
      .optional(),
    /** CloudWatch namespace of the connector's metrics. @default MixpanelAepConnector */
    metricsNamespace: z
      .string()
      .regex(/^[A-Za-z0-9_./#:-]{1,255}$/, 'must be a CloudWatch namespace')
      .default('MixpanelAepConnector'),
    /** Days the Lambdas' logs are kept. @default 30 */
    logRetentionDays: z
      .int()
      .refine(
        (n) => (LOG_RETENTION_DAYS as readonly number[]).includes(n),
        `must be one of ${LOG_RETENTION_DAYS.join(', ')}`,
      )
      .default(30),
    staging: StagingSchema.prefault({}),
    projects: z.array(ProjectSchema).min(1, 'configure at least one Mixpanel project'),
    aep: AepSchema,
    /** Mapping preset (`default`, `adobe-source`), `s3://bucket/key.json`, or a JSON file relative to this config file. */
    mapping: rules.mapping().default(DEFAULTS.mapping),
    alarms: AlarmsSchema.prefault({}),
    retention: RetentionSchema.prefault({}),
    // --- Deployment options (deploy proof, issue 17)
    /** VPC placement for stable egress IPs. @default {"mode": "none"} */
    network: NetworkSchema.default({ mode: 'none' }),
    /**
     * Reserved concurrency 1 per export function (two exports of a project never overlap). Lambda keeps 100
     * executions unreserved, so an account whose quota is below 100 + the number of projects (new accounts: 10)
     * cannot deploy it: `false` there. @default true
     */
    reserveExportConcurrency: z.boolean().default(true),
  })
  .superRefine((c, ctx) => {
    const seen = new Map<string, number>();
    c.projects.forEach((p, i) => {
      const first = seen.get(p.id);
      if (first !== undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['projects', i, 'id'],
          message: `duplicates projects[${first}].id (${p.id})`,
        });
      else seen.set(p.id, i);

      const interval = scheduleIntervalMinutes(p.schedule);
      if (interval === undefined) {
        // An invalid expression is already reported; only a cron expression lacks an interval.
        if (p.schedule.expression.startsWith('cron('))
          ctx.addIssue({
            code: 'custom',
            path: ['projects', i, 'schedule', 'intervalMinutes'],
            message: 'is required with a cron expression (how often it fires, for the missed-window alarm)',
          });
      } else {
        const period = Math.max(interval, p.window.minutes) * 60; // see missedWindowPeriodMinutes
        const lookback = period * c.alarms.missedWindows;
        const max = period < 3600 ? ALARM_MAX_LOOKBACK_SHORT_PERIOD_SECONDS : ALARM_MAX_LOOKBACK_SECONDS;
        if (lookback > max) {
          ctx.addIssue({
            code: 'custom',
            path: ['alarms', 'missedWindows'],
            message: `${c.alarms.missedWindows} intervals of ${period / 60} min (projects[${i}]) exceed what a CloudWatch alarm can look back (${max / 3600} h); lower it`,
          });
        }
      }
      if (c.aep.sink === 'batch' && p.window.minutes < 20) {
        // One Platform batch per window; ~90 ExperienceEvent batches/day per sandbox (AEP ingestion guardrails).
        ctx.addIssue({
          code: 'custom',
          path: ['projects', i, 'window', 'minutes'],
          message:
            'must be at least 20 with aep.sink "batch" (one Platform batch per window stays under the ~90 batches/day guardrail)',
        });
      }
    });
    if (c.network.mode === 'existing') {
      const n = c.network;
      if (
        n.privateSubnetIds.length !== n.availabilityZones.length ||
        n.privateSubnetIds.length !== n.privateSubnetRouteTableIds.length
      ) {
        ctx.addIssue({
          code: 'custom',
          path: ['network', 'privateSubnetIds'],
          message: 'needs one availability zone and one route table per subnet, in the same order',
        });
      }
    }
    if (c.aep.sink === 'batch' && c.aep.maxConcurrency > BATCH_MAX_CONCURRENCY) {
      ctx.addIssue({
        code: 'custom',
        path: ['aep', 'maxConcurrency'],
        message:
          `must be at most ${BATCH_MAX_CONCURRENCY} with aep.sink "batch": Platform ingests 20 GB/h per organisation ` +
          'through the Batch Ingestion API and one forwarder alone uploads about that much, so more forwarders only ' +
          'queue batches at Platform (docs/deploy.md "Forwarder concurrency and AEP\'s limits")',
      });
    }
    if (c.aep.sink === 'streaming' && c.aep.inletUrl === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['aep', 'inletUrl'],
        message: 'is required with aep.sink "streaming" (the streaming connection URL)',
      });
    }
    const batchProblem = batchIngestionProblem(c.aep.batch.partialIngestionPercent, c.aep.batch.errorDiagnostics);
    if (batchProblem !== undefined) {
      ctx.addIssue({ code: 'custom', path: ['aep', 'batch', 'errorDiagnostics'], message: batchProblem });
    }
    if (c.aep.sink === 'streaming' && c.aep.flowId === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['aep', 'flowId'],
        message:
          'is required with aep.sink "streaming" (the HTTP API dataflow id: Platform UI, Sources > Dataflows; ' +
          'GET /flows of the Flow Service API; `npm run cli -- provision` prints it)',
      });
    }
  });

/** The input shape of `connector.config.json` (what an operator writes). */
export type ConnectorConfigInput = z.input<typeof ConnectorConfigSchema>;
/** The validated configuration, defaults applied. */
export type ConnectorConfig = z.output<typeof ConnectorConfigSchema>;
export type ProjectConfig = ConnectorConfig['projects'][number];
export type SecretConfig = ProjectConfig['secret'];

/** Raised with every problem of a config file, each prefixed by its JSON path. */
export class ConnectorConfigError extends ConnectorError {
  readonly problems: readonly string[];
  constructor(source: string, problems: readonly string[]) {
    const count = `${problems.length} problem${problems.length === 1 ? '' : 's'}`;
    super('config', `${source} is invalid (${count}):\n  - ${problems.join('\n  - ')}`);
    this.name = 'ConnectorConfigError';
    this.problems = problems;
  }
}

/** `projects[1].schedule.expression` from a zod issue path. */
function formatPath(path: readonly PropertyKey[]): string {
  return (
    path.reduce<string>(
      (acc, key) => (typeof key === 'number' ? `${acc}[${key}]` : acc ? `${acc}.${String(key)}` : String(key)),
      '',
    ) || '(root)'
  );
}

/**
 * Validates a parsed config object.
 * @param source where it came from, for the error message
 * @param baseDir directory a relative `mapping` path is resolved against
 * @throws ConnectorConfigError listing every problem
 */
export function parseConnectorConfig(input: unknown, source = 'config', baseDir = process.cwd()): ConnectorConfig {
  const result = ConnectorConfigSchema.safeParse(input);
  const problems = result.success
    ? []
    : result.error.issues.flatMap((i) =>
        // A typo'd key is reported at its own path, so `projects[0].timezon` reads as what it is.
        i.code === 'unrecognized_keys'
          ? i.keys.map((k) => `${formatPath([...i.path, k])}: unknown setting`)
          : [`${formatPath(i.path)}: ${i.message}`],
      );
  if (result.success) {
    const mappingFile = localMappingPath(result.data.mapping, baseDir);
    if (mappingFile !== undefined && !existsSync(mappingFile))
      problems.push(`mapping: file ${result.data.mapping} not found (resolved against ${baseDir})`);
  }
  if (problems.length > 0 || !result.success) throw new ConnectorConfigError(source, problems);
  const mappingFile = localMappingPath(result.data.mapping, baseDir);
  return mappingFile === undefined ? result.data : { ...result.data, mapping: mappingFile };
}

/** Reads and validates a config file. @throws ConnectorConfigError (also for unreadable or non-JSON files) */
export function loadConnectorConfig(file: string): ConnectorConfig {
  if (!existsSync(file))
    throw new ConnectorConfigError(file, ['(file): not found (copy connector.config.example.json and fill it in)']);
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ConnectorConfigError(file, [
      `(file): cannot be read as JSON (${error instanceof Error ? error.message : String(error)})`,
    ]);
  }
  return parseConnectorConfig(json, file, dirname(resolve(file)));
}

/** Absolute path of a mapping given as a local file, or undefined for presets and S3 URIs. */
export function localMappingPath(mapping: string, baseDir: string): string | undefined {
  if (isMappingPreset(mapping) || mapping.startsWith('s3://')) return undefined;
  return isAbsolute(mapping) ? mapping : resolve(baseDir, mapping);
}

/** Minutes between two firings of a schedule: from a rate expression, else the configured intervalMinutes. */
export function scheduleIntervalMinutes(schedule: {
  expression: string;
  intervalMinutes?: number | undefined;
}): number | undefined {
  if (schedule.intervalMinutes !== undefined) return schedule.intervalMinutes;
  const rate = /^rate\((\d+) (minute|hour|day)s?\)$/.exec(schedule.expression);
  if (!rate) return undefined;
  const unit = { minute: 1, hour: 60, day: 1440 }[rate[2] as 'minute' | 'hour' | 'day'];
  return Number(rate[1]) * unit;
}

/**
 * The period of a project's missed-window alarm: a run commits every window that ended since the previous run, so at
 * least one per schedule interval — or per window, when windows are longer than the interval (then some runs
 * legitimately commit nothing).
 */
export function missedWindowPeriodMinutes(project: {
  schedule: { expression: string; intervalMinutes?: number | undefined };
  window: { minutes: number };
}): number {
  const interval = scheduleIntervalMinutes(project.schedule);
  if (interval === undefined) throw new Error(`schedule ${project.schedule.expression} needs intervalMinutes`); // the schema requires it
  return Math.max(interval, project.window.minutes);
}
