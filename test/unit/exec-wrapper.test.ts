/**
 * The functions' exec wrapper (functions/runtime/exec-wrapper.sh) started the way Lambda starts it: the interpreter
 * path, then the runtime's original arguments, with the environment the stack gives the functions. A probe script
 * reports the flags Node ran with and the heap limit V8 derived from them (old space + 3 semi-spaces), so the
 * young-generation size that applied is observable.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  EXEC_WRAPPER,
  FUNCTION_MEMORY_MB,
  LAMBDA_NODE_ARGS,
  LAMBDA_NODE_OPTIONS,
  runtimeOldSpaceMb,
} from '../../lib/constructs/connector-function.ts';

const dir = mkdtempSync(join(tmpdir(), 'exec-wrapper-'));
const probe = join(dir, 'probe.cjs');
writeFileSync(
  probe,
  "const v8 = require('node:v8');\n" +
    'console.log(JSON.stringify({ limitMb: v8.getHeapStatistics().heap_size_limit / 1048576, execArgv: process.execArgv, argv: process.argv.slice(2) }));\n' +
    "process.exitCode = process.argv.includes('fail') ? 3 : 0;\n",
);

interface Probe {
  limitMb: number;
  execArgv: string[];
  argv: string[];
}

/**
 * Runs `command args…` with the functions' NODE_OPTIONS and, when given, their CONNECTOR_NODE_ARGS; returns the probe's
 * report and the exit status.
 */
function run(command: string, args: string[], connectorNodeArgs?: string): { probe: Probe; status: number | null } {
  const { CONNECTOR_NODE_ARGS: _, ...env } = process.env;
  const out = spawnSync(command, args, {
    env: {
      ...env,
      NODE_OPTIONS: LAMBDA_NODE_OPTIONS,
      ...(connectorNodeArgs === undefined ? {} : { CONNECTOR_NODE_ARGS: connectorNodeArgs }),
    },
    encoding: 'utf8',
  });
  if (out.stdout.trim() === '') throw new Error(`no probe output: ${out.stderr}`);
  return { probe: JSON.parse(out.stdout) as Probe, status: out.status };
}
const viaWrapper = (runtimeArgs: string[], connectorNodeArgs?: string) =>
  run('/bin/sh', [EXEC_WRAPPER.source, process.execPath, ...runtimeArgs], connectorNodeArgs);

describe.skipIf(process.platform === 'win32')('Lambda exec wrapper', () => {
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("should start the runtime without its young-generation size, so the function's NODE_OPTIONS one applies", () => {
    // Prepare: the runtime's own command line (a 1024 MB function: semi-space 51 MB, old space 922 MB)
    const oldSpace = `--max-old-space-size=${runtimeOldSpaceMb(FUNCTION_MEMORY_MB)}`;
    const runtimeArgs = ['--expose-gc', '--max-http-header-size', '81920', '--max-semi-space-size=51', oldSpace, probe];

    // Act
    const direct = run(process.execPath, runtimeArgs);
    const wrapped = viaWrapper(runtimeArgs);
    const nodeOptionsOnly = run(process.execPath, [oldSpace, probe]);

    // Assess: started directly, the runtime's flag wins over NODE_OPTIONS; through the wrapper, NODE_OPTIONS decides
    expect(direct.probe.limitMb).toBeGreaterThan(nodeOptionsOnly.probe.limitMb);
    expect(wrapped.probe.limitMb).toBe(nodeOptionsOnly.probe.limitMb);
    expect(wrapped.probe.execArgv).toEqual(['--expose-gc', '--max-http-header-size', '81920', oldSpace]);
  });

  it('should drop the flag in its separate-value and underscore spellings and keep everything else as it was', () => {
    // Act
    const spaced = viaWrapper([
      '--max-semi-space-size',
      '51',
      '--max_semi_space_size=8',
      probe,
      'a b',
      'c"d',
      '',
      '$HOME',
    ]);

    // Assess
    expect(spaced.probe.execArgv).toEqual([]);
    expect(spaced.probe.argv).toEqual(['a b', 'c"d', '', '$HOME']);
  });

  it('should pass a command line without the flag through unchanged, with its exit status', () => {
    // Act
    const plain = viaWrapper(['--expose-gc', probe, 'fail']);

    // Assess
    expect(plain.probe.execArgv).toEqual(['--expose-gc']);
    expect(plain.probe.argv).toEqual(['fail']);
    expect(plain.status).toBe(3);
  });

  it('should put the flags of CONNECTOR_NODE_ARGS right after the interpreter, which Node refuses in NODE_OPTIONS', () => {
    // Prepare: the runtime's command line, as above
    const oldSpace = `--max-old-space-size=${runtimeOldSpaceMb(FUNCTION_MEMORY_MB)}`;
    const runtimeArgs = ['--expose-gc', '--max-semi-space-size=51', oldSpace, probe, 'a b'];

    // Act
    const wrapped = viaWrapper(runtimeArgs, LAMBDA_NODE_ARGS);
    const twoFlags = viaWrapper(runtimeArgs, ' --initial-old-space-size=32   --stack-size=900 ');
    const inNodeOptions = spawnSync(process.execPath, ['-e', ''], {
      env: { ...process.env, NODE_OPTIONS: `${LAMBDA_NODE_OPTIONS} ${LAMBDA_NODE_ARGS}` },
      encoding: 'utf8',
    });

    // Assess: the stack's flags come first, each as one argument, and the runtime's others follow in order
    expect(wrapped.status).toBe(0);
    expect(wrapped.probe.execArgv).toEqual([...LAMBDA_NODE_ARGS.split(' '), '--expose-gc', oldSpace]);
    expect(wrapped.probe.argv).toEqual(['a b']);
    expect(twoFlags.probe.execArgv).toEqual([
      '--initial-old-space-size=32',
      '--stack-size=900',
      '--expose-gc',
      oldSpace,
    ]);
    // Why they travel through the wrapper: Node will not start with them in NODE_OPTIONS
    expect(inNodeOptions.status).not.toBe(0);
    expect(inNodeOptions.stderr).toContain('is not allowed in NODE_OPTIONS');
  });

  it("should compute the old-generation limit as the runtime's bootstrap does: memory − ⌊memory / 10⌋ MB", () => {
    // Assess: the bootstrap's integer arithmetic (new space = memory / 10, old space = memory − new space)
    expect(runtimeOldSpaceMb(1024)).toBe(922);
    expect(runtimeOldSpaceMb(128)).toBe(116);
    expect(runtimeOldSpaceMb(10_240)).toBe(9216);
    expect(runtimeOldSpaceMb()).toBe(runtimeOldSpaceMb(FUNCTION_MEMORY_MB));
  });
});
