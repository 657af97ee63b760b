import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Capture, Match, type Template } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportEphemeralStorageMiB } from '../../lib/constructs/export-project.ts';
import {
  actionsOf,
  exportFunctionId,
  forwardFunctionId,
  oneProjectConfig,
  props,
  render,
  resourcesOf,
  roleOf,
  statementsOf,
  synthStack,
  twoProjectConfig,
} from './helpers.ts';

const SCHEDULED_EVENT = '{"source":"schedule","scheduledTime":"<aws.scheduler.scheduled-time>"}';
const VERIFY_EVENT = '{"action":"verify"}';

/** The variables the export Lambda's config parser reads (functions/common/config.ts), plus Powertools/Node. */
const EXPORT_ENV_KEYS = [
  'AWS_LAMBDA_EXEC_WRAPPER',
  'CONNECTOR_NODE_ARGS',
  'LOOKBACK_DAYS',
  'MALLOC_ARENA_MAX',
  'MALLOC_MMAP_THRESHOLD_',
  'MIXPANEL_LEGACY_LOCAL_TIME',
  'MIXPANEL_PROJECT_ID',
  'MIXPANEL_PROJECT_TIMEZONE',
  'MIXPANEL_REGION',
  'MIXPANEL_SECRET_ID',
  'NODE_OPTIONS',
  'POWERTOOLS_LOG_LEVEL',
  'POWERTOOLS_METRICS_NAMESPACE',
  'POWERTOOLS_SERVICE_NAME',
  'SETTLE_MINUTES',
  'STAGING_BUCKET',
  'STAGING_PREFIX',
  'WINDOW_MINUTES',
  'WINDOW_MODE',
];
const FORWARD_ENV_KEYS = [
  'AEP_DATASET_ID',
  'AEP_FLOW_ID',
  'AEP_IMS_URL',
  'AEP_INLET_URL',
  'AEP_PLATFORM_URL',
  'AEP_PROFILE_ENABLED',
  'AEP_SANDBOX',
  'AEP_SCHEMA_ID',
  'AEP_SECRET_ID',
  'AEP_SINK',
  'AEP_TENANT_ID',
  'AWS_LAMBDA_EXEC_WRAPPER',
  'CONNECTOR_NODE_ARGS',
  'FORWARD_QUEUE_URL',
  'MALLOC_ARENA_MAX',
  'MALLOC_MMAP_THRESHOLD_',
  'MAPPING',
  'NODE_OPTIONS',
  'POWERTOOLS_LOG_LEVEL',
  'POWERTOOLS_METRICS_NAMESPACE',
  'POWERTOOLS_SERVICE_NAME',
  'STAGING_BUCKET',
  'STAGING_PREFIX',
];

/** Actions that read or change data; they must never apply to "*". */
const DATA_ACTION = /^(s3|secretsmanager|sqs|kms|lambda|sns|logs):/;

describe('ConnectorStack with two projects', () => {
  let template: Template;
  let exp111: string;
  let exp222: string;
  let fwd: string;

  beforeAll(() => {
    ({ template } = synthStack(twoProjectConfig()));
    exp111 = exportFunctionId(template, '111');
    exp222 = exportFunctionId(template, '222');
    fwd = forwardFunctionId(template);
  });

  it('should give each project a schedule with its expression, timezone and the scheduled export event', () => {
    // Assess: two export schedules and the verifier's
    template.resourceCountIs('AWS::Scheduler::Schedule', 3);
    const dlq = new Capture();
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'rate(1 hour)',
      // Defaults to the project's timezone.
      ScheduleExpressionTimezone: 'America/Los_Angeles',
      FlexibleTimeWindow: { Mode: 'OFF' },
      State: 'ENABLED',
      Target: {
        Arn: { 'Fn::GetAtt': [exp111, 'Arn'] },
        Input: SCHEDULED_EVENT,
        RetryPolicy: { MaximumEventAgeInSeconds: 3600, MaximumRetryAttempts: 10 },
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': [dlq, 'Arn'] } },
      },
    });
    template.hasResourceProperties('AWS::Scheduler::Schedule', {
      ScheduleExpression: 'cron(15 */2 * * ? *)',
      ScheduleExpressionTimezone: 'UTC',
      FlexibleTimeWindow: { Mode: 'OFF' },
      Target: {
        Arn: { 'Fn::GetAtt': [exp222, 'Arn'] },
        Input: SCHEDULED_EVENT,
        DeadLetterConfig: { Arn: { 'Fn::GetAtt': [dlq.asString(), 'Arn'] } },
      },
    });
    template.hasResourceProperties('AWS::SQS::Queue', Match.objectLike({ MessageRetentionPeriod: 1209600 }));
    expect(props(template, dlq.asString())).toMatchObject({ SqsManagedSseEnabled: true });
  });

  it('should let each schedule role invoke only its own export function and write only to the schedule DLQ', () => {
    // Prepare
    const schedules = template.findResources('AWS::Scheduler::Schedule', {
      Properties: { Target: { Input: SCHEDULED_EVENT } },
    });
    expect(Object.keys(schedules)).toHaveLength(2);

    // biome-ignore lint/suspicious/noExplicitAny: CloudFormation properties are untyped JSON
    for (const schedule of Object.values(schedules) as { Properties: Record<string, any> }[]) {
      const target = schedule.Properties.Target;
      const roleId = target.RoleArn['Fn::GetAtt'][0];

      // Act
      const statements = statementsOf(template, roleId);

      // Assess
      expect(statements.map((s) => [actionsOf(s), resourcesOf(s)])).toEqual([
        [['lambda:InvokeFunction'], [target.Arn]],
        [['sqs:SendMessage'], [target.DeadLetterConfig.Arn]],
      ]);
      expect(props(template, roleId).AssumeRolePolicyDocument.Statement[0]).toMatchObject({
        Principal: { Service: 'scheduler.amazonaws.com' },
        Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
      });
    }
  });

  it('should run the Platform verifier every 5 minutes with a role that may only invoke the forward function', () => {
    // Prepare
    const schedules = template.findResources('AWS::Scheduler::Schedule', {
      Properties: { Target: { Input: VERIFY_EVENT } },
    });
    // biome-ignore lint/suspicious/noExplicitAny: CloudFormation properties are untyped JSON
    const [verify] = Object.values(schedules) as { Properties: Record<string, any> }[];
    const roleId = verify?.Properties.Target.RoleArn['Fn::GetAtt'][0];

    // Assess
    expect(Object.keys(schedules)).toHaveLength(1);
    expect(verify?.Properties).toMatchObject({
      ScheduleExpression: 'rate(5 minutes)',
      FlexibleTimeWindow: { Mode: 'OFF' },
      Target: {
        Arn: { 'Fn::GetAtt': [fwd, 'Arn'] },
        RetryPolicy: { MaximumEventAgeInSeconds: 300, MaximumRetryAttempts: 0 },
      },
    });
    expect(verify?.Properties.Target.DeadLetterConfig).toBeUndefined();
    expect(statementsOf(template, roleId).map((s) => [actionsOf(s), resourcesOf(s)])).toEqual([
      [['lambda:InvokeFunction'], [{ 'Fn::GetAtt': [fwd, 'Arn'] }]],
    ]);
    expect(props(template, roleId).AssumeRolePolicyDocument.Statement[0]).toMatchObject({
      Principal: { Service: 'scheduler.amazonaws.com' },
      Condition: { StringEquals: { 'aws:SourceAccount': { Ref: 'AWS::AccountId' } } },
    });
    // A late or failed run is made good by the next one: Lambda does not retry it either.
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: fwd },
      MaximumRetryAttempts: 0,
      MaximumEventAgeInSeconds: 300,
    });
  });

  it('should run every function on Node 22, arm64, with tracing, its own log group and the contract environment', () => {
    // Prepare
    const envKeys = (id: string) => Object.keys(props(template, id).Environment.Variables).sort();

    // Assess
    for (const id of [exp111, exp222, fwd]) {
      expect(props(template, id)).toMatchObject({
        Runtime: 'nodejs22.x',
        Architectures: ['arm64'],
        Handler: 'index.handler',
        MemorySize: 1024,
        TracingConfig: { Mode: 'Active' },
        LoggingConfig: { LogGroup: { Ref: expect.any(String) } },
      });
    }
    expect(envKeys(exp111)).toEqual(EXPORT_ENV_KEYS);
    expect(envKeys(exp222)).toEqual([...EXPORT_ENV_KEYS, 'MAX_WINDOWS_PER_RUN'].sort());
    expect(envKeys(fwd)).toEqual(FORWARD_ENV_KEYS);
    // Source-mapped traces and the small young generation the benchmark measures memory with; the exec wrapper keeps
    // the runtime's own young-generation flag from overriding it, and puts the old-generation floor on the command line
    for (const id of [exp111, exp222, fwd]) {
      expect(props(template, id).Environment.Variables).toMatchObject({
        NODE_OPTIONS: '--enable-source-maps --max-semi-space-size=4',
        MALLOC_ARENA_MAX: '2',
        MALLOC_MMAP_THRESHOLD_: '131072',
        AWS_LAMBDA_EXEC_WRAPPER: '/var/task/exec-wrapper.sh',
        CONNECTOR_NODE_ARGS: '--initial-old-space-size=56',
      });
    }
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
  });

  it('should give each export /tmp for a largest window of spilled parts, the forwarder Lambda’s default', () => {
    // Prepare: a third project whose windows may hold ten times the default ceiling of events
    const config = twoProjectConfig();
    const big = { ...config.projects[0]!, id: '333', name: 'big', window: { maxEventsPerExport: 10_000_000 } };
    const { template: withBig } = synthStack({ ...config, projects: [...config.projects, big] });
    // Assess: 1 M events × 169 B × 4 → 1,024 MiB; 10 M → 6,656 MiB; within Lambda's 512–10,240
    for (const id of [exp111, exp222]) expect(props(template, id).EphemeralStorage).toEqual({ Size: 1024 });
    expect(props(withBig, exportFunctionId(withBig, '333')).EphemeralStorage).toEqual({ Size: 6656 });
    expect(props(template, fwd).EphemeralStorage).toBeUndefined();
    expect([10_000, 1_000_000, 10_000_000, 100_000_000].map(exportEphemeralStorageMiB)).toEqual([
      512, 1024, 6656, 10_240,
    ]);
  });

  it('should configure each export from its project: secret id, windows, staging, one run at a time', () => {
    // Assess
    expect(props(template, exp111)).toMatchObject({
      Timeout: 900,
      ReservedConcurrentExecutions: 1,
      Environment: {
        Variables: {
          MIXPANEL_PROJECT_ID: '111',
          MIXPANEL_REGION: 'us',
          MIXPANEL_SECRET_ID: 'mixpanel/web',
          MIXPANEL_PROJECT_TIMEZONE: 'America/Los_Angeles',
          MIXPANEL_LEGACY_LOCAL_TIME: 'false',
          WINDOW_MINUTES: '60',
          WINDOW_MODE: 'processing-time',
          SETTLE_MINUTES: '30',
          LOOKBACK_DAYS: '5',
          STAGING_BUCKET: { Ref: expect.stringMatching(/^StagingBucket/) },
          STAGING_PREFIX: '',
          POWERTOOLS_SERVICE_NAME: 'mixpanel-aep-export',
          POWERTOOLS_METRICS_NAMESPACE: 'MixpanelAepConnector',
        },
      },
    });
    expect(props(template, exp222).Environment.Variables).toMatchObject({
      MIXPANEL_REGION: 'eu',
      MIXPANEL_SECRET_ID: { Ref: expect.stringMatching(/^Project222MixpanelSecretPlaceholder/) },
      MIXPANEL_LEGACY_LOCAL_TIME: 'true',
      WINDOW_MINUTES: '120',
      WINDOW_MODE: 'event-time',
      SETTLE_MINUTES: '10',
      LOOKBACK_DAYS: '2',
      MAX_WINDOWS_PER_RUN: '12',
    });
    template.hasResourceProperties('AWS::Lambda::EventInvokeConfig', {
      FunctionName: { Ref: exp111 },
      MaximumRetryAttempts: 2,
    });
  });

  it('should configure the forwarder for AEP', () => {
    // Assess
    const vars = props(template, fwd).Environment.Variables;
    expect(props(template, fwd).Timeout).toBe(600);
    expect(props(template, fwd).ReservedConcurrentExecutions).toBeUndefined();
    expect(vars).toMatchObject({
      AEP_SECRET_ID: 'aep/creds',
      AEP_SINK: 'streaming',
      AEP_INLET_URL: 'https://dcs.adobedc.net/collection/abc123',
      AEP_SANDBOX: 'prod',
      AEP_DATASET_ID: 'ds123',
      AEP_SCHEMA_ID: 'https://ns.adobe.com/acme/schemas/s1',
      AEP_TENANT_ID: 'acme',
      MAPPING: 'default',
      POWERTOOLS_SERVICE_NAME: 'mixpanel-aep-forward',
    });
    // Project timezone and legacy-time flag travel in each manifest, not in the forwarder's environment.
    expect(Object.keys(vars).filter((k) => k.startsWith('MIXPANEL_'))).toEqual([]);
  });

  it('should wire manifest.json creations through SQS (DLQ, 6× visibility) to the forwarder with partial batch responses', () => {
    // Prepare
    const queue = new Capture();
    const dlq = new Capture();

    // Assess: S3 → SQS, only for manifests under staging/
    template.hasResourceProperties('Custom::S3BucketNotifications', {
      NotificationConfiguration: {
        QueueConfigurations: [
          {
            Events: ['s3:ObjectCreated:*'],
            Filter: {
              Key: {
                FilterRules: Match.arrayEquals([
                  { Name: 'suffix', Value: 'manifest.json' },
                  { Name: 'prefix', Value: 'staging/' },
                ]),
              },
            },
            QueueArn: { 'Fn::GetAtt': [queue, 'Arn'] },
          },
        ],
      },
    });
    // SQS: DLQ after 5 receives; visibility ≥ 6 × the forwarder's timeout
    template.hasResource('AWS::SQS::Queue', {
      Properties: {
        VisibilityTimeout: 6 * props(template, fwd).Timeout,
        SqsManagedSseEnabled: true,
        RedrivePolicy: { maxReceiveCount: 5, deadLetterTargetArn: { 'Fn::GetAtt': [dlq, 'Arn'] } },
      },
    });
    expect(props(template, queue.asString()).VisibilityTimeout).toBe(3600);
    expect(props(template, dlq.asString())).toMatchObject({ MessageRetentionPeriod: 1209600 });
    // SQS → Lambda
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [queue.asString(), 'Arn'] },
      FunctionName: { Ref: fwd },
      BatchSize: 1,
      FunctionResponseTypes: ['ReportBatchItemFailures'],
      ScalingConfig: { MaximumConcurrency: 2 },
    });
    // S3 may send to the queue; TLS is enforced on it.
    template.hasResourceProperties('AWS::SQS::QueuePolicy', {
      Queues: [{ Ref: queue.asString() }],
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
          Match.objectLike({
            Effect: 'Allow',
            Principal: { Service: 's3.amazonaws.com' },
            Action: Match.arrayWith(['sqs:SendMessage']),
          }),
        ]),
      },
    });
  });

  it('should keep the staging bucket private, encrypted, TLS-only, logged, retained, with lifecycle per area', () => {
    // Prepare
    const buckets = template.findResources('AWS::S3::Bucket', {
      Properties: { LoggingConfiguration: Match.anyValue() },
    });
    const [bucketId] = Object.keys(buckets);

    // Assess
    expect(Object.keys(buckets)).toHaveLength(1);
    template.hasResource('AWS::S3::Bucket', {
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
      Properties: {
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
        },
        OwnershipControls: { Rules: [{ ObjectOwnership: 'BucketOwnerEnforced' }] },
        LoggingConfiguration: {
          DestinationBucketName: { Ref: Match.stringLikeRegexp('^StagingAccessLogs') },
          LogFilePrefix: 'staging-bucket/',
        },
        LifecycleConfiguration: {
          Rules: [
            { Id: 'expire-staging', Prefix: 'staging/', ExpirationInDays: 30, Status: 'Enabled' },
            { Id: 'expire-quarantine', Prefix: 'quarantine/', ExpirationInDays: 90, Status: 'Enabled' },
            { Id: 'expire-rejected', Prefix: 'rejected/', ExpirationInDays: 90, Status: 'Enabled' },
            {
              Id: 'abort-incomplete-multipart-uploads',
              AbortIncompleteMultipartUpload: { DaysAfterInitiation: 1 },
              Status: 'Enabled',
            },
          ],
        },
      },
    });
    expect(props(template, bucketId!).VersioningConfiguration).toBeUndefined();
    template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: bucketId },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Action: 's3:*', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('should grant no data action on "*" and no wildcard action anywhere', () => {
    // Prepare
    // biome-ignore lint/suspicious/noExplicitAny: CloudFormation properties are untyped JSON
    const policies = template.findResources('AWS::IAM::Policy') as Record<string, { Properties: Record<string, any> }>;
    const statements = Object.values(policies).flatMap(
      (p) => p.Properties.PolicyDocument.Statement as { Action: string | string[]; Resource: unknown }[],
    );

    // Assess
    expect(statements.length).toBeGreaterThan(10);
    for (const s of statements) {
      const actions = Array.isArray(s.Action) ? s.Action : [s.Action];
      const resources = Array.isArray(s.Resource) ? s.Resource : [s.Resource];
      for (const action of actions) expect(action, 'wildcard action').not.toContain('*');
      if (resources.includes('*')) {
        expect(
          actions.filter((a) => DATA_ACTION.test(a)),
          `data actions on "*": ${actions.join(', ')}`,
        ).toEqual([]);
        expect(actions.every((a) => a.startsWith('xray:'))).toBe(true);
      }
    }
    template.resourcePropertiesCountIs('AWS::IAM::Role', { ManagedPolicyArns: Match.anyValue() }, 1); // only CDK's notification handler
  });

  it("should scope the export role to its secret and its own project's staging, quarantine and state keys", () => {
    // Prepare
    const statements = statementsOf(template, roleOf(template, exp111));
    const grant = (action: string) =>
      statements.filter((s) => actionsOf(s).includes(action)).flatMap((s) => resourcesOf(s).map(render));
    const bucket = expect.stringMatching(/^\$\{StagingBucket[0-9A-F]+\.Arn\}/);

    // Assess
    expect(grant('secretsmanager:GetSecretValue')).toEqual([
      'arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:mixpanel/web-??????',
    ]);
    expect(grant('s3:ListBucket')).toEqual([bucket]);
    const own = ['/staging/project=111/*', '/quarantine/project=111/*', '/state/project=111/*'];
    const area = (r: string) => r.replace(/^\$\{StagingBucket[0-9A-F]+\.Arn\}/, '');
    expect(grant('s3:GetObject').map(area)).toEqual(own);
    expect(grant('s3:PutObject').map(area)).toEqual(own);
    expect(grant('s3:DeleteObject').map(area)).toEqual(own.slice(0, 2));
    expect(grant('s3:AbortMultipartUpload')).toHaveLength(3);
    expect(grant('logs:PutLogEvents')).toEqual([expect.stringMatching(/^\$\{Project111ExportLogs[0-9A-F]+\.Arn\}$/)]);

    // The placeholder secret of project 222 is read by 222 only.
    const secret222 = statementsOf(template, roleOf(template, exp222)).filter((s) =>
      actionsOf(s).includes('secretsmanager:GetSecretValue'),
    );
    expect(secret222.flatMap((s) => resourcesOf(s))).toEqual([
      { Ref: expect.stringMatching(/^Project222MixpanelSecretPlaceholder/) },
    ]);
  });

  it('should scope the forward role to reading staging, writing receipts, rejects and verify markers, its AEP secret and its queue', () => {
    // Prepare
    const statements = statementsOf(template, roleOf(template, fwd));
    const areas = (action: string) =>
      statements
        .filter((s) => actionsOf(s).includes(action))
        .flatMap((s) => resourcesOf(s).map((r) => render(r).replace(/^\$\{StagingBucket[0-9A-F]+\.Arn\}/, '')));

    // Assess
    expect(areas('s3:GetObject')).toEqual(['/staging/*', '/delivery/*', '/rejected/*', '/verify/*']);
    expect(areas('s3:PutObject')).toEqual(['/delivery/*', '/rejected/*', '/verify/*']);
    // Only the verifier's markers are ever removed (once a run's verdict is final).
    expect(areas('s3:DeleteObject')).toEqual(['/verify/*']);
    expect(areas('secretsmanager:GetSecretValue')).toEqual([
      'arn:${AWS::Partition}:secretsmanager:${AWS::Region}:${AWS::AccountId}:secret:aep/creds-??????',
    ]);
    expect(areas('sqs:ReceiveMessage')).toEqual([
      expect.stringMatching(/^\$\{ForwarderManifestQueue[0-9A-F]+\.Arn\}$/),
    ]);
    // The fan-out sends partition messages to the forward queue, and nowhere else.
    expect(areas('sqs:SendMessage')).toEqual([expect.stringMatching(/^\$\{ForwarderManifestQueue[0-9A-F]+\.Arn\}$/)]);
  });

  it('should create placeholder secrets that say what to store, and keep them', () => {
    // Assess
    template.resourceCountIs('AWS::SecretsManager::Secret', 1);
    template.hasResource('AWS::SecretsManager::Secret', {
      DeletionPolicy: 'Retain',
      Properties: {
        Description: Match.stringLikeRegexp(
          'fill me with \\{"username":"<service account username>","secret":"<service account secret>"\\}',
        ),
        GenerateSecretString: { SecretStringTemplate: '{"username":"FILL_ME"}', GenerateStringKey: 'secret' },
      },
    });
  });

  it('should alarm on function errors, both DLQs, missed windows, the rejection rate and Platform faults, notifying the SNS topic', () => {
    // Assess: 2 export + 1 forward errors, forward backlog age, 2 DLQs, 2 missed-window, 2 rejection-rate,
    // 2 × 4 Platform verdict
    template.resourceCountIs('AWS::CloudWatch::Alarm', 18);
    const topic = new Capture();
    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.com',
      TopicArn: { Ref: topic },
    });
    template.allResourcesProperties('AWS::CloudWatch::Alarm', { AlarmActions: [{ Ref: topic.asString() }] });

    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'Errors',
      Namespace: 'AWS/Lambda',
      Dimensions: [{ Name: 'FunctionName', Value: { Ref: fwd } }],
      ComparisonOperator: 'GreaterThanThreshold',
      Threshold: 0,
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'WindowsCommitted',
      Namespace: 'MixpanelAepConnector',
      Dimensions: Match.arrayEquals([
        { Name: 'ProjectId', Value: '222' },
        { Name: 'service', Value: 'mixpanel-aep-export' },
      ]),
      Statistic: 'Sum',
      Period: 7200, // the cron's interval
      EvaluationPeriods: 3,
      DatapointsToAlarm: 3,
      ComparisonOperator: 'LessThanThreshold',
      Threshold: 1,
      TreatMissingData: 'breaching',
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateAgeOfOldestMessage',
      Dimensions: [
        {
          Name: 'QueueName',
          Value: { 'Fn::GetAtt': [Match.stringLikeRegexp('^ForwarderManifestQueue'), 'QueueName'] },
        },
      ],
      Threshold: 10800,
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'ApproximateNumberOfMessagesVisible',
      Namespace: 'AWS/SQS',
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Threshold: 0.05,
      ComparisonOperator: 'GreaterThanThreshold',
      Metrics: Match.arrayWith([
        Match.objectLike({
          Expression: Match.stringLikeRegexp(
            'FILL\\(rejected111, 0\\) / \\(FILL\\(accepted111, 0\\) \\+ FILL\\(rejected111, 0\\)\\)',
          ),
        }),
        Match.objectLike({
          Id: 'rejected111',
          MetricStat: Match.objectLike({
            Metric: {
              Namespace: 'MixpanelAepConnector',
              MetricName: 'RecordsRejected',
              Dimensions: Match.arrayWith([{ Name: 'service', Value: 'mixpanel-aep-forward' }]),
            },
          }),
        }),
      ]),
    });
  });

  it('should alarm per project when Platform refuses records, fails a batch or refuses a configuration', () => {
    // Assess
    for (const metric of ['RecordsFailedAtPlatform', 'PlatformBatchesFailed', 'PlatformConfigurationFaults']) {
      for (const pid of ['111', '222']) {
        template.hasResourceProperties('AWS::CloudWatch::Alarm', {
          MetricName: metric,
          Namespace: 'MixpanelAepConnector',
          Dimensions: Match.arrayEquals([
            { Name: 'ProjectId', Value: pid },
            { Name: 'service', Value: 'mixpanel-aep-forward' },
          ]),
          Statistic: 'Sum',
          Period: 300,
          ComparisonOperator: 'GreaterThanThreshold',
          Threshold: 0,
          TreatMissingData: 'notBreaching',
        });
      }
    }
  });

  it('should publish a dashboard with the connector metrics', () => {
    // Prepare
    const body = new Capture();

    // Assess
    template.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    template.hasResourceProperties('AWS::CloudWatch::Dashboard', { DashboardBody: body });
    const text = render(body.asObject());
    for (const metric of [
      'EventsExported',
      'EventsQuarantined',
      'WindowsCommitted',
      'WindowLagSeconds',
      'RecordsAccepted',
      'RecordsRejected',
      'RecordsIngested',
      'RecordsFailedAtPlatform',
      'PlatformBatchesFailed',
      'PlatformConfigurationFaults',
    ]) {
      expect(text).toContain(metric);
    }
    expect(text).toContain('Platform verdict: accepted / ingested / failed at Platform');
  });

  it('should output ready-to-paste operating commands', () => {
    // Prepare
    const outputs = template.toJSON().Outputs as Record<string, { Value: unknown }>;
    const out = (name: string) => render(outputs[name]?.Value);

    // Assess
    expect(out('StagingBucketName')).toMatch(/^\$\{StagingBucket[0-9A-F]+\}$/);
    expect(out('BackfillCommand111')).toBe(
      `aws lambda invoke --function-name \${${exp111}} --region \${AWS::Region} --cli-read-timeout 900 --cli-binary-format raw-in-base64-out` +
        ` --payload '{"from":"2024-01-01T00:00:00Z","to":"2024-01-02T00:00:00Z","mode":"event-time"}' backfill-111.json && cat backfill-111.json`,
    );
    expect(out('BackfillCommand222')).toContain(`--function-name \${${exp222}}`);
    expect(out('TailExportLogsCommand111')).toMatch(
      /^aws logs tail \$\{Project111ExportLogs[0-9A-F]+\} --follow --region \$\{AWS::Region\}$/,
    );
    expect(out('TailForwardLogsCommand')).toMatch(/^aws logs tail \$\{ForwarderForwardLogs[0-9A-F]+\} --follow/);
    expect(out('ForwardDlqRedriveCommand')).toMatch(
      /^aws sqs start-message-move-task --region \$\{AWS::Region\} --source-arn \$\{ForwarderDeadLetterQueue[0-9A-F]+\.Arn\} --destination-arn \$\{ForwarderManifestQueue[0-9A-F]+\.Arn\}$/,
    );
    expect(out('PutMixpanelSecretCommand222')).toContain('aws secretsmanager put-secret-value');
    expect(outputs.PutMixpanelSecretCommand111).toBeUndefined(); // references an existing secret
    expect(Object.keys(outputs)).toEqual(
      expect.arrayContaining([
        'ScheduleDlqInspectCommand',
        'DashboardUrl',
        'ForwardFunctionName',
        'ExportFunctionName111',
      ]),
    );
  });

  it('should keep the IAM surface stable (normalised snapshot)', () => {
    // Prepare: every role's statements, with CDK's logical-id hashes removed so only real changes show.
    const roles = template.findResources('AWS::IAM::Role') as Record<string, { Properties: Record<string, any> }>;
    const normalise = (s: string) => s.replace(/([A-Za-z])[0-9A-F]{8}(?=\b|[.}])/g, '$1');
    const surface = Object.fromEntries(
      Object.keys(roles)
        .filter((id) => !id.startsWith('BucketNotificationsHandler'))
        .sort()
        .map((id) => [
          normalise(id),
          statementsOf(template, id).map((s) => ({
            actions: actionsOf(s),
            resources: resourcesOf(s).map((r) => normalise(render(r))),
            ...(s.Condition ? { condition: JSON.parse(normalise(JSON.stringify(s.Condition))) } : {}),
          })),
        ]),
    );

    // Assess
    expect(surface).toMatchSnapshot();
  });
});

describe('ConnectorStack variants', () => {
  const dirs: string[] = [];
  afterAll(() => {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('should make one schedule and one export function for one project', () => {
    // Act
    const { template } = synthStack(oneProjectConfig());

    // Assess: the project's schedule and the verifier's
    template.resourceCountIs('AWS::Scheduler::Schedule', 2);
    template.resourcePropertiesCountIs(
      'AWS::Lambda::Function',
      { Environment: { Variables: { POWERTOOLS_SERVICE_NAME: 'mixpanel-aep-export' } } },
      1,
    );
    template.resourceCountIs('AWS::SecretsManager::Secret', 0);
  });

  it("should share Profile's streaming rate among the forwarders running at once when Profile is enabled", () => {
    // Prepare
    const input = oneProjectConfig();
    input.aep = { ...input.aep, profileEnabled: true, maxConcurrency: 3 } as typeof input.aep;

    // Act
    const { template } = synthStack(input);
    const vars = props(template, forwardFunctionId(template)).Environment.Variables as Record<string, string>;
    const off = synthStack(oneProjectConfig()).template;

    // Assess: 1,500 records/s by default, a third each
    expect(vars).toMatchObject({ AEP_PROFILE_ENABLED: 'true', AEP_PROFILE_RECORDS_PER_SECOND: '500' });
    expect(props(off, forwardFunctionId(off)).Environment.Variables).toMatchObject({ AEP_PROFILE_ENABLED: 'false' });
  });

  it('should honour a staging prefix everywhere: env, lifecycle, notification and IAM', () => {
    // Prepare
    const input = oneProjectConfig();
    input.staging = { prefix: 'mixpanel/', removalPolicy: 'destroy' };

    // Act
    const { template } = synthStack(input);

    // Assess
    const exp = exportFunctionId(template, '111');
    expect(props(template, exp).Environment.Variables.STAGING_PREFIX).toBe('mixpanel/');
    template.hasResourceProperties('Custom::S3BucketNotifications', {
      NotificationConfiguration: {
        QueueConfigurations: [
          Match.objectLike({
            Filter: { Key: { FilterRules: Match.arrayWith([{ Name: 'prefix', Value: 'mixpanel/staging/' }]) } },
          }),
        ],
      },
    });
    template.hasResourceProperties('AWS::S3::Bucket', {
      LifecycleConfiguration: {
        Rules: Match.arrayWith([Match.objectLike({ Id: 'expire-staging', Prefix: 'mixpanel/staging/' })]),
      },
    });
    const puts = statementsOf(template, roleOf(template, exp)).filter((s) => actionsOf(s).includes('s3:PutObject'));
    expect(puts.flatMap((s) => resourcesOf(s).map(render))).toEqual([
      expect.stringMatching(/\/mixpanel\/staging\/project=111\/\*$/),
      expect.stringMatching(/\/mixpanel\/quarantine\/project=111\/\*$/),
      expect.stringMatching(/\/mixpanel\/state\/project=111\/\*$/),
    ]);
    // `destroy` is honoured (and marked "Change in production" in the code).
    template.hasResource('AWS::S3::Bucket', { DeletionPolicy: 'Delete' });
  });

  it("should disable a project's schedule and skip its missed-window alarm when it is not enabled", () => {
    // Prepare
    const input = oneProjectConfig();
    input.projects[0]!.enabled = false;

    // Act
    const { template } = synthStack(input);

    // Assess
    template.hasResourceProperties('AWS::Scheduler::Schedule', { State: 'DISABLED' });
    template.resourcePropertiesCountIs('AWS::CloudWatch::Alarm', { MetricName: 'WindowsCommitted' }, 0);
  });

  it('should read an S3 mapping with access to that object only, and bundle a local mapping file', () => {
    // Prepare
    const dir = mkdtempSync(join(tmpdir(), 'connector-stack-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'mapping.json'), '{}');
    const s3 = { ...oneProjectConfig(), mapping: 's3://shared-config/mappings/mixpanel.json' };
    const local = { ...oneProjectConfig(), mapping: './mapping.json' };

    // Act
    const fromS3 = synthStack(s3).template;
    const fromFile = synthStack(local, dir).template;

    // Assess
    const fwdS3 = forwardFunctionId(fromS3);
    expect(props(fromS3, fwdS3).Environment.Variables.MAPPING).toBe('s3://shared-config/mappings/mixpanel.json');
    const mappingReads = statementsOf(fromS3, roleOf(fromS3, fwdS3)).filter((s) =>
      resourcesOf(s).some((r) => render(r).includes('shared-config')),
    );
    expect(mappingReads.map((s) => [actionsOf(s), resourcesOf(s).map(render)])).toEqual([
      [['s3:GetObject'], ['arn:${AWS::Partition}:s3:::shared-config/mappings/mixpanel.json']],
    ]);
    expect(props(fromFile, forwardFunctionId(fromFile)).Environment.Variables.MAPPING).toBe('/var/task/mapping.json');
  });

  it('should pass the batch sink options to the forwarder, and none for the streaming sink', () => {
    // Prepare
    const batch = oneProjectConfig();
    batch.aep.sink = 'batch';
    batch.aep.batch = { partialIngestionPercent: 2.5 };

    // Act
    const batchVars = (t: Template) => props(t, forwardFunctionId(t)).Environment.Variables as Record<string, string>;
    const withBatch = batchVars(synthStack(batch).template);
    const streaming = batchVars(synthStack(oneProjectConfig()).template);

    // Assess
    expect(withBatch).toMatchObject({
      AEP_SINK: 'batch',
      AEP_BATCH_PARTIAL_INGESTION_PERCENT: '2.5',
      AEP_BATCH_ERROR_DIAGNOSTICS: 'true',
    });
    expect(Object.keys(streaming).filter((k) => k.startsWith('AEP_BATCH_'))).toEqual([]);
  });

  it('should reference existing secrets by ARN with KMS decrypt through Secrets Manager only', () => {
    // Prepare
    const input = oneProjectConfig();
    input.projects[0]!.secret = {
      arn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:mixpanel/web-AbC123',
      complete: true,
      kmsKeyArn: 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
    };
    input.aep.secret = { arn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:aep' };

    // Act
    const { template } = synthStack(input);

    // Assess
    const exp = exportFunctionId(template, '111');
    const expStatements = statementsOf(template, roleOf(template, exp));
    expect(props(template, exp).Environment.Variables.MIXPANEL_SECRET_ID).toBe(
      'arn:aws:secretsmanager:eu-west-1:123456789012:secret:mixpanel/web-AbC123',
    );
    expect(
      expStatements.filter((s) => actionsOf(s).includes('secretsmanager:GetSecretValue')).flatMap(resourcesOf),
    ).toEqual(['arn:aws:secretsmanager:eu-west-1:123456789012:secret:mixpanel/web-AbC123']);
    expect(expStatements.find((s) => actionsOf(s).includes('kms:Decrypt'))).toMatchObject({
      Resource: 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab',
      Condition: {
        StringEquals: {
          'kms:ViaService': { 'Fn::Join': ['', ['secretsmanager.', { Ref: 'AWS::Region' }, '.amazonaws.com']] },
        },
      },
    });
    // A partial ARN (no 6-character suffix) is matched with Secrets Manager's suffix.
    const fwd = forwardFunctionId(template);
    expect(
      statementsOf(template, roleOf(template, fwd))
        .filter((s) => actionsOf(s).includes('secretsmanager:GetSecretValue'))
        .flatMap(resourcesOf),
    ).toEqual(['arn:aws:secretsmanager:eu-west-1:123456789012:secret:aep-??????']);
  });

  it('should send alarms to an existing SNS topic without creating one', () => {
    // Prepare
    const input = oneProjectConfig();
    input.alarms = {
      snsTopicArn: 'arn:aws:sns:eu-west-1:123456789012:ops-alarms',
      maxRejectionRate: 0.2,
      missedWindows: 2,
    };

    // Act
    const { template } = synthStack(input);

    // Assess
    template.resourceCountIs('AWS::SNS::Topic', 0);
    template.allResourcesProperties('AWS::CloudWatch::Alarm', {
      AlarmActions: ['arn:aws:sns:eu-west-1:123456789012:ops-alarms'],
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'WindowsCommitted',
      EvaluationPeriods: 2,
      Period: 3600,
    });
    template.hasResourceProperties('AWS::CloudWatch::Alarm', { Threshold: 0.2, Metrics: Match.anyValue() });
  });
});
