import { ArnFormat, Duration, Stack } from 'aws-cdk-lib';
import { PolicyStatement, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import {
  Alarm,
  AlarmStatusWidget,
  ComparisonOperator,
  Dashboard,
  GraphWidget,
  type IMetric,
  MathExpression,
  Metric,
  TextWidget,
  TreatMissingData,
  type IWidget,
} from 'aws-cdk-lib/aws-cloudwatch';
import { SnsAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import { type ITopic, Topic } from 'aws-cdk-lib/aws-sns';
import { EmailSubscription } from 'aws-cdk-lib/aws-sns-subscriptions';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { missedWindowPeriodMinutes } from '../config.ts';
import type { ConnectorFunction } from './connector-function.ts';
import { EXPORT_SERVICE_NAME, type ExportProject } from './export-project.ts';
import { FORWARD_SERVICE_NAME, type Forwarder } from './forwarder.ts';

/**
 * The metrics the Lambdas emit (Powertools EMF, namespace POWERTOOLS_METRICS_NAMESPACE). Powertools always adds the
 * `service` dimension (POWERTOOLS_SERVICE_NAME), so each metric's dimension set is exactly {service, ProjectId}.
 */
export const CONNECTOR_METRICS = {
  export: ['EventsExported', 'EventsQuarantined', 'WindowsCommitted', 'WindowLagSeconds', 'WindowsRemaining'],
  forward: [
    'RecordsAccepted',
    'RecordsRejected',
    // The Platform verifier (runs in the forward Lambda) and the forwarder's whole-request refusals.
    'RecordsIngested',
    'RecordsFailedAtPlatform',
    'PlatformBatchesFailed',
    'PlatformConfigurationFaults',
    'PlatformVerdictsMissing',
  ],
} as const;

/**
 * Platform's verdict, alarmed per project when any occurs in a period (Sum > 0): each needs an operator — records
 * Platform refused after accepting them, a batch Platform failed, or a request refused whole for its configuration.
 */
export const PLATFORM_VERDICT_ALARMS = [
  {
    metric: 'RecordsFailedAtPlatform',
    id: 'FailedAtPlatform',
    says: 'Platform refused records of project {pid} after accepting them: they are in rejected/ with a reason starting "platform"',
  },
  {
    metric: 'PlatformBatchesFailed',
    id: 'PlatformBatchFailed',
    says: "A Platform batch of project {pid} failed: see the window's platform verdict (window.json) and re-send it (docs/deploy.md)",
  },
  {
    metric: 'PlatformConfigurationFaults',
    id: 'PlatformConfigurationFault',
    says: 'Platform refused whole requests of project {pid} for their configuration (dataflow, schema, dataset, org, sandbox or credentials): fix it; the window is re-sent in full',
  },
  {
    metric: 'PlatformVerdictsMissing',
    id: 'PlatformVerdictMissing',
    says: "Platform gave no final verdict on a forwarded window of project {pid} within 24 h: check the dataset's batches, then `npm run cli -- verify --window`",
  },
] as const;

/** Age of the oldest waiting manifest that raises ForwardBacklogAge. */
export const FORWARD_BACKLOG_ALARM_SECONDS = 3 * 3600;

/** Props of {@link Monitoring}. */
export interface MonitoringProps {
  readonly namespace: string;
  readonly projects: readonly ExportProject[];
  readonly forwarder: Forwarder;
  readonly scheduleDeadLetterQueue: IQueue;
  readonly alarms: {
    readonly email?: string | undefined;
    readonly snsTopicArn?: string | undefined;
    readonly maxRejectionRate: number;
    readonly missedWindows: number;
  };
  /** @default - generated */
  readonly dashboardName?: string;
}

/**
 * Alarms (function errors, both DLQs, missed windows per project, rejection rate per project, Platform's verdict per
 * project), an optional SNS topic they notify, and one dashboard.
 */
export class Monitoring extends Construct {
  readonly alarms: Alarm[] = [];
  readonly topics: ITopic[] = [];
  readonly dashboard: Dashboard;
  private readonly namespace: string;

  constructor(scope: Construct, id: string, props: MonitoringProps) {
    super(scope, id);
    this.namespace = props.namespace;

    if (props.alarms.email !== undefined) {
      const topic = new Topic(this, 'AlarmTopic', { displayName: 'Mixpanel → AEP connector alarms', enforceSSL: true });
      topic.addSubscription(new EmailSubscription(props.alarms.email));
      // The topic's policy holds CDK's TLS-only deny; this lets the alarms of this account and region publish to it,
      // and no one else (confused-deputy guard on both the source account and the alarm ARNs).
      // https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/Notify_Users_Alarm_Changes.html
      const stack = Stack.of(this);
      topic.addToResourcePolicy(
        new PolicyStatement({
          sid: 'AllowCloudWatchAlarmsToPublish',
          principals: [new ServicePrincipal('cloudwatch.amazonaws.com')],
          actions: ['sns:Publish'],
          resources: [topic.topicArn],
          conditions: {
            StringEquals: { 'aws:SourceAccount': stack.account },
            ArnLike: {
              'aws:SourceArn': stack.formatArn({
                service: 'cloudwatch',
                resource: 'alarm',
                resourceName: '*',
                arnFormat: ArnFormat.COLON_RESOURCE_NAME,
              }),
            },
          },
        }),
      );
      this.topics.push(topic);
    }
    if (props.alarms.snsTopicArn !== undefined) {
      this.topics.push(Topic.fromTopicArn(this, 'ExistingAlarmTopic', props.alarms.snsTopicArn));
    }

    const fwd = props.forwarder;
    const fiveMinutes = Duration.minutes(5);

    // --- Errors of every function: any failed invocation is worth a look (retries and catch-up hide nothing).
    for (const p of props.projects)
      this.errorsAlarm(`ExportErrors${p.project.id}`, p.fn, `Export of Mixpanel project ${p.project.id} failed`);
    this.errorsAlarm('ForwardErrors', fwd.fn, 'Forwarding to AEP failed');

    // --- The forwarder answers SQS with partial-batch failures instead of throwing, so a window that keeps failing
    // does not show in its Errors metric: it shows as a manifest waiting. Normal forwarding takes minutes; each failed
    // attempt waits out the 60-minute visibility timeout, so 3 h means repeated failures (or a backlog far behind).
    this.alarm('ForwardBacklogAge', {
      metric: fwd.queue.metricApproximateAgeOfOldestMessage({ period: fiveMinutes, statistic: 'Maximum' }),
      threshold: FORWARD_BACKLOG_ALARM_SECONDS,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      description:
        'A committed window has waited more than 3 h to be forwarded: forwarding keeps failing or is far behind (see TailForwardLogsCommand)',
    });

    // --- Dead-letter queues: anything there needs an operator.
    this.alarm('ForwardDlqDepth', {
      metric: fwd.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: fiveMinutes,
        statistic: 'Maximum',
      }),
      threshold: 0,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      description:
        'Manifests failed forwarding 5 times and wait in the DLQ: fix the cause, then redrive (see the ForwardDlqRedriveCommand output)',
    });
    this.alarm('ScheduleDlqDepth', {
      metric: props.scheduleDeadLetterQueue.metricApproximateNumberOfMessagesVisible({
        period: fiveMinutes,
        statistic: 'Maximum',
      }),
      threshold: 0,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      description:
        'EventBridge Scheduler could not invoke an export function: check its role and the function, then purge the queue (the next run catches up)',
    });

    // --- Per project: no committed window for N schedule intervals; rejection rate over an hour.
    for (const p of props.projects) {
      const pid = p.project.id;
      const interval = missedWindowPeriodMinutes(p.project);
      if (p.project.enabled) {
        this.alarm(`MissedWindows${pid}`, {
          metric: this.metric('WindowsCommitted', EXPORT_SERVICE_NAME, pid, {
            statistic: 'Sum',
            period: Duration.minutes(interval),
          }),
          threshold: 1,
          comparisonOperator: ComparisonOperator.LESS_THAN_THRESHOLD,
          evaluationPeriods: props.alarms.missedWindows,
          datapointsToAlarm: props.alarms.missedWindows,
          // No datapoint means no commit: an export that never runs emits nothing.
          treatMissingData: TreatMissingData.BREACHING,
          description: `No window of Mixpanel project ${pid} committed for ${props.alarms.missedWindows} intervals of ${interval} min`,
        });
      }
      this.alarm(`RejectionRate${pid}`, {
        metric: this.rejectionRate(pid),
        threshold: props.alarms.maxRejectionRate,
        comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
        treatMissingData: TreatMissingData.NOT_BREACHING,
        description: `More than ${props.alarms.maxRejectionRate * 100}% of project ${pid}'s records were rejected in an hour: see rejected/ in the staging bucket`,
      });
    }

    // --- Per project: Platform's verdict (verifier) and configuration faults (forwarder).
    for (const p of props.projects) {
      const pid = p.project.id;
      for (const a of PLATFORM_VERDICT_ALARMS) {
        this.alarm(`${a.id}${pid}`, {
          metric: this.metric(a.metric, FORWARD_SERVICE_NAME, pid, { statistic: 'Sum', period: fiveMinutes }),
          threshold: 0,
          comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
          description: a.says.replace('{pid}', pid),
        });
      }
    }

    this.dashboard = new Dashboard(this, 'Dashboard', {
      ...(props.dashboardName !== undefined ? { dashboardName: props.dashboardName } : {}),
      defaultInterval: Duration.days(1),
      widgets: this.widgets(props),
    });
  }

  /** One connector metric with its exact dimension set. */
  metric(
    name: string,
    service: string,
    projectId: string,
    opts: { statistic: string; period: Duration; label?: string },
  ): Metric {
    return new Metric({
      namespace: this.namespace,
      metricName: name,
      dimensionsMap: { service, ProjectId: projectId },
      statistic: opts.statistic,
      period: opts.period,
      ...(opts.label !== undefined ? { label: opts.label } : {}),
    });
  }

  /** rejected / (accepted + rejected) per hour; a missing series counts as 0, an idle hour as 0%. */
  rejectionRate(projectId: string): MathExpression {
    const hour = Duration.hours(1);
    // Ids are per project: one graph shows every project's expression, and ids must be unique within it.
    const a = `accepted${projectId}`;
    const r = `rejected${projectId}`;
    return new MathExpression({
      expression: `IF((FILL(${a}, 0) + FILL(${r}, 0)) > 0, FILL(${r}, 0) / (FILL(${a}, 0) + FILL(${r}, 0)), 0)`,
      usingMetrics: {
        [a]: this.metric('RecordsAccepted', FORWARD_SERVICE_NAME, projectId, { statistic: 'Sum', period: hour }),
        [r]: this.metric('RecordsRejected', FORWARD_SERVICE_NAME, projectId, { statistic: 'Sum', period: hour }),
      },
      period: hour,
      label: `Rejection rate ${projectId}`,
    });
  }

  private errorsAlarm(id: string, fn: ConnectorFunction, description: string): void {
    this.alarm(id, {
      metric: fn.function.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }),
      threshold: 0,
      comparisonOperator: ComparisonOperator.GREATER_THAN_THRESHOLD,
      description: `${description}: read its logs (see the Tail*Command outputs)`,
    });
  }

  private alarm(
    id: string,
    props: {
      metric: IMetric;
      threshold: number;
      comparisonOperator: ComparisonOperator;
      description: string;
      evaluationPeriods?: number;
      datapointsToAlarm?: number;
      treatMissingData?: TreatMissingData;
    },
  ): void {
    const alarm = new Alarm(this, id, {
      metric: props.metric,
      threshold: props.threshold,
      comparisonOperator: props.comparisonOperator,
      evaluationPeriods: props.evaluationPeriods ?? 1,
      datapointsToAlarm: props.datapointsToAlarm ?? 1,
      treatMissingData: props.treatMissingData ?? TreatMissingData.NOT_BREACHING,
      alarmDescription: props.description,
    });
    for (const topic of this.topics) {
      alarm.addAlarmAction(new SnsAction(topic));
      alarm.addOkAction(new SnsAction(topic));
    }
    this.alarms.push(alarm);
  }

  /** "Platform verdict": what Platform accepted, then stored or refused, and the two kinds of Platform faults. */
  private platformVerdictRow(props: MonitoringProps): IWidget[] {
    const hour = Duration.hours(1);
    const sum = (metric: string, pid: string, label: string) =>
      this.metric(metric, FORWARD_SERVICE_NAME, pid, { statistic: 'Sum', period: hour, label: `${label} ${pid}` });
    return [
      new GraphWidget({
        title: 'Platform verdict: accepted / ingested / failed at Platform',
        left: props.projects.flatMap((p) => [
          sum('RecordsAccepted', p.project.id, 'accepted'),
          sum('RecordsIngested', p.project.id, 'ingested'),
          sum('RecordsFailedAtPlatform', p.project.id, 'failed at Platform'),
        ]),
        width: 12,
      }),
      new GraphWidget({
        title: 'Platform verdict: failed batches / configuration faults',
        left: props.projects.flatMap((p) => [
          sum('PlatformBatchesFailed', p.project.id, 'failed batches'),
          sum('PlatformConfigurationFaults', p.project.id, 'configuration faults'),
          sum('PlatformVerdictsMissing', p.project.id, 'verdicts missing'),
        ]),
        width: 12,
      }),
    ];
  }

  private widgets(props: MonitoringProps): IWidget[][] {
    const hour = Duration.hours(1);
    const fwd = props.forwarder;
    const rows: IWidget[][] = [
      [
        new TextWidget({
          markdown:
            '# Mixpanel → AEP connector\nExport per project (schedule → staging), forward (manifest → AEP). Alarms below; runbook in docs/deploy.md.',
          width: 24,
          height: 2,
        }),
      ],
      [new AlarmStatusWidget({ title: 'Alarms', alarms: this.alarms, width: 24, height: 4 })],
    ];
    for (const p of props.projects) {
      const pid = p.project.id;
      const name = p.project.name ? `${p.project.name} (${pid})` : pid;
      const exp = (metric: string, statistic: string) =>
        this.metric(metric, EXPORT_SERVICE_NAME, pid, { statistic, period: hour, label: metric });
      rows.push([
        new GraphWidget({
          title: `${name}: events exported / quarantined`,
          left: [exp('EventsExported', 'Sum'), exp('EventsQuarantined', 'Sum')],
          width: 6,
        }),
        new GraphWidget({
          title: `${name}: windows committed / left (backfill progress)`,
          left: [exp('WindowsCommitted', 'Sum')],
          right: [exp('WindowsRemaining', 'Minimum')],
          width: 6,
        }),
        new GraphWidget({ title: `${name}: window lag (s)`, left: [exp('WindowLagSeconds', 'Maximum')], width: 6 }),
        new GraphWidget({
          title: `${name}: export function`,
          left: [p.fn.function.metricErrors({ period: hour }), p.fn.function.metricThrottles({ period: hour })],
          right: [p.fn.function.metricDuration({ period: hour, statistic: 'Maximum' })],
          width: 6,
        }),
      ]);
    }
    rows.push([
      new GraphWidget({
        title: 'Records accepted / rejected by AEP',
        left: props.projects.flatMap((p) => [
          this.metric('RecordsAccepted', FORWARD_SERVICE_NAME, p.project.id, {
            statistic: 'Sum',
            period: hour,
            label: `accepted ${p.project.id}`,
          }),
          this.metric('RecordsRejected', FORWARD_SERVICE_NAME, p.project.id, {
            statistic: 'Sum',
            period: hour,
            label: `rejected ${p.project.id}`,
          }),
        ]),
        width: 8,
      }),
      new GraphWidget({
        title: 'Rejection rate',
        left: props.projects.map((p) => this.rejectionRate(p.project.id)),
        leftAnnotations: [{ value: props.alarms.maxRejectionRate, label: 'alarm' }],
        width: 8,
      }),
      new GraphWidget({
        title: 'Forward function',
        left: [fwd.fn.function.metricErrors({ period: hour }), fwd.fn.function.metricInvocations({ period: hour })],
        right: [fwd.fn.function.metricDuration({ period: hour, statistic: 'Maximum' })],
        width: 8,
      }),
    ]);
    rows.push(this.platformVerdictRow(props));
    rows.push([
      new GraphWidget({
        title: 'Manifest queue',
        left: [
          fwd.queue.metricApproximateNumberOfMessagesVisible({ period: Duration.minutes(5), statistic: 'Maximum' }),
        ],
        right: [fwd.queue.metricApproximateAgeOfOldestMessage({ period: Duration.minutes(5), statistic: 'Maximum' })],
        width: 12,
      }),
      new GraphWidget({
        title: 'Dead-letter queues',
        left: [
          fwd.deadLetterQueue.metricApproximateNumberOfMessagesVisible({
            period: Duration.minutes(5),
            statistic: 'Maximum',
            label: 'forward DLQ',
          }),
          props.scheduleDeadLetterQueue.metricApproximateNumberOfMessagesVisible({
            period: Duration.minutes(5),
            statistic: 'Maximum',
            label: 'schedule DLQ',
          }),
        ],
        width: 12,
      }),
    ]);
    return rows;
  }
}
