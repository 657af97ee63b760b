import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import {
  type DatasetSpec,
  DatasetCursor,
  generateDataset,
  indexRangeFor,
  type MixpanelEvent,
  trueEventTimeMs,
} from '../../emulators/mixpanel/generator.ts';
import { LineBuffer } from '../../emulators/mixpanel/line-buffer.ts';

const H = 3_600_000;
const DAY = 24 * H;
const START = Date.UTC(2024, 2, 9, 0, 0, 0);
const END = Date.UTC(2024, 2, 11, 12, 0, 0);

function tuple(e: MixpanelEvent): string {
  const p = e.properties;
  return JSON.stringify([e.event, p.distinct_id, p.time, p.$insert_id ?? null]);
}

function lagMs(e: MixpanelEvent): number {
  return (e.properties.mp_processing_time_ms as number) - (e.properties.time as number) * 1000;
}

/** A real gc() even though the test process was not started with --expose-gc. */
function gcFunction(): () => void {
  setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}

describe('generateDataset', () => {
  it('should produce the same sequence for the same spec and a different one for another seed', () => {
    // Prepare
    const spec: DatasetSpec = { seed: 11, count: 3000, start: START, end: END };
    // Act
    const first = [...generateDataset(spec)].map((e) => JSON.stringify(e));
    const second = [...generateDataset(spec)].map((e) => JSON.stringify(e));
    const other = [...generateDataset({ ...spec, seed: 12 })].map((e) => JSON.stringify(e));
    // Assess
    expect(first.length).toBeGreaterThanOrEqual(3000);
    expect(second).toEqual(first);
    expect(other).not.toEqual(first);
  });

  it('should write lines byte-identical to JSON.stringify of the event, in every time mode', () => {
    // Prepare: many large events, a legacy zone with DST, both `time` encodings
    const specs: DatasetSpec[] = [
      { seed: 5, count: 8000, start: START, end: END, largeFraction: 0.01 },
      { seed: 6, count: 8000, start: START, end: END, projectTimezone: 'America/New_York', legacyLocalTime: true },
    ];
    let checked = 0;
    const mismatches: string[] = [];
    for (const spec of specs) {
      for (const timeInMs of [false, true]) {
        const cursor = new DatasetCursor(spec);
        const out = new LineBuffer();
        while (cursor.next()) {
          // Act
          const start = out.length;
          cursor.writeLine(out, timeInMs);
          const line = out.text(start, out.length);
          const expected = `${JSON.stringify(cursor.event(timeInMs))}\n`;
          // Assess
          if (line !== expected && mismatches.length < 3) mismatches.push(line.slice(0, 300));
          checked++;
          if (out.length > 1_000_000) out.reset();
        }
      }
    }
    expect(mismatches).toEqual([]);
    expect(checked).toBeGreaterThan(32_000);
  });

  it('should keep every processing time within [start, end) and count distinct events exactly', () => {
    // Prepare
    const spec: DatasetSpec = { seed: 21, count: 50_000, start: START, end: END };
    // Act
    const events = [...generateDataset(spec)];
    // Assess
    const proc = events.map((e) => e.properties.mp_processing_time_ms as number);
    expect(Math.min(...proc)).toBeGreaterThanOrEqual(START);
    expect(Math.max(...proc)).toBeLessThan(END);
    expect(new Set(events.map(tuple)).size).toBe(50_000);
    const malformed = events.filter(
      (e) =>
        typeof e.properties.time !== 'number' ||
        typeof e.properties.distinct_id !== 'string' ||
        typeof e.properties.$mp_api_timestamp_ms !== 'number',
    );
    expect(malformed).toEqual([]);
  });

  it('should produce late, backdated, duplicate and large events in roughly the requested fractions', () => {
    // Prepare
    const count = 100_000;
    const spec: DatasetSpec = { seed: 99, count, start: START, end: END };
    // Act
    const events = [...generateDataset(spec)];
    // Assess: late = minutes..hours, backdated = 1..4 days with $import
    const late = events.filter((e) => lagMs(e) >= 2 * 60_000 && lagMs(e) <= 6 * H + 1000);
    const backdated = events.filter((e) => lagMs(e) >= DAY - 1000);
    expect(late.length / count).toBeGreaterThan(0.045);
    expect(late.length / count).toBeLessThan(0.055);
    expect(backdated.length / count).toBeGreaterThan(0.008);
    expect(backdated.length / count).toBeLessThan(0.012);
    expect(backdated.every((e) => e.properties.$import === true && lagMs(e) <= 4 * DAY + 60_000)).toBe(true);
    // Duplicates: extra lines, both exact copies and same-tuple retries processed later.
    const extra = events.length - count;
    expect(extra / count).toBeGreaterThan(0.008);
    expect(extra / count).toBeLessThan(0.012);
    const lines = events.map((e) => JSON.stringify(e));
    const exactCopies = lines.length - new Set(lines).size;
    const sameTuple = events.length - new Set(events.map(tuple)).size;
    expect(exactCopies).toBeGreaterThan(extra * 0.35);
    expect(sameTuple - exactCopies).toBeGreaterThan(extra * 0.35);
    // Large: tens of KB, under 1 MB.
    const large = lines.filter((l) => Buffer.byteLength(l) > 16_000);
    expect(large.length).toBeGreaterThan(60);
    expect(large.length).toBeLessThan(140);
    expect(Math.max(...large.map((l) => Buffer.byteLength(l)))).toBeLessThan(1_000_000);
  });

  it('should look like real exports: web and mobile shapes, ids, unicode, nested and null values', () => {
    // Prepare
    const events = [...generateDataset({ seed: 3, count: 20_000, start: START, end: END })];
    // Act
    const web = events.filter((e) => e.properties.mp_lib === 'web');
    const mobile = events.filter((e) => typeof e.properties.$model === 'string');
    const text = events.map((e) => JSON.stringify(e)).join('\n');
    // Assess
    expect(new Set(events.map((e) => e.event)).size).toBeGreaterThanOrEqual(15);
    expect(events.some((e) => e.event === '$mp_web_page_view')).toBe(true);
    expect(events.some((e) => e.event === 'Order Completed' && Array.isArray(e.properties.items))).toBe(true);
    expect(web.length).toBeGreaterThan(events.length * 0.4);
    expect(
      web.every(
        (e) => typeof e.properties.$current_url === 'string' && typeof e.properties.$browser_version === 'number',
      ),
    ).toBe(true);
    expect(mobile.length).toBeGreaterThan(events.length * 0.2);
    expect(
      mobile.every(
        (e) => typeof e.properties.$os_version === 'string' && typeof e.properties.$app_version_string === 'string',
      ),
    ).toBe(true);
    expect(mobile.some((e) => typeof e.properties.$screen_width === 'string')).toBe(true);
    expect(events.some((e) => (e.properties.distinct_id as string).startsWith('$device:'))).toBe(true);
    expect(events.some((e) => typeof e.properties.$user_id === 'string')).toBe(true);
    expect(events.some((e) => e.properties.$insert_id === undefined)).toBe(true);
    expect(events.some((e) => e.properties.coupon === null || e.properties.previous_screen === null)).toBe(true);
    expect(events.some((e) => e.properties.utm_campaign === '' || e.properties.referral_code === '')).toBe(true);
    for (const sample of ['🎧', '東京', 'שלום', 'قهوة', '𝓢𝓹𝓮𝓬𝓲𝓪𝓵']) expect(text).toContain(sample);
  });

  it('should not grow the heap while iterating 1,000,000 events', { timeout: 180_000 }, () => {
    // Prepare
    const gc = gcFunction();
    gc();
    const before = process.memoryUsage().heapUsed;
    let count = 0;
    let maxGrowth = 0;
    // Act
    for (const e of generateDataset({ seed: 1, count: 1_000_000, start: START, end: END, duplicateFraction: 0 })) {
      if (e.event.length > 0) count++;
      if (count % 250_000 === 0) {
        gc();
        maxGrowth = Math.max(maxGrowth, process.memoryUsage().heapUsed - before);
      }
    }
    // Assess: the profile tables (bounded, shared per seed) are the only retained state
    expect(count).toBe(1_000_000);
    expect(maxGrowth).toBeLessThan(25 * 1024 * 1024);
  });

  it('should give the index range that contains every line processed in a time range', () => {
    // Prepare
    const spec: DatasetSpec = { seed: 8, count: 30_000, start: START, end: END };
    const lo = START + 20 * H;
    const hi = START + 21 * H;
    const all = [...generateDataset(spec)].filter((e) => {
      const p = e.properties.mp_processing_time_ms as number;
      return p >= lo && p < hi;
    });
    // Act
    const range = indexRangeFor(spec, lo, hi);
    const cursor = new DatasetCursor(spec, range);
    const found: string[] = [];
    while (cursor.next())
      if (cursor.processingMs >= lo && cursor.processingMs < hi) found.push(JSON.stringify(cursor.event()));
    // Assess
    expect(range.to - range.from).toBeLessThan(spec.count / 2);
    expect(found.sort()).toEqual(all.map((e) => JSON.stringify(e)).sort());
  });
});

describe('trueEventTimeMs', () => {
  it('should undo the legacy local shift across the America/New_York spring-forward change', () => {
    // Prepare: the same dataset as a UTC project and as a legacy New York project, around 2024-03-10 02:00 local
    const base: DatasetSpec = {
      seed: 17,
      count: 20_000,
      start: Date.UTC(2024, 2, 9, 12),
      end: Date.UTC(2024, 2, 11, 12),
    };
    const zone = { projectTimezone: 'America/New_York', legacyLocalTime: true };
    const utc = [...generateDataset(base)];
    const legacy = [...generateDataset({ ...base, ...zone })];
    // Act
    const shifts = new Set<number>();
    let mismatches = 0;
    for (let i = 0; i < utc.length; i++) {
      const u = utc[i] as MixpanelEvent;
      const l = legacy[i] as MixpanelEvent;
      const trueMs = (u.properties.time as number) * 1000;
      if (trueEventTimeMs(l, zone) !== trueMs) mismatches++;
      shifts.add((l.properties.time as number) - (u.properties.time as number));
      // Assess: before 07:00 UTC the offset is EST (-5 h), after it EDT (-4 h)
      const expected = trueMs < Date.UTC(2024, 2, 10, 7) ? -5 * 3600 : -4 * 3600;
      if ((l.properties.time as number) - (u.properties.time as number) !== expected) mismatches++;
    }
    expect(mismatches).toBe(0);
    expect([...shifts].sort()).toEqual([-5 * 3600, -4 * 3600].sort());
    expect(trueEventTimeMs(utc[0] as MixpanelEvent, {})).toBe((utc[0]?.properties.time as number) * 1000);
  });

  it('should read the instants on both sides of the change and of a fall-back overlap', () => {
    // Prepare
    const ny = { projectTimezone: 'America/New_York', legacyLocalTime: true };
    const at = (localIso: string, proc?: number): MixpanelEvent => ({
      event: 'x',
      properties: {
        time: Date.parse(`${localIso}Z`) / 1000,
        ...(proc === undefined ? {} : { mp_processing_time_ms: proc }),
      },
    });
    // Act / Assess: 01:59:59 EST and 03:00:00 EDT are one second apart
    expect(trueEventTimeMs(at('2024-03-10T01:59:59'), ny)).toBe(Date.parse('2024-03-10T06:59:59Z'));
    expect(trueEventTimeMs(at('2024-03-10T03:00:00'), ny)).toBe(Date.parse('2024-03-10T07:00:00Z'));
    // 2024-11-03 01:30 happens twice; the processing time tells which one
    expect(trueEventTimeMs(at('2024-11-03T01:30:00', Date.parse('2024-11-03T05:30:05Z')), ny)).toBe(
      Date.parse('2024-11-03T05:30:00Z'),
    );
    expect(trueEventTimeMs(at('2024-11-03T01:30:00', Date.parse('2024-11-03T06:30:05Z')), ny)).toBe(
      Date.parse('2024-11-03T06:30:00Z'),
    );
    // `time_in_ms` values are read as ms
    expect(trueEventTimeMs({ event: 'x', properties: { time: Date.parse('2024-07-01T12:00:00.250Z') } }, {})).toBe(
      Date.parse('2024-07-01T12:00:00.250Z'),
    );
  });
});
