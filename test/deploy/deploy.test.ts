/**
 * Deploy proof without an account: `cdk synth` through the CLI (bundling, cdk-nag), every template through AWS's
 * CloudFormation validator, each Lambda asset zipped as the CLI zips it and unpacked read-only, then started as the
 * Node.js runtime starts a function (exec wrapper, the runtime's node flags, the template's environment and Lambda's
 * reserved variables, an unprivileged user) against the product's emulators: a scheduled export, a manual backfill
 * and the forward of each committed window's URL-encoded manifest notification. Every AWS request the functions make
 * is mapped to its IAM action and checked against the function's role in the template.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqsEventFor } from '#cli/pipeline';
import { type LocalStack, startLocalStack } from '#emulators/local-stack';
import { type SecretsManagerFake, startSecretsManagerFake } from '#emulators/secrets-manager';
import type { ExportResult } from '#export/run';
import type { ConnectorConfigInput } from '../../lib/config.ts';
import { LAMBDA_RUNTIME, PROJECT_ROOT } from '../../lib/constructs/connector-function.ts';
import { errorsOf, formatDiagnostics, validateTemplates } from '../support/cfn-validate.ts';
import {
  type FunctionSpec,
  type LambdaNode,
  type RunningFunction,
  findLambdaNode,
  shareFile,
  startFunction,
  unprivilegedPrefix,
  unzipReadOnly,
  zipDirectory,
} from './harness.ts';
import {
  type AwsCall,
  type Resolution,
  deniedCalls,
  resolveValue,
  roleStatements,
  s3Calls,
  unusedActions,
} from './iam.ts';

const ACCOUNT = '123456789012';
const REGION = 'us-east-1';
const MIXPANEL_SECRET = 'mixpanel-aep/deploy-mixpanel';
const AEP_SECRET = 'mixpanel-aep/deploy-aep';
/** Secrets Manager appends "-" + 6 random characters to a secret's name in its ARN. */
const secretArn = (name: string) => `arn:aws:secretsmanager:${REGION}:${ACCOUNT}:secret:${name}-Ab12Cd`;

/**
 * Granted actions the invocations here do not exercise, each for a documented reason. Anything else granted and
 * unused fails the test (drop the grant, or document it here).
 */
const UNUSED_ALLOWED: Record<string, string> = {
  'logs:CreateLogStream':
    "Lambda writes the function's stdout to its log group with the role (no code path calls Logs)",
  'logs:PutLogEvents': 'as logs:CreateLogStream',
  'xray:PutTraceSegments': "active tracing: Lambda's X-Ray daemon sends the segments with the role",
  'xray:PutTelemetryRecords': 'as xray:PutTraceSegments',
  'sqs:ReceiveMessage': "the SQS event source mapping polls the manifest queue with the forwarder's role",
  'sqs:DeleteMessage': 'as sqs:ReceiveMessage',
  'sqs:ChangeMessageVisibility':
    'as sqs:ReceiveMessage (Lambda extends the visibility of a batch it is still processing)',
  'sqs:GetQueueAttributes': 'as sqs:ReceiveMessage',
  'sqs:SendMessage':
    "the fan-out of a window staged in several partitions (test/reliability/partitions.test.ts); this proof's " +
    'windows are one partition each',
  's3:AbortMultipartUpload':
    'lib-storage aborts a multipart upload that failed (test/reliability/export-faults.test.ts)',
  's3:DeleteObject':
    'the export deletes the parts of an attempt it could not commit (test/reliability/export-faults.test.ts)',
};

const cdkCli = createRequire(import.meta.url).resolve('aws-cdk/bin/cdk');
const HOUR = 3_600_000;

type Resources = Record<string, { Type: string; Properties: Record<string, any>; Metadata?: Record<string, string> }>;

interface DeployedFunction {
  readonly logicalId: string;
  readonly roleId: string;
  readonly spec: FunctionSpec;
}

describe('deploy proof: the synthesized artifact runs as Lambda runs it', () => {
  const work = mkdtempSync(join(tmpdir(), 'connector-deploy-'));
  const outdir = join(work, 'cdk.out');
  let stack: LocalStack;
  let secrets: SecretsManagerFake;
  let template: { Resources: Resources };
  let resolution: Resolution;
  let node: LambdaNode;
  let runtimeClient: string;
  let user: { prefix: string[]; note: string };
  const functions = new Map<string, DeployedFunction>();
  const running: RunningFunction[] = [];
  /** AWS calls per function logical id, recorded while that function is invoked. */
  const calls = new Map<string, AwsCall[]>();
  const unmapped: string[] = [];
  let recordingFor: string | undefined;

  beforeAll(async () => {
    const now = Date.now();
    stack = await startLocalStack({
      dataset: { seed: 17, count: 3000, start: now - 6 * HOUR, end: now - 10 * 60_000 },
      keep: 'ids',
    });
    secrets = await startSecretsManagerFake({
      [MIXPANEL_SECRET]: JSON.stringify({ username: stack.env.MIXPANEL_USERNAME, secret: stack.env.MIXPANEL_SECRET }),
      [AEP_SECRET]: JSON.stringify({
        clientId: stack.env.AEP_CLIENT_ID,
        clientSecret: stack.env.AEP_CLIENT_SECRET,
        orgId: stack.env.AEP_ORG_ID,
      }),
    });
    // Every S3 request, as the function's role would be asked to authorise it.
    // s3rver keeps its http.Server as `httpServer` once running (not in its typings).
    const s3Http = (stack.s3.server as unknown as { httpServer: import('node:http').Server }).httpServer;
    s3Http.prependListener('request', (req, res) => {
      const owner = recordingFor;
      if (owner === undefined) return;
      res.on('finish', () => {
        const mapped = s3Calls(req.method ?? '', req.url ?? '', res.statusCode);
        if (mapped === undefined) unmapped.push(`${req.method} ${req.url}`);
        else calls.get(owner)!.push(...mapped);
      });
    });

    // --- Synthesize the real app with a config that points at the emulators.
    const config: ConnectorConfigInput = {
      stackName: 'DeployProof',
      env: { account: ACCOUNT, region: REGION },
      staging: { bucketName: stack.bucket },
      projects: [
        {
          id: stack.env.MIXPANEL_PROJECT_ID!,
          timezone: 'UTC',
          secret: { name: MIXPANEL_SECRET },
          schedule: { expression: 'rate(1 hour)' },
          window: { minutes: 60, settleMinutes: 30, maxWindowsPerRun: 2 },
          apiBaseUrl: stack.mixpanel.url,
        },
      ],
      aep: {
        secret: { name: AEP_SECRET },
        imsUrl: stack.env.AEP_IMS_URL!,
        inletUrl: stack.env.AEP_INLET_URL!,
        flowId: stack.env.AEP_FLOW_ID!,
        platformUrl: stack.env.AEP_PLATFORM_URL!,
        datasetId: stack.datasetId,
        schemaId: stack.env.AEP_SCHEMA_ID!,
        tenantId: stack.env.AEP_TENANT_ID!,
      },
    };
    const configFile = join(work, 'connector.config.json');
    writeFileSync(configFile, JSON.stringify(config));
    const synth = spawnSync(
      process.execPath,
      [cdkCli, 'synth', '--quiet', '--output', outdir, '-c', `config=${configFile}`],
      {
        cwd: PROJECT_ROOT,
        encoding: 'utf8',
        env: { ...process.env, CDK_DISABLE_VERSION_CHECK: '1' },
      },
    );
    if (synth.status !== 0) throw new Error(`cdk synth failed:\n${synth.stdout}\n${synth.stderr}`);
    template = JSON.parse(readFileSync(join(outdir, 'DeployProof.template.json'), 'utf8')) as { Resources: Resources };
    resolution = {
      partition: 'aws',
      region: REGION,
      account: ACCOUNT,
      refs: Object.fromEntries([
        ...Object.entries(template.Resources)
          .filter(([, r]) => r.Type === 'AWS::S3::Bucket' && r.Properties?.BucketName === stack.bucket)
          .flatMap(([id]) => [
            [id, stack.bucket],
            [`${id}.Arn`, `arn:aws:s3:::${stack.bucket}`],
          ]),
        // A queue's Ref is its URL (the forwarder's FORWARD_QUEUE_URL).
        ...Object.entries(template.Resources)
          .filter(([, r]) => r.Type === 'AWS::SQS::Queue')
          .flatMap(([id]) => [
            [id, `https://sqs.${REGION}.amazonaws.com/${ACCOUNT}/${id}`],
            [`${id}.Arn`, `arn:aws:sqs:${REGION}:${ACCOUNT}:${id}`],
          ]),
      ]),
    };

    // --- Node, user and runtime client the functions start with; everything they need sits in a world-readable folder.
    node = findLambdaNode();
    user = unprivilegedPrefix();
    const shared = join(work, 'runtime');
    mkdirSync(shared);
    chmodSync(work, 0o755);
    chmodSync(shared, 0o755);
    const nodePath = shareFile(node.path, shared, 'node', 0o755);
    runtimeClient = shareFile(
      fileURLToPath(new URL('./fixtures/runtime-client.mjs', import.meta.url)),
      shared,
      'index.mjs',
      0o644,
    );
    node = { ...node, path: nodePath };

    // --- Each connector function's asset: zipped as the CLI zips it, unpacked read-only (Lambda's /var/task).
    const unpacked = new Map<string, string>();
    for (const [id, r] of Object.entries(template.Resources)) {
      const asset = r.Metadata?.['aws:asset:path'];
      if (r.Type !== 'AWS::Lambda::Function' || asset === undefined || r.Properties.Environment === undefined) continue;
      let taskRoot = unpacked.get(asset);
      if (taskRoot === undefined) {
        const zip = join(work, `${asset}.zip`);
        zipDirectory(join(outdir, asset), zip);
        taskRoot = join(work, 'task', asset);
        unzipReadOnly(zip, taskRoot);
        unpacked.set(asset, taskRoot);
      }
      const variables = Object.fromEntries(
        Object.entries(r.Properties.Environment.Variables as Record<string, unknown>).map(([k, v]) => [
          k,
          resolveValue(v, resolution),
        ]),
      );
      functions.set(variables.POWERTOOLS_SERVICE_NAME === 'mixpanel-aep-forward' ? 'forward' : 'export', {
        logicalId: id,
        roleId: r.Properties.Role['Fn::GetAtt'][0] as string,
        spec: {
          name: `DeployProof-${id}`,
          taskRoot,
          environment: variables,
          handler: r.Properties.Handler as string,
          memoryMb: r.Properties.MemorySize as number,
          timeoutSeconds: r.Properties.Timeout as number,
          runtime: r.Properties.Runtime as string,
          region: REGION,
          account: ACCOUNT,
          // Not set by Lambda: where the AWS SDK finds the stand-ins instead of the regional endpoints.
          // s3rver accepts only its own access key (the role's temporary credentials in Lambda).
          extraEnvironment: {
            AWS_ENDPOINT_URL_S3: stack.s3.endpoint,
            AWS_ENDPOINT_URL_SECRETS_MANAGER: secrets.url,
            AWS_ACCESS_KEY_ID: 'S3RVER',
            AWS_SECRET_ACCESS_KEY: 'S3RVER',
          },
        },
      });
      calls.set(id, []);
    }
    const exportEnv = functions.get('export')?.spec.environment;
    console.log(
      [
        `deploy test: functions run on ${node.source}; the stack deploys ${LAMBDA_RUNTIME.name} on arm64 (this machine: ${process.arch})`,
        `deploy test: each function ${user.note}`,
        `deploy test: exec wrapper ${exportEnv?.AWS_LAMBDA_EXEC_WRAPPER ?? '(none)'} (paths under /var/task map to the unpacked asset), CONNECTOR_NODE_ARGS ${exportEnv?.CONNECTOR_NODE_ARGS ?? '(none)'}`,
      ].join('\n'),
    );
  }, 240_000);

  afterAll(async () => {
    await Promise.allSettled(running.map((r) => r.stop()));
    await Promise.allSettled([stack?.close(), secrets?.close()]);
    rmSync(work, { recursive: true, force: true });
  });

  /** Starts (once) and invokes a function, recording the AWS calls made meanwhile. */
  const started = new Map<string, RunningFunction>();
  async function invoke(role: 'export' | 'forward', event: unknown): Promise<unknown> {
    const fn = functions.get(role)!;
    let r = started.get(role);
    if (r === undefined) {
      r = await startFunction(fn.spec, node.path, runtimeClient, user.prefix);
      started.set(role, r);
      running.push(r);
    }
    recordingFor = fn.logicalId;
    try {
      return await r.invoke(event);
    } catch (error) {
      throw new Error(
        `${role} invocation failed: ${(error as Error).message}\n--- function output ---\n${r.output()}`,
        { cause: error },
      );
    } finally {
      recordingFor = undefined;
    }
  }

  it("should pass AWS's CloudFormation validator with 0 errors on every synthesized template", () => {
    const templates = Object.fromEntries(
      readdirSync(outdir)
        .filter((f) => f.endsWith('.template.json'))
        .map((f) => [f, JSON.parse(readFileSync(join(outdir, f), 'utf8'))]),
    );
    const diagnostics = validateTemplates(templates);
    console.log(
      `validator on ${Object.keys(templates).join(', ')}: ${diagnostics.length} warnings\n${formatDiagnostics(diagnostics)}`,
    );
    expect(Object.keys(templates).length).toBeGreaterThan(0);
    expect(formatDiagnostics(errorsOf(diagnostics))).toBe('');
  });

  const committed: string[] = [];

  it('should run a scheduled export and commit the last settled window', { timeout: 120_000 }, async () => {
    // Act
    const result = (await invoke('export', {
      source: 'schedule',
      scheduledTime: new Date().toISOString(),
    })) as ExportResult;

    // Assess
    const done = result.windows.filter((w) => w.status === 'committed');
    expect(done.length, JSON.stringify(result)).toBe(1);
    expect(done[0]!.events).toBeGreaterThan(0);
    committed.push(...done.map((w) => w.manifestKey!));
  });

  it('should run a manual backfill of an earlier range', { timeout: 120_000 }, async () => {
    // Prepare
    const hour = Math.floor(Date.now() / HOUR) * HOUR;
    const event = {
      from: new Date(hour - 5 * HOUR).toISOString(),
      to: new Date(hour - 4 * HOUR).toISOString(),
      mode: 'processing-time',
    };

    // Act
    const result = (await invoke('export', event)) as ExportResult;

    // Assess
    const done = result.windows.filter((w) => w.status === 'committed');
    expect(done.length, JSON.stringify(result)).toBe(1);
    expect(done[0]!.events).toBeGreaterThan(0);
    committed.push(...done.map((w) => w.manifestKey!));
  });

  it('should forward each committed window from its URL-encoded manifest notification', {
    timeout: 120_000,
  }, async () => {
    // Prepare
    expect(committed).toHaveLength(2);

    // Act
    for (const key of committed) {
      const reply = (await invoke('forward', sqsEventFor(stack.bucket, key))) as { batchItemFailures: unknown[] };
      expect(reply).toEqual({ batchItemFailures: [] });
    }

    // Assess
    expect(stack.aep.stats.messagesAccepted).toBeGreaterThan(0);
    expect(secrets.requests.map((r) => [r.secretId, r.status])).toEqual([
      [MIXPANEL_SECRET, 200],
      [AEP_SECRET, 200],
    ]);
  });

  it.each([
    ['an import that does not resolve', 'import "./missing-module.mjs";\n', 0o755, /Runtime\.|missing-module/],
    ['an exec wrapper without its executable bit', null, 0o644, /could not start|EACCES|exited/],
  ] as const)(
    'should fail the invocation when the asset cannot start: %s',
    { timeout: 60_000 },
    async (_name, index, wrapperMode, reason) => {
      // Prepare: a copy of the export asset, broken one way, read-only like the real one.
      const fn = functions.get('export')!;
      const broken = join(work, `broken-${wrapperMode}`);
      spawnSync('cp', ['-r', fn.spec.taskRoot, broken]);
      spawnSync('chmod', ['-R', 'u+w', broken]);
      if (index !== null) writeFileSync(join(broken, 'index.mjs'), index);
      chmodSync(join(broken, 'exec-wrapper.sh'), wrapperMode);
      spawnSync('chmod', ['-R', 'a+rX,a-w', broken]);
      const r = await startFunction({ ...fn.spec, taskRoot: broken }, node.path, runtimeClient, user.prefix);
      running.push(r);

      // Act + Assess
      await expect(r.invoke({ source: 'schedule', scheduledTime: new Date().toISOString() })).rejects.toThrow(reason);
    },
  );

  it('should make only AWS calls the template allows, and use every action it grants (or say why not)', () => {
    // Prepare: Secrets Manager requests go to the role of the function that made them (each read its own secret).
    const exp = functions.get('export')!;
    const fwd = functions.get('forward')!;
    const secretCall = (id: string): AwsCall => ({
      action: 'secretsmanager:GetSecretValue',
      resource: secretArn(id),
      request: `GetSecretValue ${id}`,
    });
    const byRole = [
      { fn: exp, calls: [...calls.get(exp.logicalId)!, secretCall(MIXPANEL_SECRET)] },
      { fn: fwd, calls: [...calls.get(fwd.logicalId)!, secretCall(AEP_SECRET)] },
    ];

    // Assess
    expect(unmapped, 'S3 requests the IAM mapping does not know').toEqual([]);
    for (const { fn, calls: made } of byRole) {
      const statements = roleStatements(template, fn.roleId, resolution);
      console.log(
        `${fn.logicalId}: ${made.length} AWS calls, actions ${[...new Set(made.map((c) => c.action))].sort().join(', ')}`,
      );
      expect(made.length).toBeGreaterThan(0);
      expect(deniedCalls(made, statements), `calls the role of ${fn.logicalId} does not allow`).toEqual([]);
      expect(
        unusedActions(made, statements, UNUSED_ALLOWED),
        `actions granted to ${fn.logicalId} that no invocation used`,
      ).toEqual([]);
    }
  });
});
