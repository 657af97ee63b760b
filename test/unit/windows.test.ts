import { describe, expect, it } from 'vitest';
import { mergeIntervals, uncovered } from '#windows/intervals';
import {
  type PlanSettings,
  WindowRangeError,
  exportQuery,
  lastSettledEnd,
  makeWindow,
  parseWindowId,
  planManual,
  planScheduled,
  windowId,
} from '#windows/plan';
import { querySpanMinutes } from '#windows/size';
import { dayString, startOfLocalDay, startOfNextDay } from '#common/zone-time';

const H = 3_600_000;
const t = (iso: string): number => Date.parse(iso);
const settings = (over: Partial<PlanSettings> = {}): PlanSettings => ({
  minutes: 60,
  settleMinutes: 30,
  lookbackDays: 5,
  maxWindowsPerRun: 24,
  dateZone: 'UTC',
  ...over,
});

describe('window ids', () => {
  it('should format ids in compact UTC and parse them back', () => {
    const id = windowId(t('2024-05-01T10:00:00Z'), t('2024-05-01T11:00:00Z'));
    expect(id).toBe('20240501T100000Z_20240501T110000Z');
    expect(parseWindowId(id)).toEqual({ from: t('2024-05-01T10:00:00Z'), to: t('2024-05-01T11:00:00Z') });
  });

  it('should refuse malformed ids with what is expected', () => {
    expect(() => parseWindowId('2024-05-01')).toThrow(/compact UTC/);
    expect(() => parseWindowId('20240501T110000Z_20240501T100000Z')).toThrow(WindowRangeError);
  });
});

describe('scheduled planning (processing-time)', () => {
  it('should export the previous whole window that ended SETTLE_MINUTES before the scheduled time', () => {
    // Prepare: 12:10 with 30 min settle → settled up to 11:40 → last whole hour ends 11:00
    const plan = planScheduled(t('2024-05-01T12:10:00Z'), 'processing-time', settings());
    expect(plan.windows.map((w) => w.id)).toEqual(['20240501T100000Z_20240501T110000Z']);
    expect(plan.remaining).toEqual([]);
  });

  it('should export the window that just settled when the schedule fires after the settle time', () => {
    const plan = planScheduled(t('2024-05-01T12:31:00Z'), 'processing-time', settings());
    expect(plan.windows.map((w) => w.id)).toEqual(['20240501T110000Z_20240501T120000Z']);
  });

  it('should plan nothing when the checkpoint is already at the settled end (duplicate delivery)', () => {
    const plan = planScheduled(t('2024-05-01T12:31:00Z'), 'processing-time', settings(), t('2024-05-01T12:00:00Z'));
    expect(plan.windows).toEqual([]);
  });

  it('should catch up every window missing since the checkpoint, coalesced up to the span, oldest first', () => {
    // Prepare: checkpoint 3 hours behind, span of 60 minutes (no coalescing)
    const plan = planScheduled(
      t('2024-05-01T12:31:00Z'),
      'processing-time',
      settings({ maxSpanMinutes: 60 }),
      t('2024-05-01T09:00:00Z'),
    );
    expect(plan.windows.map((w) => [w.from, w.to])).toEqual([
      [t('2024-05-01T09:00:00Z'), t('2024-05-01T10:00:00Z')],
      [t('2024-05-01T10:00:00Z'), t('2024-05-01T11:00:00Z')],
      [t('2024-05-01T11:00:00Z'), t('2024-05-01T12:00:00Z')],
    ]);
  });

  it('should coalesce a long catch-up into day-aligned spans and bound the windows per run', () => {
    const plan = planScheduled(
      t('2024-05-10T00:31:00Z'),
      'processing-time',
      settings({ maxWindowsPerRun: 3 }),
      t('2024-05-01T18:00:00Z'),
    );
    expect(plan.windows.map((w) => w.id)).toEqual([
      '20240501T180000Z_20240502T000000Z',
      '20240502T000000Z_20240503T000000Z',
      '20240503T000000Z_20240504T000000Z',
    ]);
    expect(plan.remaining).toHaveLength(6);
    expect(plan.remaining.at(-1)!.to).toBe(t('2024-05-10T00:00:00Z'));
  });

  it('should skip ranges a manual run already committed beyond the checkpoint', () => {
    const committed = [[t('2024-05-01T10:00:00Z'), t('2024-05-01T11:00:00Z')]] as const;
    const plan = planScheduled(
      t('2024-05-01T12:31:00Z'),
      'processing-time',
      settings({ maxSpanMinutes: 60 }),
      t('2024-05-01T09:00:00Z'),
      committed,
    );
    expect(plan.windows.map((w) => w.id)).toEqual([
      '20240501T090000Z_20240501T100000Z',
      '20240501T110000Z_20240501T120000Z',
    ]);
  });

  it('should size spans from the observed event rate to stay near a million events per query', () => {
    const span = (eventsPerMinute: number | undefined, gridMinutes: number) =>
      querySpanMinutes({
        mode: 'processing-time',
        gridMinutes,
        dateZone: 'UTC',
        maxEvents: 1_000_000,
        ...(eventsPerMinute !== undefined ? { eventsPerMinute } : {}),
      });
    expect(span(undefined, 60)).toBe(1440);
    expect(span(10_000, 60)).toBe(60); // 600k per hour → hour windows
    expect(span(1_000, 60)).toBe(960); // 60k per hour → 16 h spans
    expect(span(50_000, 15)).toBe(15); // 750k per grid window: the grid
  });
});

describe('scheduled planning (event-time)', () => {
  it('should export whole days of the date zone, the previous settled day', () => {
    const plan = planScheduled(t('2024-05-02T00:45:00Z'), 'event-time', settings());
    expect(plan.windows.map((w) => w.id)).toEqual(['20240501T000000Z_20240502T000000Z']);
  });

  it('should export 23-hour and 25-hour days across DST changes in a legacy project zone', () => {
    // Prepare: America/New_York springs forward on 2024-03-10 and falls back on 2024-11-03
    const s = settings({ dateZone: 'America/New_York' });
    const spring = planScheduled(t('2024-03-11T06:00:00Z'), 'event-time', s);
    const fall = planScheduled(t('2024-11-04T06:00:00Z'), 'event-time', s);
    expect(spring.windows).toHaveLength(1);
    expect(spring.windows[0]!.from).toBe(t('2024-03-10T05:00:00Z'));
    expect(spring.windows[0]!.to - spring.windows[0]!.from).toBe(23 * H);
    expect(fall.windows[0]!.from).toBe(t('2024-11-03T04:00:00Z'));
    expect(fall.windows[0]!.to - fall.windows[0]!.from).toBe(25 * H);
    expect(exportQuery(spring.windows[0]!, s, t('2024-03-11T06:00:00Z'))).toEqual({
      from_date: '2024-03-10',
      to_date: '2024-03-10',
    });
  });
});

describe('manual planning', () => {
  const now = t('2024-06-01T00:00:00Z');

  it('should align a processing-time range outward to the grid and split it into day-aligned windows', () => {
    const plan = planManual(
      { from: t('2024-05-01T10:20:00Z'), to: t('2024-05-02T01:10:00Z'), mode: 'processing-time' },
      settings(),
      now,
    );
    expect(plan.from).toBe(t('2024-05-01T10:00:00Z'));
    expect(plan.to).toBe(t('2024-05-02T02:00:00Z'));
    expect(plan.windows.map((w) => w.id)).toEqual([
      '20240501T100000Z_20240502T000000Z',
      '20240502T000000Z_20240502T020000Z',
    ]);
  });

  it('should split an event-time backfill into whole days', () => {
    const plan = planManual(
      { from: t('2024-05-01T00:00:00Z'), to: t('2024-05-04T00:00:00Z'), mode: 'event-time' },
      settings(),
      now,
    );
    expect(plan.windows.map((w) => w.id)).toEqual([
      '20240501T000000Z_20240502T000000Z',
      '20240502T000000Z_20240503T000000Z',
      '20240503T000000Z_20240504T000000Z',
    ]);
  });

  it('should refuse a range ending after the last settled window, saying which end is allowed', () => {
    expect(() =>
      planManual(
        { from: t('2024-05-31T20:00:00Z'), to: t('2024-06-01T00:00:00Z'), mode: 'processing-time' },
        settings(),
        now,
      ),
    ).toThrow(/later than the last settled processing-time window end 2024-05-31T23:00:00.000Z/);
  });

  it('should refuse from ≥ to and ranges beyond the maximum', () => {
    expect(() => planManual({ from: now - H, to: now - 2 * H, mode: 'event-time' }, settings(), now)).toThrow(
      /must be before/,
    );
    expect(() =>
      planManual(
        { from: t('2020-01-01T00:00:00Z'), to: t('2024-01-01T00:00:00Z'), mode: 'event-time' },
        settings(),
        now,
      ),
    ).toThrow(/more than 400 days/);
  });
});

describe('export queries', () => {
  it('should scan from the lookback day to the window day with a where on mp_processing_time_ms', () => {
    const w = makeWindow(t('2024-05-10T10:00:00Z'), t('2024-05-10T11:00:00Z'), 'processing-time');
    expect(exportQuery(w, settings(), t('2024-05-10T12:00:00Z'))).toEqual({
      from_date: '2024-05-05',
      to_date: '2024-05-10',
      where: `number(properties["mp_processing_time_ms"]) >= ${w.from} and number(properties["mp_processing_time_ms"]) < ${w.to}`,
    });
  });

  it('should never ask for a to_date later than today in the date zone', () => {
    // Prepare: window ends at midnight UTC → day(to) is tomorrow while it is still today
    const w = makeWindow(t('2024-05-10T23:00:00Z'), t('2024-05-11T00:00:00Z'), 'processing-time');
    expect(exportQuery(w, settings(), t('2024-05-10T23:59:00Z')).to_date).toBe('2024-05-10');
    expect(exportQuery(w, settings(), t('2024-05-11T00:40:00Z')).to_date).toBe('2024-05-11');
  });

  it('should compute dates in the legacy project zone', () => {
    const w = makeWindow(t('2024-05-10T02:00:00Z'), t('2024-05-10T03:00:00Z'), 'processing-time');
    const q = exportQuery(w, settings({ dateZone: 'America/Los_Angeles' }), t('2024-05-10T04:00:00Z'));
    expect(q.to_date).toBe('2024-05-09'); // 03:00Z is 20:00 the day before in Los Angeles
  });

  it('should keep event-time windows disjoint from the processing-time pipeline', () => {
    const w = makeWindow(t('2024-05-01T00:00:00Z'), t('2024-05-02T00:00:00Z'), 'event-time');
    expect(exportQuery(w, settings(), t('2024-06-01T00:00:00Z'), t('2024-05-20T00:00:00Z')).where).toBe(
      `number(properties["mp_processing_time_ms"]) < ${t('2024-05-20T00:00:00Z')}`,
    );
  });
});

describe('calendar helpers', () => {
  it('should find local midnights around DST and in half-hour zones', () => {
    expect(startOfLocalDay('2024-03-10', 'America/New_York')).toBe(t('2024-03-10T05:00:00Z'));
    expect(startOfLocalDay('2024-03-11', 'America/New_York')).toBe(t('2024-03-11T04:00:00Z'));
    expect(startOfLocalDay('2024-05-01', 'Asia/Kolkata')).toBe(t('2024-04-30T18:30:00Z'));
    expect(startOfNextDay(t('2024-11-03T04:00:00Z'), 'America/New_York')).toBe(t('2024-11-04T05:00:00Z'));
    expect(dayString(t('2024-05-01T23:30:00Z'), 'Asia/Kolkata')).toBe('2024-05-02');
  });

  it('should start a day whose midnight is skipped at the first instant after the gap', () => {
    // America/Santiago moves from 00:00 to 01:00 on 2024-09-08: that day has no midnight.
    const start = startOfLocalDay('2024-09-08', 'America/Santiago');
    expect(dayString(start, 'America/Santiago')).toBe('2024-09-08');
    expect(dayString(start - 1, 'America/Santiago')).toBe('2024-09-07');
    expect(startOfNextDay(startOfLocalDay('2024-09-07', 'America/Santiago'), 'America/Santiago')).toBe(start);
  });

  it('should compute lastSettledEnd on the grid', () => {
    expect(lastSettledEnd(t('2024-05-01T12:29:59Z'), 'processing-time', settings({ minutes: 15 }))).toBe(
      t('2024-05-01T11:45:00Z'),
    );
  });
});

describe('intervals', () => {
  it('should merge touching intervals and list the uncovered parts', () => {
    const merged = mergeIntervals([
      [5, 7],
      [0, 2],
      [2, 3],
    ]);
    expect(merged).toEqual([
      [0, 3],
      [5, 7],
    ]);
    expect(uncovered(1, 10, merged)).toEqual([
      [3, 5],
      [7, 10],
    ]);
    expect(uncovered(0, 3, merged)).toEqual([]);
  });
});
