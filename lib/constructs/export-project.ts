import { Duration, TimeZone } from 'aws-cdk-lib';
import { type IRole, PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import {
  ContextAttribute,
  type ISchedule,
  type IScheduleTarget,
  Schedule,
  ScheduleExpression,
  type ScheduleTargetConfig,
  ScheduleTargetInput,
  TimeWindow,
} from 'aws-cdk-lib/aws-scheduler';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { DEFAULTS } from '#common/settings';
import type { ProjectConfig } from '../config.ts';
import { ConnectorFunction, EXPORT_TIMEOUT } from './connector-function.ts';
import { MIXPANEL_SECRET_SHAPE, SecretRef } from './secret-ref.ts';
import { schedulerInvokeRole } from './scheduler-role.ts';
import type { FunctionNetwork } from './network.ts';
import type { StagingBucket } from './staging-bucket.ts';

/**
 * Compressed bytes a staged event takes (gzip level 1), measured on the benchmark's dataset (~990 raw bytes an
 * event): 166 in one stream, 169 split over 16 partitions (docs/performance.md, "Memory per function").
 */
const STAGED_BYTES_PER_EVENT = 169;
/**
 * Margin over that: a window may hold more events than the rate it was sized from (a burst, or the shortest span
 * still over the ceiling), and a project's events may be larger than the benchmark's; ×4 covers both doubling.
 */
const SPILL_MARGIN = 4;

/**
 * /tmp for an export function (MiB): partitioned staging keeps a window's gzipped parts on disk until each is uploaded,
 * so at worst a whole window of `maxEventsPerExport` events (staging/spill.ts). Rounded up to 512 MiB steps within
 * Lambda's range of 512–10,240 MB (AWS Lambda API reference, "EphemeralStorage").
 */
export function exportEphemeralStorageMiB(maxEventsPerExport: number): number {
  const mib = (maxEventsPerExport * STAGED_BYTES_PER_EVENT * SPILL_MARGIN) / 1024 / 1024;
  return Math.min(10_240, Math.max(512, Math.ceil(mib / 512) * 512));
}

/** Powertools `service` of the export Lambdas: a dimension of every export metric. */
export const EXPORT_SERVICE_NAME = 'mixpanel-aep-export';

/**
 * Scheduler retries only when it cannot hand the event to Lambda (the invocation is asynchronous; a failing export is
 * retried by Lambda and caught up by the next run from the checkpoint). An hour of retries, then the DLQ.
 * https://docs.aws.amazon.com/scheduler/latest/UserGuide/configuring-schedule-retry-policy.html
 */
const SCHEDULE_MAX_EVENT_AGE = Duration.hours(1);
const SCHEDULE_RETRY_ATTEMPTS = 10;

/** Props of {@link ExportProject}. */
export interface ExportProjectProps {
  readonly project: ProjectConfig;
  readonly staging: StagingBucket;
  /** Receives scheduled events Scheduler could not deliver. */
  readonly scheduleDeadLetterQueue: IQueue;
  readonly entry: string;
  readonly metricsNamespace: string;
  readonly logRetention: RetentionDays;
  /** The secret, when several projects share one (see ConnectorStack). @default - one is made from project.secret */
  readonly secret?: SecretRef;
  /** Reserved concurrency 1 (config `reserveExportConcurrency`). @default true */
  readonly reserveConcurrency?: boolean;
  /** VPC placement (config `network`). @default - Lambda's own network */
  readonly network?: FunctionNetwork;
}

/**
 * One Mixpanel project: its export Lambda and the EventBridge Scheduler schedule that runs it.
 *
 * One function per project rather than one shared function with the project in the event: the handler's scheduled event
 * is exactly `{"source":"schedule","scheduledTime":...}` (docs/architecture.md "Export handler") and its settings come
 * from the environment, so each project gets its own environment, secret permission, log group, alarms, and — through
 * reserved concurrency 1 — the guarantee that two exports of the same project never run at once (a late run waits in
 * Lambda's asynchronous queue instead of racing the checkpoint), while different projects do not wait for one another.
 */
export class ExportProject extends Construct {
  readonly fn: ConnectorFunction;
  readonly schedule: Schedule;
  readonly secret: SecretRef;
  readonly project: ProjectConfig;

  constructor(scope: Construct, id: string, props: ExportProjectProps) {
    super(scope, id);
    const { project, staging } = props;
    this.project = project;
    const label = project.name ? `${project.name} (${project.id})` : project.id;

    this.fn = new ConnectorFunction(this, 'Export', {
      entry: props.entry,
      description: `Exports Mixpanel project ${label} raw events into the staging bucket`,
      timeout: EXPORT_TIMEOUT,
      ephemeralStorageMiB: exportEphemeralStorageMiB(project.window.maxEventsPerExport ?? DEFAULTS.maxEventsPerExport),
      ...(props.reserveConcurrency === false ? {} : { reservedConcurrentExecutions: 1 }),
      ...(props.network !== undefined ? { network: props.network } : {}),
      serviceName: EXPORT_SERVICE_NAME,
      metricsNamespace: props.metricsNamespace,
      logRetention: props.logRetention,
    });
    // Lambda retries a failed asynchronous run twice; later runs catch up from the checkpoint anyway. Six hours
    // covers a backlog of scheduled events waiting behind reserved concurrency 1.
    this.fn.function.configureAsyncInvoke({ retryAttempts: 2, maxEventAge: Duration.hours(6) });

    // --- Mixpanel project settings (plain values)
    this.fn
      .addEnvironment('MIXPANEL_PROJECT_ID', project.id)
      .addEnvironment('MIXPANEL_REGION', project.region)
      .addEnvironment('MIXPANEL_PROJECT_TIMEZONE', project.timezone)
      .addEnvironment('MIXPANEL_LEGACY_LOCAL_TIME', String(project.legacyLocalTime));
    if (project.apiBaseUrl !== undefined) this.fn.addEnvironment('MIXPANEL_API_BASE_URL', project.apiBaseUrl);

    // --- Mixpanel credentials: the secret's id in the environment, read access to exactly that secret.
    this.secret =
      props.secret ??
      new SecretRef(this, 'MixpanelSecret', {
        config: project.secret,
        shape: MIXPANEL_SECRET_SHAPE,
        purpose: `Mixpanel service account for project ${label}`,
      });
    this.fn.addEnvironment('MIXPANEL_SECRET_ID', this.secret.secretId);
    this.secret.grantRead(this.fn.role);

    // --- Window planning
    this.fn
      .addEnvironment('WINDOW_MINUTES', String(project.window.minutes))
      .addEnvironment('WINDOW_MODE', project.window.mode)
      .addEnvironment('SETTLE_MINUTES', String(project.window.settleMinutes))
      .addEnvironment('LOOKBACK_DAYS', String(project.window.lookbackDays));
    if (project.window.maxWindowsPerRun !== undefined)
      this.fn.addEnvironment('MAX_WINDOWS_PER_RUN', String(project.window.maxWindowsPerRun));
    if (project.window.queriesPerHour !== undefined)
      this.fn.addEnvironment('EXPORT_QUERIES_PER_HOUR', String(project.window.queriesPerHour));
    if (project.window.maxEventsPerExport !== undefined)
      this.fn.addEnvironment('MAX_EVENTS_PER_EXPORT', String(project.window.maxEventsPerExport));

    // --- Staging: parts + manifests, quarantined lines, the checkpoint and query budget — of this project only (keys
    // are `<area>/project=<id>/...`, functions/staging/layout.ts). Deletes clean up an uncommitted attempt.
    this.fn
      .addEnvironment('STAGING_BUCKET', staging.bucket.bucketName)
      .addEnvironment('STAGING_PREFIX', staging.prefix);
    staging.grantAreas(this.fn.role, {
      projectId: project.id,
      read: ['staging', 'quarantine', 'state'],
      write: ['staging', 'quarantine', 'state'],
      delete: ['staging', 'quarantine'],
    });

    // --- The schedule: Scheduler assumes a role that may invoke this function only and write to the DLQ only.
    const scheduleTimezone = project.schedule.timezone ?? project.timezone;
    this.schedule = new Schedule(this, 'Schedule', {
      description: `Runs the Mixpanel export of project ${label}`,
      schedule: ScheduleExpression.expression(project.schedule.expression, TimeZone.of(scheduleTimezone)),
      // Off: the scheduled time is the window clock; a flexible window would only add jitter to it.
      timeWindow: TimeWindow.off(),
      enabled: project.enabled,
      target: new ExportInvokeTarget(this, this.fn, props.scheduleDeadLetterQueue),
    });
  }
}

/**
 * Invokes the export function with the scheduled export event. Written out instead of aws-scheduler-targets'
 * LambdaInvoke, whose grantInvoke also allows every version and alias (`<arn>:*`): here the role may call
 * `lambda:InvokeFunction` on the one function ARN and `sqs:SendMessage` on the one DLQ, nothing else.
 */
class ExportInvokeTarget implements IScheduleTarget {
  constructor(
    private readonly scope: Construct,
    private readonly fn: ConnectorFunction,
    private readonly deadLetterQueue: IQueue,
  ) {}

  bind(schedule: ISchedule): ScheduleTargetConfig {
    const role: IRole = schedulerInvokeRole(this.scope, schedule, {
      description: "Lets EventBridge Scheduler start this project's export",
      functionArn: this.fn.function.functionArn,
      extra: [new PolicyStatement({ actions: ['sqs:SendMessage'], resources: [this.deadLetterQueue.queueArn] })],
    });
    return {
      arn: this.fn.function.functionArn,
      role,
      // docs/architecture.md "Export handler (contract)": the scheduled export event, exactly.
      input: ScheduleTargetInput.fromObject({ source: 'schedule', scheduledTime: ContextAttribute.scheduledTime }),
      deadLetterConfig: { arn: this.deadLetterQueue.queueArn },
      retryPolicy: {
        maximumEventAgeInSeconds: SCHEDULE_MAX_EVENT_AGE.toSeconds(),
        maximumRetryAttempts: SCHEDULE_RETRY_ATTEMPTS,
      },
    };
  }
}
