/**
 * The real thing: `cdk synth` through the CDK CLI and cdk.json, exactly as an operator runs it on a fresh clone —
 * offline, bundling both handlers with the local esbuild, cdk-nag AwsSolutions and CDK's template validation on.
 * Skipped until both handlers exist.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EXEC_WRAPPER, PROJECT_ROOT } from '../../lib/constructs/connector-function.ts';
import { HANDLER_ENTRIES } from '../../lib/connector-stack.ts';

/** Per-bundle budget: the minified index.mjs a cold start loads (the source map is loaded only for stack traces). */
const BUNDLE_BUDGET_BYTES = 1024 * 1024;

const handlersExist = Object.values(HANDLER_ENTRIES).every((entry) => existsSync(join(PROJECT_ROOT, entry)));
const cdkCli = createRequire(import.meta.url).resolve('aws-cdk/bin/cdk');

describe.skipIf(!handlersExist)('cdk synth (CLI, bundling, cdk-nag)', () => {
  const outdir = mkdtempSync(join(tmpdir(), 'connector-synth-'));
  afterAll(() => rmSync(outdir, { recursive: true, force: true }));

  it('should synthesise offline with zero unacknowledged cdk-nag findings and bundles within budget', {
    timeout: 120_000,
  }, () => {
    // Act
    const run = spawnSync(process.execPath, [cdkCli, 'synth', '--quiet', '--output', outdir], {
      cwd: PROJECT_ROOT,
      encoding: 'utf8',
      env: { ...process.env, CDK_DISABLE_VERSION_CHECK: '1' },
    });

    // Assess
    const output = `${run.stdout}\n${run.stderr}`;
    expect(run.status, output).toBe(0);
    expect(output).not.toMatch(/AwsSolutions-/);

    const manifest = JSON.parse(readFileSync(join(outdir, 'manifest.json'), 'utf8')) as {
      artifacts: Record<string, { type: string }>;
    };
    expect(Object.values(manifest.artifacts).some((a) => a.type === 'aws:cloudformation:stack')).toBe(true);

    const bundles = readdirSync(outdir)
      .filter((d) => d.startsWith('asset.') && existsSync(join(outdir, d, 'index.mjs')))
      .map((d) => ({
        asset: d,
        bytes: statSync(join(outdir, d, 'index.mjs')).size,
        map: existsSync(join(outdir, d, 'index.mjs.map')),
      }));
    expect(bundles, 'one bundle per handler (export functions share theirs)').toHaveLength(2);
    for (const b of bundles) {
      expect(b.map, `${b.asset} ships its source map`).toBe(true);
      // The exec wrapper the functions start through (AWS_LAMBDA_EXEC_WRAPPER): in the bundle, unchanged, executable.
      const wrapper = join(outdir, b.asset, EXEC_WRAPPER.bundledAs);
      expect(readFileSync(wrapper, 'utf8')).toBe(readFileSync(EXEC_WRAPPER.source, 'utf8'));
      expect(statSync(wrapper).mode & 0o755, `${b.asset}/${EXEC_WRAPPER.bundledAs} must be executable by Lambda`).toBe(
        0o755,
      );
      expect(
        b.bytes,
        `${b.asset}/index.mjs is ${b.bytes} bytes, over the ${BUNDLE_BUDGET_BYTES}-byte budget: set BUNDLE_AWS_SDK to false in lib/constructs/connector-function.ts (the SDK is ~450 KB of it) or slim the code`,
      ).toBeLessThanOrEqual(BUNDLE_BUDGET_BYTES);
    }
  });
});
