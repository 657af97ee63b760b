import { describe, expect, it } from 'vitest';
import {
  type BenchFigures,
  LIMITS,
  eventsPerSecond,
  readBenchJson,
  renderScaleModel,
  scaleRow,
} from '../../bench/scale-model.ts';

const bench: BenchFigures = {
  export: { cpuMsPer1kEvents: { product: 25 } },
  forward: { cpuMsPer1k: 50, requests: 1_000, accepted: 500_000, maxRequestBytes: 1_000_000 },
};

describe('scale model', () => {
  it('should turn CPU per 1,000 events into one invocation’s rate at the deployed memory', () => {
    // 50 ms per 1,000 → 20,000 events/s on one vCPU; 1024 MB is 1024/1769 of a vCPU
    expect(eventsPerSecond(50, 1769)).toBeCloseTo(20_000, 6);
    expect(eventsPerSecond(50, 1024)).toBeCloseTo((20_000 * 1024) / 1769, 6);
  });

  it('should size windows with the planner, count queries and bound a backfill by its slowest stage', () => {
    const r = scaleRow(bench, 10_000_000);
    // 10 M a day is 6,944 a minute: the longest divisor of a day under 1 M events is 144 minutes (exactly 1 M)
    expect(r.windowMinutes).toBe(144);
    expect(r.eventsPerWindow).toBe(1_000_000);
    expect(r.queriesPerDay).toBe(10);
    expect(r.exportSecondsPerWindow).toBeCloseTo(1_000_000 / eventsPerSecond(25), 6);
    // 90 days × 10 M = 900 M events; Platform's 10,000/s → 25 h; the query budget: 900 queries / 45 an hour → 20 h
    expect(r.backfillBound).toBe('Platform');
    expect(r.backfillDays).toBeCloseTo(25 / 24, 6);
    expect(r.forwardInvocationsAtPlatformCap).toBe(Math.ceil(10_000 / eventsPerSecond(50)));
    // 2,000 bytes a record (1,000 requests of 1 MB for 500,000 records) against 20 GB/h
    expect(r.platformBatchShare).toBeCloseTo(10_000_000 / 86_400 / (20e9 / 2_000 / 3600), 6);
    const gbSeconds = 1e6 / eventsPerSecond(25) + 1e6 / eventsPerSecond(50);
    expect(r.usdPerMillionEvents).toBeCloseTo(gbSeconds * LIMITS.usdPerGbSecond, 9);
  });

  it('should say when a project outgrows Platform’s documented streaming limit', () => {
    const r = scaleRow(bench, 1_000_000_000);
    expect(r.platformStreamingShare).toBeGreaterThan(1);
    expect(r.windowMinutes).toBe(5);
  });

  it('should forward at the scale run’s CPU per 1,000 records when the benchmark has one, and show its figures', () => {
    const scale = {
      events: 10_100_000,
      partitions: 16,
      concurrency: 2,
      export: { eventsPerSec: 12_000 },
      forward: { eventsPerSec: 9_000, cpuMsPer1k: 40 },
      peakRssMaxMb: 201.3,
    };
    const withScale = { ...bench, scale };
    expect(scaleRow(withScale, 1e9).forwardInvocationsAtPlatformCap).toBe(Math.ceil(10_000 / eventsPerSecond(40)));
    expect(scaleRow(bench, 1e9).forwardInvocationsAtPlatformCap).toBe(Math.ceil(10_000 / eventsPerSecond(50)));
    const md = renderScaleModel(withScale);
    expect(md).toContain('forward 40 ms per 1,000 records');
    expect(md).toContain('16 partitions forwarded by 2 concurrent invocations at 9,000 events/s');
    expect(renderScaleModel(bench)).not.toContain('Measured at scale');
  });

  it('should read the JSON line of a benchmark output and render the three sizes', () => {
    const text = `table\n${JSON.stringify({ ...bench, map: {} })}\n`;
    const md = renderScaleModel(readBenchJson(text));
    expect(md.split('\n').filter((l) => l.startsWith('| 1'))).toHaveLength(3);
    expect(() => readBenchJson('no json here')).toThrow(/npm run bench/);
  });
});
