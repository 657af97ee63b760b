import { Duration, Stack } from 'aws-cdk-lib';
import { PolicyStatement } from 'aws-cdk-lib/aws-iam';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { EventType } from 'aws-cdk-lib/aws-s3';
import { SqsDestination } from 'aws-cdk-lib/aws-s3-notifications';
import { Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { DEFAULTS } from '#common/settings';
import type { ConnectorConfig } from '../config.ts';
import { BUNDLED_MAPPING_PATH, ConnectorFunction, FORWARD_TIMEOUT } from './connector-function.ts';
import { AEP_SECRET_SHAPE, SecretRef } from './secret-ref.ts';
import type { FunctionNetwork } from './network.ts';
import type { StagingBucket } from './staging-bucket.ts';

/** Powertools `service` of the forward Lambda: a dimension of every forward metric. */
export const FORWARD_SERVICE_NAME = 'mixpanel-aep-forward';

/**
 * "Set the source queue's visibility timeout to at least six times the timeout that you configure on your function"
 * — the extra time lets Lambda retry when the function is throttled while processing a previous batch.
 * https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html
 */
export const VISIBILITY_TIMEOUT_FACTOR = 6;
/** Attempts per manifest before it goes to the DLQ (each attempt resumes from the receipts already written). */
export const MAX_RECEIVE_COUNT = 5;

/** Props of {@link Forwarder}. */
export interface ForwarderProps {
  readonly config: ConnectorConfig;
  readonly staging: StagingBucket;
  readonly entry: string;
  readonly logRetention: RetentionDays;
  /** VPC placement (config `network`). @default - Lambda's own network */
  readonly network?: FunctionNetwork;
}

/**
 * manifest.json created → S3 notification → SQS (DLQ after {@link MAX_RECEIVE_COUNT} receives) → forward Lambda.
 *
 * Partitioned windows come back to the same queue as one message per partition (the fan-out; with the batch sink all
 * of a run's partitions fill one Platform batch). Concurrency is bounded by the event source's maximum concurrency
 * (`aep.maxConcurrency`), not by reserved concurrency, whose throttled receives would send healthy manifests to the
 * DLQ; the default keeps AEP's streaming guidance with a wide margin, and the batch sink is held to
 * `BATCH_MAX_CONCURRENCY` (lib/config.ts; the arithmetic and sources: docs/deploy.md "Forwarder concurrency and AEP's
 * limits").
 */
export class Forwarder extends Construct {
  readonly fn: ConnectorFunction;
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;
  readonly secret: SecretRef;

  constructor(scope: Construct, id: string, props: ForwarderProps) {
    super(scope, id);
    const { config, staging } = props;
    const aep = config.aep;
    const localMapping = isLocalMapping(config.mapping) ? config.mapping : undefined;

    this.fn = new ConnectorFunction(this, 'Forward', {
      entry: props.entry,
      description: 'Maps staged Mixpanel windows to XDM and sends them to Adobe Experience Platform',
      timeout: FORWARD_TIMEOUT,
      serviceName: FORWARD_SERVICE_NAME,
      metricsNamespace: config.metricsNamespace,
      logRetention: props.logRetention,
      ...(localMapping !== undefined ? { bundledMappingFile: localMapping } : {}),
      ...(props.network !== undefined ? { network: props.network } : {}),
    });

    // --- Staging: read the manifests and parts, write receipts (delivery/) and refused records (rejected/); mark runs
    // for Platform's verdict (verify/pending/) and remove the marker once it is known.
    this.fn
      .addEnvironment('STAGING_BUCKET', staging.bucket.bucketName)
      .addEnvironment('STAGING_PREFIX', staging.prefix);
    staging.grantAreas(this.fn.role, {
      read: ['staging', 'delivery', 'rejected', 'verify'],
      write: ['delivery', 'rejected', 'verify'],
      delete: ['verify'],
    });

    // --- AEP credentials: the secret's id in the environment, read access to exactly that secret.
    this.secret = new SecretRef(this, 'AepSecret', {
      config: aep.secret,
      shape: AEP_SECRET_SHAPE,
      purpose: 'Adobe Experience Platform OAuth Server-to-Server credentials',
    });
    this.fn.addEnvironment('AEP_SECRET_ID', this.secret.secretId);
    this.secret.grantRead(this.fn.role);

    // --- AEP target (plain values; no AWS permission involved)
    this.fn
      .addEnvironment('AEP_IMS_URL', aep.imsUrl)
      .addEnvironment('AEP_SINK', aep.sink)
      .addEnvironment('AEP_PLATFORM_URL', aep.platformUrl)
      .addEnvironment('AEP_SANDBOX', aep.sandbox)
      .addEnvironment('AEP_DATASET_ID', aep.datasetId)
      .addEnvironment('AEP_SCHEMA_ID', aep.schemaId)
      .addEnvironment('AEP_TENANT_ID', aep.tenantId);
    if (aep.sink === 'batch') {
      this.fn
        .addEnvironment('AEP_BATCH_PARTIAL_INGESTION_PERCENT', String(aep.batch.partialIngestionPercent))
        .addEnvironment('AEP_BATCH_ERROR_DIAGNOSTICS', String(aep.batch.errorDiagnostics));
    }
    if (aep.inletUrl !== undefined) this.fn.addEnvironment('AEP_INLET_URL', aep.inletUrl);
    if (aep.flowId !== undefined) this.fn.addEnvironment('AEP_FLOW_ID', aep.flowId);
    if (aep.schemaVersion !== undefined) this.fn.addEnvironment('AEP_SCHEMA_VERSION', aep.schemaVersion);
    this.fn.addEnvironment('AEP_PROFILE_ENABLED', String(aep.profileEnabled));
    if (aep.profileEnabled) {
      // Profile's throughput is per organisation: the forwarders running at once share it.
      const rate = aep.profileRecordsPerSecond ?? DEFAULTS.profileRecordsPerSecond;
      const perLambda = Math.max(1, Math.floor(rate / aep.maxConcurrency));
      this.fn.addEnvironment('AEP_PROFILE_RECORDS_PER_SECOND', String(perLambda));
    }

    // --- Mapping: a preset name, an S3 object (read access to that one object), or a file bundled with the code.
    if (localMapping !== undefined) {
      this.fn.addEnvironment('MAPPING', BUNDLED_MAPPING_PATH);
    } else {
      this.fn.addEnvironment('MAPPING', config.mapping);
      const s3 = /^s3:\/\/([^/]+)\/(.+)$/.exec(config.mapping);
      if (s3) {
        this.fn.role.addToPrincipalPolicy(
          new PolicyStatement({
            actions: ['s3:GetObject'],
            resources: [`arn:${Stack.of(this).partition}:s3:::${s3[1]}/${s3[2]}`],
          }),
        );
      }
    }

    // One forwarder serves every project: each manifest carries its project's id, timezone and legacy-time flag
    // (functions/staging/manifest.ts), so no per-project setting is needed here.

    // --- The trigger
    this.deadLetterQueue = new Queue(this, 'DeadLetterQueue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.days(14), // SQS maximum: time to notice, fix and redrive.
    });
    this.queue = new Queue(this, 'ManifestQueue', {
      // SSE-SQS: S3 event notifications cannot publish to queues encrypted with the AWS managed KMS key.
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      visibilityTimeout: Duration.seconds(FORWARD_TIMEOUT.toSeconds() * VISIBILITY_TIMEOUT_FACTOR),
      retentionPeriod: Duration.days(4),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: MAX_RECEIVE_COUNT },
    });

    // Only a window's commit marker triggers forwarding; parts of an uncommitted attempt never do.
    staging.bucket.addEventNotification(EventType.OBJECT_CREATED, new SqsDestination(this.queue), {
      prefix: staging.keyPrefix('staging'),
      suffix: 'manifest.json',
    });

    // The event source mapping polls the queue with the function's role. Written out instead of SqsEventSource, whose
    // grantConsumeMessages also adds sqs:GetQueueUrl, which polling never uses (the deploy test checks every grant).
    // https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-configure.html (execution role permissions)
    this.fn.role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['sqs:ReceiveMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes', 'sqs:DeleteMessage'],
        resources: [this.queue.queueArn],
      }),
    );
    // The fan-out (both sinks): a partitioned window's notification sends one message per partition back to this
    // queue, and the event source mapping runs them concurrently within maxConcurrency. Send rights on this queue only.
    this.fn.addEnvironment('FORWARD_QUEUE_URL', this.queue.queueUrl);
    this.fn.role.addToPrincipalPolicy(
      new PolicyStatement({ actions: ['sqs:SendMessage'], resources: [this.queue.queueArn] }),
    );
    const source = this.fn.function.addEventSourceMapping('ManifestQueueSource', {
      eventSourceArn: this.queue.queueArn,
      batchSize: 1,
      reportBatchItemFailures: true,
      maxConcurrency: aep.maxConcurrency,
    });
    // Lambda checks the role's permissions when the mapping is created.
    source.node.addDependency(this.fn.role);
  }
}

/** A mapping given as a local file (already resolved to an absolute path by the config loader). */
export function isLocalMapping(mapping: string): boolean {
  return mapping !== 'default' && mapping !== 'adobe-source' && !mapping.startsWith('s3://');
}
