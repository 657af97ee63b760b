/**
 * Child processes of the benchmark: long-running services (emulators, S3) that print one JSON line once they listen,
 * and one-shot workers that print one JSON line with their result as the last line of stdout.
 * Every child runs TypeScript through tsx's loader (`--import tsx`), like `npm run bench` itself.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** The repository root: children run from it so that `#common/*` and friends resolve. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface Service<T> {
  readonly info: T;
  readonly pid: number;
  stop(): Promise<void>;
}

export interface SpawnOptions {
  /** Node flags placed before the script (e.g. `--openssl-legacy-provider`, `--cpu-prof`). */
  readonly nodeArgs?: readonly string[];
  readonly env?: Record<string, string>;
  /** Run a plain JavaScript file (a bundle) without the TypeScript loader. */
  readonly plain?: boolean;
}

/**
 * The Node.js that runs the workers (the product's code and the baselines it is compared with); the services, stand-ins
 * for systems outside the product, run on the Node running the benchmark. See {@link useWorkerNode}.
 */
let workerNode = process.execPath;

/** Runs every later worker on this Node.js binary (the benchmark passes the Lambda runtime's, when installed). */
export function useWorkerNode(path: string): void {
  workerNode = path;
}

/**
 * Starts a child. A child whose environment is a deployed function's (with `CONNECTOR_NODE_ARGS`, bench/lib/stack.ts)
 * gets those flags first on its command line, as the functions' exec wrapper puts them on Lambda.
 */
function start(script: string, args: readonly string[], o: SpawnOptions, node = process.execPath): ChildProcess {
  const env: NodeJS.ProcessEnv = { ...process.env, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...o.env };
  // Split as the wrapper's sh splits an unquoted variable: on runs of blanks and newlines, none empty.
  const functionArgs = env.CONNECTOR_NODE_ARGS?.split(/\s+/).filter((a) => a !== '') ?? [];
  const nodeArgs = [...functionArgs, ...(o.nodeArgs ?? []), ...(o.plain === true ? [] : ['--import', 'tsx'])];
  return spawn(node, [...nodeArgs, script, ...args], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** Starts a service and resolves with the JSON line it prints once it is ready. */
export async function startService<T>(
  name: string,
  script: string,
  args: readonly string[],
  o: SpawnOptions = {},
): Promise<Service<T>> {
  const child = start(script, args, o);
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-4000);
  });
  const lines = createInterface({ input: child.stdout! });
  const info = await new Promise<T>((resolve, reject) => {
    lines.once('line', (line) => {
      try {
        resolve(JSON.parse(line) as T);
      } catch {
        reject(new Error(`${name}: unexpected first line ${JSON.stringify(line)}`));
      }
    });
    child.once('exit', (code) => reject(new Error(`${name} exited (${code}) before it was ready:\n${stderr}`)));
  });
  return {
    info,
    pid: child.pid!,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Marks the worker's result line: a peer may write progress to stdout without newlines. */
export const RESULT_MARKER = '@@bench-result@@';

/** Runs a worker to completion and returns the JSON object it printed after {@link RESULT_MARKER}. */
export async function runWorker<T>(script: string, args: readonly string[], o: SpawnOptions = {}): Promise<T> {
  const child = start(script, args, o, workerNode);
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => {
    stdout = (stdout + d.toString('utf8')).slice(-64_000);
  });
  child.stderr!.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString('utf8')).slice(-8000);
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0)
    throw new Error(`worker ${script} ${args.join(' ')} failed (${code}):\n${stderr || stdout.slice(-4000)}`);
  const at = stdout.lastIndexOf(RESULT_MARKER);
  try {
    if (at < 0) throw new Error('no result');
    return JSON.parse(stdout.slice(at + RESULT_MARKER.length).split('\n')[0]!) as T;
  } catch {
    throw new Error(`worker ${script} printed no result:\n${stdout.slice(-4000)}\n${stderr}`);
  }
}

/** CPU time (user + system, ms) a process has used so far, from /proc (Linux); undefined elsewhere. */
export function processCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces): utime and stime are the 12th and 13th of them.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS_PER_SECOND;
  } catch {
    return undefined;
  }
}

/** USER_HZ: 100 on every Linux architecture Node supports (sysconf(_SC_CLK_TCK)). */
const CLOCK_TICKS_PER_SECOND = 100;
