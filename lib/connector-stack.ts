import { existsSync } from 'node:fs';
import { join } from 'node:path';
import {
  Annotations,
  Aws,
  CfnOutput,
  CfnResource,
  Duration,
  Fn,
  RemovalPolicy,
  Stack,
  type StackProps,
} from 'aws-cdk-lib';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import type { Construct } from 'constructs';
import type { ConnectorConfig } from './config.ts';
import { PROJECT_ROOT } from './constructs/connector-function.ts';
import { ExportProject } from './constructs/export-project.ts';
import { Forwarder } from './constructs/forwarder.ts';
import { Monitoring } from './constructs/monitoring.ts';
import { ConnectorNetwork } from './constructs/network.ts';
import { MIXPANEL_SECRET_SHAPE, SecretRef } from './constructs/secret-ref.ts';
import { StagingBucket } from './constructs/staging-bucket.ts';
import { VerifySchedule } from './constructs/verify-schedule.ts';
import { acknowledge } from './nag.ts';

/** Handler files, relative to the repository root. */
export const HANDLER_ENTRIES = {
  export: 'functions/export/handler.ts',
  forward: 'functions/forward/handler.ts',
} as const;

/**
 * Feature flags this stack relies on, set on the stack so that `cdk synth` and the tests agree whatever cdk.json says:
 * server access logs are granted with a bucket policy, not with ACLs (which bucket-owner-enforced buckets reject).
 */
const FEATURE_FLAGS = {
  '@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy': true,
  '@aws-cdk/aws-s3:createDefaultLoggingPolicy': true,
} as const;

/** The id of CDK's stack-singleton bucket-notifications handler (aws-s3 NotificationsResourceHandler). */
const NOTIFICATIONS_HANDLER_ID = 'BucketNotificationsHandler050a0587b7544547bf325f094a3db834';

/** Props of {@link ConnectorStack}. */
export interface ConnectorStackProps extends StackProps {
  /** The validated connector.config.json. */
  readonly config: ConnectorConfig;
  /**
   * Absolute paths of the two handlers (tests that skip bundling pass stubs).
   * @default functions/export/handler.ts and functions/forward/handler.ts in this repository
   */
  readonly entries?: { readonly export: string; readonly forward: string };
}

/**
 * The connector: per Mixpanel project a schedule and an export Lambda; one staging bucket; one forward Lambda fed by
 * manifest notifications through SQS and run every few minutes as the Platform verifier; alarms, a dashboard and
 * ready-to-paste operating commands as outputs.
 */
export class ConnectorStack extends Stack {
  readonly staging: StagingBucket;
  readonly projects: ExportProject[];
  readonly forwarder: Forwarder;
  readonly verifySchedule: VerifySchedule;
  readonly monitoring: Monitoring;
  readonly scheduleDeadLetterQueue: Queue;
  /** The VPC the functions run in, when `network.mode` is not `none`. */
  readonly network: ConnectorNetwork | undefined;

  constructor(scope: Construct, id: string, props: ConnectorStackProps) {
    super(scope, id, props);
    for (const [flag, value] of Object.entries(FEATURE_FLAGS)) this.node.setContext(flag, value);

    const { config } = props;
    const entries = props.entries ?? {
      export: join(PROJECT_ROOT, HANDLER_ENTRIES.export),
      forward: join(PROJECT_ROOT, HANDLER_ENTRIES.forward),
    };
    for (const [role, entry] of Object.entries(entries)) {
      if (!existsSync(entry)) throw new Error(`The ${role} handler ${entry} does not exist yet: the stack bundles it.`);
    }
    const logRetention = config.logRetentionDays as RetentionDays; // validated against the allowed values

    this.staging = new StagingBucket(this, 'Staging', {
      prefix: config.staging.prefix,
      ...(config.staging.bucketName !== undefined ? { bucketName: config.staging.bucketName } : {}),
      removalPolicy: config.staging.removalPolicy,
      retention: config.retention,
    });

    this.scheduleDeadLetterQueue = new Queue(this, 'ScheduleDeadLetterQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14),
    });

    // --- Stable egress (optional): the functions in a VPC behind NAT with known addresses.
    this.network =
      config.network.mode === 'none'
        ? undefined
        : new ConnectorNetwork(this, 'Network', { config: config.network, logRetention });
    const network = this.network?.functions;
    if (config.reserveExportConcurrency) this.warnReservedConcurrency(config.projects.length);

    // Projects that reference the same existing secret share one SecretRef (one grant per function either way).
    const sharedSecrets = new Map<string, SecretRef>();
    this.projects = config.projects.map((project) => {
      let secret: SecretRef | undefined;
      if (!project.secret.create) {
        const key = JSON.stringify(project.secret);
        secret = sharedSecrets.get(key);
        if (secret === undefined) {
          secret = new SecretRef(this, `MixpanelSecret${sharedSecrets.size}`, {
            config: project.secret,
            shape: MIXPANEL_SECRET_SHAPE,
            purpose: 'Mixpanel service account',
          });
          sharedSecrets.set(key, secret);
        }
      }
      return new ExportProject(this, `Project${project.id}`, {
        project,
        staging: this.staging,
        scheduleDeadLetterQueue: this.scheduleDeadLetterQueue,
        entry: entries.export,
        metricsNamespace: config.metricsNamespace,
        logRetention,
        ...(secret !== undefined ? { secret } : {}),
        reserveConcurrency: config.reserveExportConcurrency,
        ...(network !== undefined ? { network } : {}),
      });
    });

    this.forwarder = new Forwarder(this, 'Forwarder', {
      config,
      staging: this.staging,
      entry: entries.forward,
      logRetention,
      ...(network !== undefined ? { network } : {}),
    });

    this.verifySchedule = new VerifySchedule(this, 'Verify', {
      forward: this.forwarder.fn,
      everyMinutes: config.aep.verifyEveryMinutes,
    });

    this.monitoring = new Monitoring(this, 'Monitoring', {
      namespace: config.metricsNamespace,
      projects: this.projects,
      forwarder: this.forwarder,
      scheduleDeadLetterQueue: this.scheduleDeadLetterQueue,
      alarms: config.alarms,
    });

    this.addOutputs();
    this.acknowledgeFrameworkFindings();
    this.logFrameworkFunctions(logRetention);
  }

  /**
   * CDK's own deploy-time Lambdas (the bucket-notifications handler) would log to a group Lambda creates on first
   * use, kept forever. Each gets a log group of its own with the stack's retention, named in its LoggingConfig.
   * https://docs.aws.amazon.com/lambda/latest/dg/monitoring-cloudwatchlogs-loggroups.html
   */
  private logFrameworkFunctions(retention: RetentionDays): void {
    const handler = this.node.tryFindChild(NOTIFICATIONS_HANDLER_ID);
    const fn = handler?.node.tryFindChild('Resource');
    if (!(fn instanceof CfnResource) || fn.cfnResourceType !== 'AWS::Lambda::Function') return;
    const logs = new LogGroup(this, 'BucketNotificationsHandlerLogs', {
      retention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    fn.addPropertyOverride('LoggingConfig', { LogGroup: logs.logGroupName });
  }

  /**
   * Reserved concurrency must leave 100 executions unreserved in the account and region, so it fails to deploy on
   * accounts whose quota is small (new accounts start at 10): said at synth, before CloudFormation rolls back.
   * https://docs.aws.amazon.com/lambda/latest/dg/configuration-concurrency.html
   */
  private warnReservedConcurrency(projects: number): void {
    Annotations.of(this).addWarningV2(
      'connector:reserved-export-concurrency',
      `Each export function reserves 1 concurrent execution (${projects} in all). Lambda keeps 100 unreserved, so the ` +
        `deploy fails where the account's Lambda concurrency quota is below ${100 + projects} (new accounts: 10). ` +
        'Check: aws lambda get-account-settings --query AccountLimit.ConcurrentExecutions. Below that, request an ' +
        'increase or set "reserveExportConcurrency": false (docs/deploy.md).',
    );
  }

  /** Findings on resources the CDK adds on our behalf, or that cdk-nag cannot see through. */
  private acknowledgeFrameworkFindings(): void {
    acknowledge(
      this.scheduleDeadLetterQueue,
      'AwsSolutions-SQS3',
      'This queue is itself a dead-letter queue: the DeadLetterConfig of every export schedule points to it (cdk-nag only recognises DLQs referenced by an SQS RedrivePolicy).',
    );
    // S3 bucket notifications are configured by a CDK-provided custom resource Lambda.
    const handler = this.node.tryFindChild(NOTIFICATIONS_HANDLER_ID);
    if (handler !== undefined) {
      acknowledge(
        handler,
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]',
        "CDK's BucketNotificationsHandler (runs only during deployment to put the manifest.json notification) ships with the basic execution role for its logs; its only other permission is s3:PutBucketNotification on the staging bucket.",
      );
    }
  }

  private addOutputs(): void {
    const region = Aws.REGION;
    const out = (id: string, value: string, description: string) => new CfnOutput(this, id, { value, description });
    const bucket = this.staging.bucket.bucketName;

    out('StagingBucketName', bucket, 'The staging bucket (parts, manifests, checkpoints, receipts, rejects)');
    out(
      'StagingListCommand',
      Fn.join('', [
        'aws s3 ls --recursive s3://',
        bucket,
        '/',
        this.staging.keyPrefix('staging'),
        ' --region ',
        region,
        ' | grep manifest.json | tail',
      ]),
      'Lists the latest committed windows',
    );

    for (const p of this.projects) {
      const pid = p.project.id;
      const fnName = p.fn.function.functionName;
      out(`ExportFunctionName${pid}`, fnName, `Export function of Mixpanel project ${pid}`);
      out(
        `BackfillCommand${pid}`,
        Fn.join('', [
          // A backfill can run the full 15 minutes: the CLI's default 60 s read timeout would retry (and re-invoke).
          'aws lambda invoke --function-name ',
          fnName,
          ' --region ',
          region,
          ' --cli-read-timeout 900 --cli-binary-format raw-in-base64-out',
          ` --payload '{"from":"2024-01-01T00:00:00Z","to":"2024-01-02T00:00:00Z","mode":"event-time"}' backfill-${pid}.json && cat backfill-${pid}.json`,
        ]),
        `Backfills project ${pid} (edit from/to; add "dryRun":true to preview, "force":true to redo committed windows)`,
      );
      out(
        `TailExportLogsCommand${pid}`,
        Fn.join('', ['aws logs tail ', p.fn.logGroup.logGroupName, ' --follow --region ', region]),
        `Follows the export logs of project ${pid}`,
      );
      if (p.secret.created) {
        out(
          `PutMixpanelSecretCommand${pid}`,
          Fn.join('', [
            'aws secretsmanager put-secret-value --region ',
            region,
            ' --secret-id ',
            p.secret.secretId,
            ` --secret-string '{"username":"<service account username>","secret":"<service account secret>"}'`,
          ]),
          `Fills the placeholder Mixpanel secret of project ${pid}`,
        );
      }
    }

    if (this.network !== undefined && this.network.egressIps.length > 0) {
      out(
        'EgressIps',
        Fn.join(',', this.network.egressIps),
        'Public addresses the functions leave through: allow-list these at Mixpanel and Adobe',
      );
    }

    const fwd = this.forwarder;
    out('ForwardFunctionName', fwd.fn.function.functionName, 'The forward function');
    out(
      'TailForwardLogsCommand',
      Fn.join('', ['aws logs tail ', fwd.fn.logGroup.logGroupName, ' --follow --region ', region]),
      'Follows the forward logs',
    );
    out(
      'ForwardDlqRedriveCommand',
      Fn.join('', [
        'aws sqs start-message-move-task --region ',
        region,
        ' --source-arn ',
        fwd.deadLetterQueue.queueArn,
        ' --destination-arn ',
        fwd.queue.queueArn,
      ]),
      'Moves manifests from the forward DLQ back to the manifest queue (after fixing the cause)',
    );
    out(
      'ScheduleDlqInspectCommand',
      Fn.join('', [
        'aws sqs receive-message --region ',
        region,
        ' --max-number-of-messages 10 --queue-url ',
        this.scheduleDeadLetterQueue.queueUrl,
      ]),
      'Shows scheduled export events Scheduler could not deliver',
    );
    if (fwd.secret.created) {
      out(
        'PutAepSecretCommand',
        Fn.join('', [
          'aws secretsmanager put-secret-value --region ',
          region,
          ' --secret-id ',
          fwd.secret.secretId,
          ` --secret-string '{"clientId":"...","clientSecret":"...","orgId":"...@AdobeOrg"}'`,
        ]),
        'Fills the placeholder AEP secret',
      );
    }
    out(
      'DashboardUrl',
      Fn.join('', [
        'https://',
        region,
        '.console.aws.amazon.com/cloudwatch/home?region=',
        region,
        '#dashboards/dashboard/',
        this.monitoring.dashboard.dashboardName,
      ]),
      'The CloudWatch dashboard',
    );
  }
}
