/**
 * Memory independent of the window, forward side: windows of 20,000 and 220,000 events are staged in partitions of
 * ~15,000 events (the export sizes partitions from the observed rate) and forwarded in a fresh process each, every
 * partition with an id set of its own. Peak RSS must stay nearly flat. No timing is asserted.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createExportDeps } from '#export/deps';
import { createExportHandler } from '#export/handler';
import { type LocalStack, startLocalStack } from '#emulators/local-stack';
import type { Manifest } from '#staging/manifest';
import { getJson } from '#staging/s3';

const run = promisify(execFile);
const H = 3_600_000;
const END = Date.parse('2026-11-20T06:00:00Z');
const PART_EVENTS = 15_000;
const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/** Stages the 6 hours of data, the checkpoint telling the export the rate it will find; returns the manifests. */
async function stage(stack: LocalStack, events: number): Promise<Manifest[]> {
  const s3 = stack.s3.client;
  const deps = { ...createExportDeps(stack.exportConfig, { s3, log: quiet }), partMaxEvents: PART_EVENTS };
  const checkpoint = await deps.state.read();
  const rate = events / 360;
  await deps.state.write({
    ...checkpoint,
    'processing-time': { ...checkpoint['processing-time'], eventsPerMinute: rate },
  });
  const result = await createExportHandler(() => deps)({
    from: new Date(END - 6 * H).toISOString(),
    to: new Date(END).toISOString(),
    mode: 'processing-time',
  });
  const manifests: Manifest[] = [];
  for (const w of result.windows) manifests.push((await getJson<Manifest>(s3, stack.bucket, w.manifestKey!))!);
  return manifests;
}

async function forwardInChild(
  stack: LocalStack,
  manifests: Manifest[],
): Promise<{ failures: number; accepted: number; rejected: number; maxRssMb: number; peakHeapMb: number }> {
  const keys = manifests.map(
    (m) => `staging/project=${m.projectId}/mode=${m.mode}/window=${m.window.id}/manifest.json`,
  );
  const { stdout } = await run(
    process.execPath,
    ['--import', 'tsx', 'test/integration/fixtures/forward-child.ts', ...keys],
    {
      env: {
        ...process.env,
        ...stack.env,
        AWS_ENDPOINT_URL_S3: stack.s3.endpoint,
        AWS_REGION: 'us-east-1',
        NODE_OPTIONS: '--openssl-legacy-provider',
      },
      maxBuffer: 1024 * 1024,
    },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1)!);
}

describe('forward memory', () => {
  let small: LocalStack;
  let large: LocalStack;
  beforeAll(async () => {
    const dataset = (count: number) => ({ seed: 13, count, start: END - 6 * H, end: END, largeFraction: 0.001 });
    small = await startLocalStack({ dataset: dataset(20_000), mixpanel: { rateLimit: false }, keep: 'ids' });
    large = await startLocalStack({ dataset: dataset(220_000), mixpanel: { rateLimit: false }, keep: 'ids' });
  });
  afterAll(async () => {
    await small?.close();
    await large?.close();
  });

  it('should forward 220,000 events in partitions with about the same peak memory as 20,000', async () => {
    // Prepare
    const a = await stage(small, 20_000);
    const b = await stage(large, 220_000);
    expect(a.reduce((n, m) => Math.max(n, m.partitions ?? 1), 1)).toBeLessThanOrEqual(2);
    expect(b.reduce((n, m) => Math.max(n, m.partitions ?? 1), 1)).toBe(16);

    // Act
    const x = await forwardInChild(small, a);
    const y = await forwardInChild(large, b);
    console.info(
      `forward memory: ${x.accepted} events → peak RSS ${x.maxRssMb.toFixed(0)} MB, heap ${x.peakHeapMb.toFixed(0)} MB; ${y.accepted} events → peak RSS ${y.maxRssMb.toFixed(0)} MB, heap ${y.peakHeapMb.toFixed(0)} MB`,
    );

    // Assess: everything forwarded, and the larger window costs at most a few tens of MB more
    expect([x.failures, y.failures]).toEqual([0, 0]);
    expect(x.accepted + x.rejected).toBe(a.reduce((n, m) => n + m.events, 0));
    expect(y.accepted + y.rejected).toBe(b.reduce((n, m) => n + m.events, 0));
    expect(y.maxRssMb).toBeLessThan(x.maxRssMb + 64);
    expect(y.maxRssMb).toBeLessThan(256);
    expect(y.peakHeapMb).toBeLessThan(x.peakHeapMb * 1.5 + 16);
  }, 480_000);
});
