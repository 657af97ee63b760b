/**
 * The CLI's `verify` and `resend` against the local stack, reached through the environment only: Platform's verdict on
 * a synced window, and a batch Platform failed re-sent once.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { listKeys } from '#cli/invariants';
import { Buffered, type CliContext } from '#cli/io';
import { runCli } from '#cli/main';
import { type LocalStack, startLocalStack } from '#emulators/local-stack';
import { StagingLayout } from '#staging/layout';

const H = 3_600_000;
const NOW = Math.floor(Date.now() / H) * H - 2 * H + 10 * 60_000;
const PROJECT = '3141592';

let stack: LocalStack | undefined;
let cwd: string | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
  if (cwd) await rm(cwd, { recursive: true, force: true });
  cwd = undefined;
});

describe('verify --window', () => {
  it("should say pending within Platform's latency, then print ingested and failed at Platform with the reason", async () => {
    // Prepare: Platform refuses every 25th record of the first request after taking it
    const r = await setupWith('streaming', (s) =>
      s.aep.injectFault({ kind: 'partial', everyNth: 25, statusCode: 400, asynchronous: true, message: 'retyped' }),
    );

    // Act 1: right after the sync, within the data lake's documented latency
    const early = await r.cli(['verify', '--window', r.window]);

    // Assess 1
    expect(early.code, early.stderr).toBe(0);
    expect(early.stdout).toMatch(/pending — waiting for Platform’s data-lake latency/);

    // Act 2: Platform has closed its batches; the operator checks without waiting the full hour
    r.s.aep.settle();
    const later = await r.cli(['verify', '--window', r.window]);
    const json = await r.cli(['verify', '--window', r.window, '--json'], { AEP_VERIFY_SETTLE_MINUTES: '0' });

    // Assess 2: a settle time of 60 minutes still says pending; with 0 the verdict is read and printed
    expect(later.stdout).toMatch(/pending/);
    expect(json.code, json.stderr).toBe(0);
    const [verdict] = JSON.parse(json.stdout) as Array<{ status: string; ingested: number; failed: number }>;
    expect(verdict!.status).toBe('verified');
    expect(verdict!.failed).toBeGreaterThan(0);
    expect(verdict!.ingested).toBe(new Set(r.s.aep.acceptedIds()).size);
    const text = await r.cli(['verify', '--window', r.window], { AEP_VERIFY_SETTLE_MINUTES: '0' });
    expect(text.stdout).toMatch(/verified: [\d,]+ ingested, [\d,]+ failed at Platform \(platform-validation \d+\)/);
  });
});

describe('resend --window', () => {
  it('should re-send a batch Platform failed once, refuse to re-send a batch it stored, and verify the result', async () => {
    // Prepare: Platform fails the batch of the synced window
    const r = await setupWith('batch', (s) => s.aep.injectFault({ kind: 'promotion', states: ['staging', 'failed'] }));

    // Act 1: the verdict says the batch failed
    const failed = await r.cli(['verify', '--window', r.window]);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toMatch(/failed: 0 ingested, [\d,]+ failed at Platform \(platform-batch-failed/);
    expect(failed.stdout).toMatch(/resend --window/);

    // Act 2: re-send, then verify
    const resent = await r.cli(['resend', '--window', r.window]);
    expect(resent.code, resent.stderr).toBe(0);
    expect(resent.stdout).toMatch(/records of failed batch \S+ re-sent in batch \S+/);
    const verified = await r.cli(['verify', '--window', r.window]);
    expect(verified.code, verified.stderr).toBe(0);
    expect(verified.stdout).toMatch(/verified: [\d,]+ ingested, 0 failed at Platform/);
    const ids = r.s.aep.acceptedIds();
    expect(ids.length).toBeGreaterThan(0);
    expect(new Set(ids).size).toBe(ids.length);

    // Act 3: the batch that succeeded is not re-sent
    const again = await r.cli(['resend', '--window', r.window]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/not failed: re-sending it would store its records twice/);
    expect(r.s.aep.acceptedIds()).toEqual(ids);
  });
});

/** A local stack (`before` runs on it first), a window synced through the CLI, and the CLI to run against it. */
async function setupWith(sink: 'streaming' | 'batch', before: (s: LocalStack) => void) {
  const s = await startLocalStack({
    dataset: { seed: 5, count: 1500, start: NOW - 4 * H, end: NOW - 30 * 60_000 },
    now: () => NOW,
    sink,
  });
  stack = s;
  before(s);
  cwd = await mkdtemp(path.join(tmpdir(), 'cli-verify-'));
  const env: Record<string, string> = {
    ...s.env,
    AWS_ENDPOINT_URL_S3: s.s3.endpoint,
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_REGION: 'us-east-1',
  };
  const ctx: CliContext = { now: () => NOW, sleep: async () => undefined, cwd };
  const cli = async (argv: string[], over: Record<string, string> = {}) => {
    const io = { stdout: new Buffered(), stderr: new Buffered() };
    const code = await runCli(argv, { ...env, ...over }, io, ctx);
    return { code, stdout: io.stdout.text, stderr: io.stderr.text };
  };
  // One grid hour: a project's first window is a probe of at most an hour, so the sync makes exactly one window.
  const range = { from: new Date(NOW - 3 * H).toISOString(), to: new Date(NOW - 3 * H + 60_000).toISOString() };
  const synced = await cli(['sync', '--from', range.from, '--to', range.to]);
  expect(synced.code, synced.stderr).toBe(0);
  const manifests = (await listKeys(s.s3.client, s.bucket, 'staging/')).filter((k) => k.endsWith('manifest.json'));
  expect(manifests).toHaveLength(1);
  const window = new StagingLayout('').parseManifestKey(manifests[0]!)!.windowId;
  return { s, cli, window };
}
