import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Duration, RemovalPolicy, Size } from 'aws-cdk-lib';
import { Policy, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { Architecture, type CfnFunction, Runtime } from 'aws-cdk-lib/aws-lambda';
import { type BundlingOptions, NodejsFunction, OutputFormat, SourceMapMode } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { acknowledge } from '../nag.ts';
import type { FunctionNetwork } from './network.ts';

/** The repository root (the directory holding package.json and package-lock.json). */
export const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** Node 22 matches the esbuild target below; both move together. */
export const LAMBDA_RUNTIME = Runtime.NODEJS_22_X;
export const ESBUILD_TARGET = 'node22';

/**
 * The AWS SDK is bundled, pinning the clients the tests run against instead of the runtime's unannounced copy (~450 KB
 * a bundle; why and what `false` does: docs/performance.md "Runtime settings of the functions").
 */
export const BUNDLE_AWS_SDK = true;

/**
 * esbuild emits ESM; a few bundled CommonJS dependencies still call `require` for Node built-ins, which ESM lacks.
 * https://github.com/evanw/esbuild/issues/1921
 */
const ESM_REQUIRE_BANNER =
  "import { createRequire as __cjsRequire } from 'node:module'; const require = __cjsRequire(import.meta.url);";

/**
 * The esbuild settings of every connector bundle (NodejsFunction `bundling`; CDK turns them into esbuild flags and adds
 * `--bundle --platform=node`). Exported so the benchmark builds the same bundles to measure them.
 */
export const BUNDLING = {
  format: OutputFormat.ESM,
  target: ESBUILD_TARGET,
  minify: true,
  sourceMap: true,
  sourceMapMode: SourceMapMode.EXTERNAL,
  sourcesContent: false,
  mainFields: ['module', 'main'],
  banner: ESM_REQUIRE_BANNER,
  ...(BUNDLE_AWS_SDK ? { bundleAwsSDK: true, externalModules: [] as string[] } : { externalModules: ['@aws-sdk/*'] }),
} as const satisfies BundlingOptions;

/**
 * Node options of every connector function: TypeScript stack traces, and a 4 MB young generation, because the
 * functions stream data through short-lived objects (measurements: docs/performance.md "Runtime settings of the
 * functions"). {@link EXEC_WRAPPER} makes the young-generation size apply on Lambda.
 */
export const LAMBDA_NODE_OPTIONS = '--enable-source-maps --max-semi-space-size=4';

/**
 * V8 flags every function starts with on its command line, placed there by {@link EXEC_WRAPPER} from the
 * `CONNECTOR_NODE_ARGS` variable, because Node refuses them in NODE_OPTIONS. `--initial-old-space-size=56` lets the
 * old generation fill to 56 MB before V8 starts a full collection (v8 src/heap/heap.cc, `Heap::ConfigureHeap`: a
 * configured initial old-generation size becomes the floor of the allocation limit). Without it, under Lambda's
 * old-space limit, the limit trails the live heap by ~1.3× and the forwarder, whose live heap is ~28 MB, ran 61–67 full
 * collections per 500 k records. 56 MB is between 64 (fewest collections, but the forwarder's memory ratio at the
 * edge of its goal) and 48 (measurements: docs/performance.md "The old-generation floor and the part reader's
 * batches").
 */
export const LAMBDA_NODE_ARGS = '--initial-old-space-size=56';

/**
 * Memory of every connector function (MB): sized for the CPU share Lambda gives with it, not for memory. One figure for
 * all, which the benchmark's heap limit ({@link runtimeOldSpaceMb}) and the scale model rely on.
 */
export const FUNCTION_MEMORY_MB = 1024;

/**
 * The old-generation limit Lambda's Node.js runtime starts a function with: its bootstrap (`/var/runtime/bootstrap` of
 * the runtime image) puts `--max-old-space-size` = memory − ⌊memory / 10⌋ MB on the command line, next to the
 * young-generation size that {@link EXEC_WRAPPER} drops; the wrapper keeps this one. V8 derives how far the old
 * generation may grow between full collections from that limit (v8 src/heap/heap-controller.cc, `MaxGrowingFactor`:
 * 4× from a 2 GB limit up, about 1.5× at 922 MB), so the benchmark runs its workers with it.
 */
export function runtimeOldSpaceMb(memoryMb: number = FUNCTION_MEMORY_MB): number {
  return memoryMb - Math.floor(memoryMb / 10);
}

/**
 * The exec wrapper every function starts through (AWS_LAMBDA_EXEC_WRAPPER; functions/runtime/exec-wrapper.sh, copied
 * into each bundle, mode 755): it drops the runtime's own young-generation flag, which would win over
 * {@link LAMBDA_NODE_OPTIONS}, and puts {@link LAMBDA_NODE_ARGS} after the interpreter
 * (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-modify.html#runtime-wrapper). Not added when deploying from
 * Windows, where the file cannot be made executable; the functions then run without either.
 */
const EXEC_WRAPPER_FILE = 'exec-wrapper.sh';
export const EXEC_WRAPPER = {
  source: join(PROJECT_ROOT, 'functions', 'runtime', EXEC_WRAPPER_FILE),
  bundledAs: EXEC_WRAPPER_FILE,
  /** Where Lambda finds it: the bundle is unpacked in /var/task. */
  path: `/var/task/${EXEC_WRAPPER_FILE}`,
  enabled: process.platform !== 'win32',
} as const;

/**
 * glibc malloc settings of every connector function (glibc manual, "Memory Allocation Tunables"; mallopt(3)): two
 * arenas, and blocks of 128 KiB and more mapped on their own and returned when freed, so that freed memory does not
 * stay resident (why and measurements: docs/performance.md "Runtime settings of the functions").
 */
export const LAMBDA_MALLOC_ENV = { MALLOC_ARENA_MAX: '2', MALLOC_MMAP_THRESHOLD_: '131072' } as const;

/** A path quoted for the bundling hook's shell. */
const q = (path: string): string => JSON.stringify(path);

/** Props of {@link ConnectorFunction}. */
export interface ConnectorFunctionProps {
  /** Absolute path of the handler file (it must export `handler`). */
  readonly entry: string;
  readonly description: string;
  /** Hard limit of one invocation. */
  readonly timeout: Duration;
  /** Size of /tmp in MiB (512–10,240). @default 512, Lambda's own default */
  readonly ephemeralStorageMiB?: number;
  /** Powertools `service` (log field and metric dimension). */
  readonly serviceName: string;
  /** Powertools metrics namespace. */
  readonly metricsNamespace: string;
  readonly logRetention: RetentionDays;
  /** @default - no reserved concurrency */
  readonly reservedConcurrentExecutions?: number;
  /** A file copied into the bundle as `mapping.json` (the forwarder's custom mapping). @default - none */
  readonly bundledMappingFile?: string;
  /** The VPC placement for stable egress (lib/constructs/network.ts). @default - Lambda's own network */
  readonly network?: FunctionNetwork;
}

/**
 * A connector Lambda with the project's defaults in one place: Node 22 on arm64, bundled by the local esbuild into
 * minified ESM with source maps, its own log group with a retention, X-Ray active tracing, Powertools settings, and
 * its own role that starts with nothing but writing to that log group (no managed policies). Callers add each
 * environment variable together with the permission it needs ({@link addEnvironment} + a grant right after).
 */
export class ConnectorFunction extends Construct {
  readonly function: NodejsFunction;
  readonly role: Role;
  readonly logGroup: LogGroup;

  constructor(scope: Construct, id: string, props: ConnectorFunctionProps) {
    super(scope, id);

    this.logGroup = new LogGroup(this, 'Logs', {
      retention: props.logRetention,
      // Logs are the audit trail of what was sent; they expire by retention rather than with the stack.
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: `Execution role of: ${props.description}`,
    });
    // Instead of AWSLambdaBasicExecutionRole (logs:* on every log group): write to this function's group only.
    this.role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    );

    const mapping = props.bundledMappingFile;
    this.function = new NodejsFunction(this, 'Function', {
      entry: props.entry,
      handler: 'handler',
      description: props.description,
      runtime: LAMBDA_RUNTIME,
      architecture: Architecture.ARM_64,
      timeout: props.timeout,
      memorySize: FUNCTION_MEMORY_MB,
      ...(props.ephemeralStorageMiB !== undefined
        ? { ephemeralStorageSize: Size.mebibytes(props.ephemeralStorageMiB) }
        : {}),
      role: this.role,
      logGroup: this.logGroup,
      ...(props.reservedConcurrentExecutions !== undefined
        ? { reservedConcurrentExecutions: props.reservedConcurrentExecutions }
        : {}),
      ...(props.network ?? {}),
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: join(PROJECT_ROOT, 'package-lock.json'),
      environment: {
        POWERTOOLS_SERVICE_NAME: props.serviceName,
        POWERTOOLS_METRICS_NAMESPACE: props.metricsNamespace,
        POWERTOOLS_LOG_LEVEL: 'INFO',
        NODE_OPTIONS: LAMBDA_NODE_OPTIONS,
        ...LAMBDA_MALLOC_ENV,
        ...(EXEC_WRAPPER.enabled
          ? { AWS_LAMBDA_EXEC_WRAPPER: EXEC_WRAPPER.path, CONNECTOR_NODE_ARGS: LAMBDA_NODE_ARGS }
          : {}),
      },
      bundling: {
        ...BUNDLING,
        commandHooks: {
          beforeBundling: () => [],
          beforeInstall: () => [],
          afterBundling: (_inputDir: string, outputDir: string) => {
            const wrapper = q(join(outputDir, EXEC_WRAPPER.bundledAs));
            return [
              ...(EXEC_WRAPPER.enabled ? [`cp ${q(EXEC_WRAPPER.source)} ${wrapper}`, `chmod 755 ${wrapper}`] : []),
              ...(mapping === undefined
                ? []
                : [
                    `${process.platform === 'win32' ? 'copy /Y' : 'cp'} ${q(mapping)} ${q(join(outputDir, 'mapping.json'))}`,
                  ]),
            ];
          },
        },
      },
    });

    // X-Ray active tracing. Set on the resource rather than with `tracing: Tracing.ACTIVE`, which would put the X-Ray
    // "*" statement into the role's default policy; in a policy of its own, the cdk-nag acknowledgement below covers
    // that statement only, and a "*" appearing anywhere else in the role still fails synth.
    const tracing = new Policy(this, 'TracingPolicy', {
      statements: [
        new PolicyStatement({ actions: ['xray:PutTraceSegments', 'xray:PutTelemetryRecords'], resources: ['*'] }),
      ],
    });
    this.role.attachInlinePolicy(tracing);
    (this.function.node.defaultChild as CfnFunction).tracingConfig = { mode: 'Active' };
    this.function.node.addDependency(tracing);
    acknowledge(
      tracing,
      'AwsSolutions-IAM5[Resource::*]',
      'X-Ray has no resource-level permissions, so xray:PutTraceSegments and xray:PutTelemetryRecords can only be granted on "*" (https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsx-ray.html). This policy holds nothing else.',
    );
    if (props.network !== undefined) {
      acknowledge(
        this.role,
        'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole]',
        'Added by CDK for a function in a VPC: Lambda uses it to create and delete the network interfaces in the ' +
          'subnets; the function code makes no EC2 call.',
      );
    }
    acknowledge(
      this.function,
      'AwsSolutions-L1',
      'Node.js 22 is a supported Lambda runtime (deprecation scheduled for 2027) and matches the esbuild target (node22) the bundles are built for; LAMBDA_RUNTIME and ESBUILD_TARGET move to Node 24 together.',
    );
  }

  /** Sets one environment variable; call the grant it needs right after. */
  addEnvironment(key: string, value: string): this {
    this.function.addEnvironment(key, value);
    return this;
  }
}

/** Where a bundled mapping file lands inside the Lambda (LAMBDA_TASK_ROOT). */
export const BUNDLED_MAPPING_PATH = '/var/task/mapping.json';

/** Default Lambda timeouts, re-exported for tests and docs. */
export const EXPORT_TIMEOUT = Duration.minutes(15); // Lambda's maximum: one run may export a day of catch-up.
export const FORWARD_TIMEOUT = Duration.minutes(10);
