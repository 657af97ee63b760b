/**
 * Running a synthesized Lambda asset the way Lambda runs it: zipped as the CDK CLI zips it, unpacked read-only,
 * started through the function's exec wrapper with the Node.js runtime's own command line, as an unprivileged user,
 * with exactly the template's environment plus Lambda's reserved variables, polling a Runtime API stand-in.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  linkSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join, relative } from 'node:path';
import { crc32, deflateRawSync } from 'node:zlib';
import { type LambdaRuntimeApi, startLambdaRuntimeApi } from '#emulators/lambda-runtime';

export { type LambdaNode, findLambdaNode, lambdaNodeCacheDir } from '../support/lambda-node.ts';

/**
 * Zips a directory as the CDK CLI zips an asset directory for upload (aws-cdk `zipDirectory`: every file including
 * dot files, symbolic links followed, each entry with its file mode, dates fixed to 1980-01-01). The CLI does not
 * export that function, so its settings are repeated here with a minimal DEFLATE zip writer.
 */
export function zipDirectory(directory: string, outputFile: string): void {
  const files: string[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const full = join(dir, name);
      if (statSync(full).isDirectory()) walk(full);
      else files.push(full);
    }
  };
  walk(directory);
  const DOS_DATE = ((1980 - 1980) << 9) | (1 << 5) | 1; // 1980-01-01
  const local: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const full of files) {
    const name = Buffer.from(relative(directory, full).split('\\').join('/'));
    const data = readFileSync(full);
    const packed = deflateRawSync(data);
    const crc = crc32(data);
    const header = Buffer.alloc(30);
    header.writeUInt32LE(0x04034b50, 0);
    header.writeUInt16LE(20, 4); // version needed
    header.writeUInt16LE(0x0800, 6); // UTF-8 names
    header.writeUInt16LE(8, 8); // deflate
    header.writeUInt16LE(0, 10); // time 00:00
    header.writeUInt16LE(DOS_DATE, 12);
    header.writeUInt32LE(crc, 14);
    header.writeUInt32LE(packed.length, 18);
    header.writeUInt32LE(data.length, 22);
    header.writeUInt16LE(name.length, 26);
    local.push(header, name, packed);
    const entry = Buffer.alloc(46);
    entry.writeUInt32LE(0x02014b50, 0);
    entry.writeUInt16LE((3 << 8) | 20, 4); // made by Unix: the external attributes carry the mode
    entry.writeUInt16LE(20, 6);
    entry.writeUInt16LE(0x0800, 8);
    entry.writeUInt16LE(8, 10);
    entry.writeUInt16LE(0, 12);
    entry.writeUInt16LE(DOS_DATE, 14);
    entry.writeUInt32LE(crc, 16);
    entry.writeUInt32LE(packed.length, 20);
    entry.writeUInt32LE(data.length, 24);
    entry.writeUInt16LE(name.length, 28);
    entry.writeUInt32LE(((statSync(full).mode & 0xffff) << 16) >>> 0, 38);
    entry.writeUInt32LE(offset, 42);
    central.push(entry, name);
    offset += header.length + name.length + packed.length;
  }
  const centralSize = central.reduce((n, b) => n + b.length, 0);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(files.length, 8);
  end.writeUInt16LE(files.length, 10);
  end.writeUInt32LE(centralSize, 12);
  end.writeUInt32LE(offset, 16);
  writeFileSync(outputFile, Buffer.concat([...local, ...central, end]));
}

/** Unpacks a zip with Info-ZIP's `unzip` (which applies the stored modes, as Lambda does) and makes it read-only. */
export function unzipReadOnly(zipFile: string, directory: string): void {
  mkdirSync(directory, { recursive: true });
  const run = spawnSync('unzip', ['-q', '-o', zipFile, '-d', directory], { encoding: 'utf8' });
  if (run.error !== undefined || run.status !== 0) throw new Error(`unzip failed: ${run.error?.message ?? run.stderr}`);
  // Readable and traversable by the unprivileged user, writable by no one (Lambda's /var/task is read-only).
  spawnSync('chmod', ['-R', 'a+rX,a-w', directory]);
}

/** Gives the unprivileged user its own copy of a file (Node binary, runtime client) outside any private directory. */
export function shareFile(source: string, targetDir: string, name: string, mode: number): string {
  const target = join(targetDir, name);
  try {
    linkSync(source, target);
  } catch {
    copyFileSync(source, target);
  }
  chmodSync(target, mode);
  return target;
}

/** The command prefix that drops to the `nobody` user, when running as root with setpriv; else why not. */
export function unprivilegedPrefix(): { prefix: string[]; note: string } {
  const uid = process.getuid?.();
  if (uid !== 0)
    return { prefix: [], note: `runs as the current user (uid ${uid ?? 'unknown'}), already unprivileged` };
  const setpriv = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));
  if (setpriv === undefined)
    return { prefix: [], note: 'runs as root: setpriv is not installed, so it cannot drop to an unprivileged user' };
  return {
    prefix: [setpriv, '--reuid=65534', '--regid=65534', '--clear-groups', '--'],
    note: 'runs as uid 65534 (nobody) through setpriv',
  };
}

/** One synthesized function to start. */
export interface FunctionSpec {
  readonly name: string;
  /** The unpacked, read-only asset (LAMBDA_TASK_ROOT). */
  readonly taskRoot: string;
  /** The function's Environment.Variables from the template, resolved. */
  readonly environment: Readonly<Record<string, string>>;
  readonly handler: string;
  readonly memoryMb: number;
  readonly timeoutSeconds: number;
  readonly runtime: string;
  readonly region: string;
  readonly account: string;
  /** Values the function gets on top of what Lambda gives it (only endpoints of the stand-ins). */
  readonly extraEnvironment: Readonly<Record<string, string>>;
}

/** A running execution environment. */
export interface RunningFunction {
  readonly api: LambdaRuntimeApi;
  invoke(event: unknown): Promise<unknown>;
  /** Everything the process wrote (its logs), for failures and the leak check. */
  output(): string;
  stop(): Promise<void>;
}

/** Where Lambda unpacks the code; the template's paths under it point into the local task root instead. */
const LAMBDA_TASK_ROOT = '/var/task';

/**
 * Starts a function as the Node.js runtime's bootstrap does: `exec -- "$AWS_LAMBDA_EXEC_WRAPPER" <node> --expose-gc
 * --max-http-header-size 81920 --max-semi-space-size=<mem/20> --max-old-space-size=<mem*0.9> <runtime client>`,
 * with the template's environment and Lambda's reserved variables
 * (https://docs.aws.amazon.com/lambda/latest/dg/configuration-envvars.html#configuration-envvars-runtime).
 */
export async function startFunction(
  spec: FunctionSpec,
  node: string,
  runtimeClient: string,
  user: string[],
): Promise<RunningFunction> {
  const api = await startLambdaRuntimeApi({
    functionArn: `arn:aws:lambda:${spec.region}:${spec.account}:function:${spec.name}`,
    timeoutMs: spec.timeoutSeconds * 1000,
  });
  const local = (value: string): string =>
    value.startsWith(`${LAMBDA_TASK_ROOT}/`) ? join(spec.taskRoot, value.slice(LAMBDA_TASK_ROOT.length + 1)) : value;
  const env: Record<string, string> = {
    ...Object.fromEntries(Object.entries(spec.environment).map(([k, v]) => [k, local(v)])),
    // Reserved variables Lambda sets (credentials are placeholders the stand-ins accept).
    _HANDLER: spec.handler,
    AWS_REGION: spec.region,
    AWS_DEFAULT_REGION: spec.region,
    AWS_EXECUTION_ENV: `AWS_Lambda_${spec.runtime}`,
    AWS_LAMBDA_FUNCTION_NAME: spec.name,
    AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(spec.memoryMb),
    AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    AWS_LAMBDA_INITIALIZATION_TYPE: 'on-demand',
    AWS_LAMBDA_LOG_GROUP_NAME: `/aws/lambda/${spec.name}`,
    AWS_LAMBDA_LOG_STREAM_NAME: '2026/01/01/[$LATEST]deploytest',
    AWS_ACCESS_KEY_ID: 'ASIADEPLOYTEST',
    AWS_SECRET_ACCESS_KEY: 'deploy-test',
    AWS_SESSION_TOKEN: 'deploy-test',
    AWS_LAMBDA_RUNTIME_API: api.address,
    LAMBDA_TASK_ROOT: spec.taskRoot,
    LAMBDA_RUNTIME_DIR: '/var/runtime',
    TZ: ':UTC',
    LANG: 'en_US.UTF-8',
    PATH: '/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin',
    AWS_XRAY_CONTEXT_MISSING: 'LOG_ERROR',
    ...spec.extraEnvironment,
  };
  const mem = spec.memoryMb;
  const nodeArgs = [
    '--expose-gc',
    '--max-http-header-size',
    '81920',
    `--max-semi-space-size=${Math.floor(mem / 10 / 2)}`,
    `--max-old-space-size=${mem - Math.floor(mem / 10)}`,
    runtimeClient,
  ];
  const wrapper = env.AWS_LAMBDA_EXEC_WRAPPER;
  const argv = [...user, ...(wrapper !== undefined ? [wrapper] : []), node, ...nodeArgs];
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), {
    env,
    cwd: spec.taskRoot,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (c: Buffer) => (output += c.toString('utf8')));
  child.stderr!.on('data', (c: Buffer) => (output += c.toString('utf8')));
  const exited = new Promise<string>((resolve) => {
    child.on('error', (e) => resolve(`could not start: ${e.message}`));
    child.on('exit', (code, signal) => resolve(`exited with ${code ?? signal}`));
  });
  return {
    api,
    // A process that dies before answering fails the invocation (Lambda reports Runtime.ExitError).
    invoke: (event) => {
      const died = exited.then((how) => {
        throw new Error(
          `${spec.name}: the runtime ${how} before answering${api.initError ? ` (${api.initError.message})` : ''}\n${output}`,
        );
      });
      died.catch(() => undefined);
      return Promise.race([api.invoke(event), died]);
    },
    output: () => output,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
      await api.close();
    },
  };
}
