/**
 * Invariant 4: memory does not grow with window size. The same export runs in a fresh process over 20,000 and over
 * 220,000 events; its peak RSS must stay nearly flat (the body is streamed, parts roll and upload as they fill).
 * No timing is asserted.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '#emulators/local-stack';

const run = promisify(execFile);
const H = 3_600_000;
const END = Date.parse('2026-11-20T06:00:00Z');

async function exportInChild(
  stack: LocalStack,
  projectPrefix: string,
  partitioned?: { partEvents: number; eventsPerMinute: number },
): Promise<{ events: number; parts: number; maxRssMb: number; peakHeapMb: number }> {
  const { stdout } = await run(
    process.execPath,
    [
      '--import',
      'tsx',
      'test/integration/fixtures/export-child.ts',
      new Date(END - 6 * H).toISOString(),
      new Date(END).toISOString(),
      ...(partitioned !== undefined ? [String(partitioned.partEvents), String(partitioned.eventsPerMinute)] : []),
    ],
    {
      env: {
        ...process.env,
        ...stack.env,
        STAGING_PREFIX: projectPrefix,
        AWS_ENDPOINT_URL_S3: stack.s3.endpoint,
        AWS_REGION: 'us-east-1',
        NODE_OPTIONS: '--openssl-legacy-provider',
      },
      maxBuffer: 1024 * 1024,
    },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1)!);
}

describe('export memory', () => {
  let small: LocalStack;
  let large: LocalStack;
  beforeAll(async () => {
    const dataset = (count: number) => ({
      seed: 11,
      count,
      start: END - 6 * H,
      end: END,
      duplicateFraction: 0,
      largeFraction: 0.001,
    });
    small = await startLocalStack({ dataset: dataset(20_000), mixpanel: { rateLimit: false } });
    large = await startLocalStack({ dataset: dataset(220_000), mixpanel: { rateLimit: false } });
  });
  afterAll(async () => {
    await small?.close();
    await large?.close();
  });

  it('should stage 220,000 events with about the same peak memory as 20,000', async () => {
    // Act
    const a = await exportInChild(small, 'small/');
    const b = await exportInChild(large, 'large/');
    console.info(
      `export memory: ${a.events} events → peak RSS ${a.maxRssMb.toFixed(0)} MB, heap ${a.peakHeapMb.toFixed(0)} MB; ${b.events} events → peak RSS ${b.maxRssMb.toFixed(0)} MB, heap ${b.peakHeapMb.toFixed(0)} MB`,
    );
    // Assess: all events staged, and the larger window costs at most a few tens of MB more
    expect(a.events).toBeGreaterThanOrEqual(19_000);
    expect(b.events).toBeGreaterThanOrEqual(200_000);
    expect(b.maxRssMb).toBeLessThan(a.maxRssMb + 64);
    expect(b.maxRssMb).toBeLessThan(256);
    expect(b.peakHeapMb).toBeLessThan(a.peakHeapMb * 1.5 + 16);
  }, 240_000);

  it('should stage 220,000 events in 16 partitions within the bound of one partition (parts spill to disk)', async () => {
    // Act: the same window in one partition, then in 16 (parts of 15,000 events and the rate of the data)
    const a = await exportInChild(small, 'small-p/');
    const one = await exportInChild(large, 'large-1/');
    const b = await exportInChild(large, 'large-p/', { partEvents: 15_000, eventsPerMinute: 220_000 / 360 });
    console.info(
      `export memory, partitioned: ${b.events} events in ${b.parts} parts → peak RSS ${b.maxRssMb.toFixed(0)} MB, heap ${b.peakHeapMb.toFixed(0)} MB; in one partition ${one.maxRssMb.toFixed(0)} MB`,
    );
    // Assess: every event staged, at least a part per partition, and 16 open parts cost no more than one: their gzip
    // output waits on disk, not in 16 multipart buffers (those held ~220 MB here, 30 MB over one partition)
    expect(b.events).toBeGreaterThanOrEqual(200_000);
    expect(b.parts).toBeGreaterThanOrEqual(16);
    expect(b.maxRssMb).toBeLessThan(a.maxRssMb + 64);
    expect(b.maxRssMb).toBeLessThan(one.maxRssMb + 16);
  }, 240_000);
});
