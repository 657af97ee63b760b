/**
 * Windows sized to fit (functions/windows/size.ts and the planner): the observed rate, MAX_EVENTS_PER_EXPORT and the
 * size hint choose the span; event-time days split into sub-day windows selected by a `where` on the event time.
 */
import { describe, expect, it } from 'vitest';
import { type Checkpoint, commitWindow, withSizeHint } from '#staging/state';
import type { MixpanelConfig, WindowConfig } from '#common/config';
import { planManualJobs, planSettings, resizeAfterProbe, sizingOf, withProbeJob } from '#export/plan-jobs';
import { type PlanSettings, exportQuery, parseWindowId, planManual, planScheduled, splitRange } from '#windows/plan';
import { PROBE_MINUTES, activeHint, probeSpanMinutes, querySpanMinutes, smallerSpan } from '#windows/size';
import { wallClockMs } from '#common/zone-time';

const H = 3_600_000;
const MIN = 60_000;
const t = (iso: string): number => Date.parse(iso);
const now = t('2024-06-01T00:00:00Z');
const settings = (over: Partial<PlanSettings> = {}): PlanSettings => ({
  minutes: 60,
  settleMinutes: 30,
  lookbackDays: 5,
  maxWindowsPerRun: 24,
  dateZone: 'UTC',
  ...over,
});
const mixpanel = (over: Partial<MixpanelConfig> = {}): MixpanelConfig => ({
  projectId: '1',
  region: 'us',
  apiBaseUrl: 'http://mixpanel',
  credentials: { username: 'u', secret: 's' },
  projectTimezone: 'UTC',
  legacyLocalTime: false,
  ...over,
});
const windows = (over: Partial<WindowConfig> = {}): WindowConfig => ({
  minutes: 60,
  mode: 'event-time',
  settleMinutes: 30,
  lookbackDays: 5,
  maxWindowsPerRun: 24,
  queriesPerHour: 45,
  maxEventsPerExport: 1_000_000,
  ...over,
});
const EMPTY: Checkpoint = {
  'processing-time': { committed: [], pending: [] },
  'event-time': { committed: [], pending: [] },
};
const day = { from: t('2024-05-01T00:00:00Z'), to: t('2024-05-02T00:00:00Z'), mode: 'event-time' as const };

describe('event-time days sized by the observed rate', () => {
  it('should split a day whose observed rate is too high into sub-day windows that tile it', () => {
    // Prepare: a committed day of 7.2 M events (5,000 a minute) under a ceiling of a million per query
    const checkpoint = commitWindow(EMPTY, 'event-time', t('2024-04-30T00:00:00Z'), day.from, 7_200_000);
    const s = planSettings(mixpanel(), windows(), 'event-time', sizingOf(checkpoint, 'event-time', now));

    // Act
    const plan = planManual(day, s, now);

    // Assess: 3-hour windows (the longest divisor of a day under 200 minutes), end to end, ids unique and parseable
    expect(s.maxSpanMinutes).toBe(180);
    expect(plan.windows).toHaveLength(8);
    expect(plan.windows[0]!.from).toBe(day.from);
    expect(plan.windows.at(-1)!.to).toBe(day.to);
    for (const [i, w] of plan.windows.entries()) {
      expect(w.to - w.from).toBe(3 * H);
      if (i > 0) expect(w.from).toBe(plan.windows[i - 1]!.to);
      expect(parseWindowId(w.id)).toEqual({ from: w.from, to: w.to });
    }
    expect(new Set(plan.windows.map((w) => w.id)).size).toBe(8);
    // A sub-day id never equals the whole day's
    expect(plan.windows.map((w) => w.id)).not.toContain('20240501T000000Z_20240502T000000Z');
  });

  it('should keep a quiet day whole, with no where on the event time', () => {
    const checkpoint = commitWindow(EMPTY, 'event-time', t('2024-04-30T00:00:00Z'), day.from, 500_000);
    const s = planSettings(mixpanel(), windows(), 'event-time', sizingOf(checkpoint, 'event-time', now));
    const plan = planManual(day, s, now);
    expect(plan.windows.map((w) => w.id)).toEqual(['20240501T000000Z_20240502T000000Z']);
    expect(exportQuery(plan.windows[0]!, s, now)).toEqual({ from_date: '2024-05-01', to_date: '2024-05-01' });
  });

  it('should select a sub-day window with a half-open where on the event time, next to the origin filter', () => {
    const s = settings({ maxSpanMinutes: 360 });
    const [, second] = planManual(day, s, now).windows;
    const from = second!.from / 1000;
    const to = second!.to / 1000;
    expect(exportQuery(second!, s, now)).toEqual({
      from_date: '2024-05-01',
      to_date: '2024-05-01',
      where: `number(properties["time"]) >= ${from} and number(properties["time"]) < ${to}`,
    });
    expect(exportQuery(second!, s, now, 42)?.where).toBe(
      `number(properties["time"]) >= ${from} and number(properties["time"]) < ${to} and ` +
        'number(properties["mp_processing_time_ms"]) < 42',
    );
  });

  it('should use the processing-time rate when the event-time mode has none yet', () => {
    const checkpoint = commitWindow(EMPTY, 'processing-time', day.from - H, day.from, 600_000);
    expect(sizingOf(checkpoint, 'event-time', now)).toEqual({ eventsPerMinute: 10_000 });
    expect(planSettings(mixpanel(), windows(), 'event-time', { eventsPerMinute: 10_000 }).maxSpanMinutes).toBe(96);
  });

  it('should continue a day started part way on the same sub-day boundaries', () => {
    const s = settings({ maxSpanMinutes: 180 });
    const ws = splitRange(t('2024-05-01T10:00:00Z'), day.to, 'event-time', s);
    expect(ws.map((w) => new Date(w.from).toISOString().slice(11, 16))).toEqual([
      '10:00',
      '12:00',
      '15:00',
      '18:00',
      '21:00',
    ]);
  });

  it("should keep a legacy project's where bounds in order across the repeated hour (windows ≥ 1 h)", () => {
    // Prepare: New York falls back on 2024-11-03 (a 25-hour day); legacy projects store wall-clock time
    const zone = 'America/New_York';
    const span = querySpanMinutes({
      mode: 'event-time',
      gridMinutes: 60,
      dateZone: zone,
      maxEvents: 1_000_000,
      eventsPerMinute: 1_000_000,
    });
    const s = settings({ dateZone: zone, maxSpanMinutes: span, maxWindowsPerRun: 100 });
    const plan = planManual(
      { from: t('2024-11-03T04:00:00Z'), to: t('2024-11-04T05:00:00Z'), mode: 'event-time' },
      s,
      t('2024-12-01T00:00:00Z'),
    );

    // Assess: hour windows; each where starts where the previous one ended, never going back
    expect(span).toBe(60);
    expect(plan.windows).toHaveLength(25);
    const bounds = plan.windows.map((w) => {
      const m = /time"\]\) >= (\d+) and number\(properties\["time"\]\) < (\d+)/.exec(
        exportQuery(w, s, t('2024-12-01T00:00:00Z')).where ?? '',
      );
      return [Number(m?.[1]), Number(m?.[2])] as const;
    });
    expect(bounds[0]![0]).toBe(Date.UTC(2024, 10, 3) / 1000);
    expect(bounds.at(-1)![1]).toBe(Date.UTC(2024, 10, 4) / 1000);
    for (let i = 1; i < bounds.length; i++) {
      expect(bounds[i]![0]).toBe(bounds[i - 1]![1]);
      expect(bounds[i]![1]).toBeGreaterThanOrEqual(bounds[i]![0]);
    }
    expect(wallClockMs(t('2024-11-03T06:00:00Z'), zone)).toBe(t('2024-11-03T01:00:00Z'));
  });
});

describe('processing-time windows sized by the observed rate', () => {
  it('should split a grid window below the grid when one grid window holds more than the ceiling', () => {
    // Prepare: 40,000 events a minute is 2.4 M an hour
    const s = planSettings(mixpanel(), windows({ mode: 'processing-time' }), 'processing-time', {
      eventsPerMinute: 40_000,
    });
    const plan = planScheduled(t('2024-05-01T12:31:00Z'), 'processing-time', s);
    expect(s.maxSpanMinutes).toBe(20);
    expect(plan.windows.map((w) => w.id)).toEqual([
      '20240501T110000Z_20240501T112000Z',
      '20240501T112000Z_20240501T114000Z',
      '20240501T114000Z_20240501T120000Z',
    ]);
  });

  it('should bound a backfill by the ceiling too', () => {
    const s = planSettings(mixpanel(), windows({ mode: 'processing-time' }), 'processing-time', {
      eventsPerMinute: 100,
    });
    const { jobs } = planManualJobs(
      { from: t('2024-05-01T00:00:00Z'), to: t('2024-05-03T00:00:00Z'), mode: 'processing-time', force: false },
      {
        ...s,
        maxSpanMinutes: querySpanMinutes({
          mode: 'processing-time',
          gridMinutes: 60,
          dateZone: 'UTC',
          maxEvents: 30_000,
          eventsPerMinute: 100,
        }),
      },
      [],
      now,
    );
    // 300 minutes of 100 events a minute is the ceiling: 5-hour spans (ending on multiples of 5 hours)
    expect(jobs.every((j) => j.window.to - j.window.from <= 300 * MIN)).toBe(true);
    expect(jobs[0]!.window.from).toBe(t('2024-05-01T00:00:00Z'));
    expect(jobs.at(-1)!.window.to).toBe(t('2024-05-03T00:00:00Z'));
  });
});

describe('size hints after a deadline', () => {
  it('should halve a window that ran out of time, down to the shortest span, and then give up', () => {
    const ev = { mode: 'event-time' as const, gridMinutes: 60, dateZone: 'UTC' };
    const pt = { mode: 'processing-time' as const, gridMinutes: 60, dateZone: 'UTC' };
    expect(smallerSpan(1440, ev)).toBe(720);
    expect(smallerSpan(180, ev)).toBe(90);
    expect(smallerSpan(60, pt)).toBe(30);
    expect(smallerSpan(5, pt)).toBeUndefined();
    expect(smallerSpan(60, { ...ev, dateZone: 'Europe/Paris' })).toBeUndefined();
  });

  it('should cap the span while the hint holds, whatever the rate says, and lift it when it expires', () => {
    const hinted = withSizeHint(EMPTY, 'event-time', { maxSpanMinutes: 720, until: now + H, window: 'w' });
    expect(sizingOf(hinted, 'event-time', now)).toEqual({ hintMinutes: 720 });
    expect(planSettings(mixpanel(), windows(), 'event-time', sizingOf(hinted, 'event-time', now)).maxSpanMinutes).toBe(
      720,
    );
    expect(activeHint(hinted['event-time'].sizeHint, now + H)).toBeUndefined();
  });
});

describe('a probe window when no rate is known', () => {
  it('should size the probe at the longest allowed span of at most an hour, within a size hint', () => {
    // Act
    const span = (
      gridMinutes: number,
      mode: 'processing-time' | 'event-time',
      dateZone = 'UTC',
      hintMinutes?: number,
    ) => probeSpanMinutes({ mode, gridMinutes, dateZone, ...(hintMinutes !== undefined ? { hintMinutes } : {}) });

    // Assess: an hour on the usual grids and days; 45 minutes on a 90-minute grid (no span of 60 fits it); the hint
    // caps it; a legacy zone's shortest sub-day span is an hour already
    expect(PROBE_MINUTES).toBe(60);
    expect(span(60, 'processing-time')).toBe(60);
    expect(span(15, 'processing-time')).toBe(60);
    expect(span(90, 'processing-time')).toBe(45);
    expect(span(60, 'event-time')).toBe(60);
    expect(span(60, 'event-time', 'America/New_York')).toBe(60);
    expect(span(60, 'event-time', 'UTC', 30)).toBe(30);
  });

  it('should cut the first day of an event-time backfill to an hour, selected by a where on the event time', () => {
    // Prepare: nothing committed yet
    const s = planSettings(mixpanel(), windows(), 'event-time', sizingOf(EMPTY, 'event-time', now));
    const range = { ...day, to: t('2024-05-04T00:00:00Z') };

    // Act
    const { jobs } = planManualJobs({ ...range, force: false }, s, [], now);
    const probed = withProbeJob(jobs, s);

    // Assess: the probe, then the rest of its day, then whole days; together they tile the range
    expect(s.probeMinutes).toBe(60);
    expect(probed.map((j) => [j.window.id, j.probe === true])).toEqual([
      ['20240501T000000Z_20240501T010000Z', true],
      ['20240501T010000Z_20240502T000000Z', false],
      ['20240502T000000Z_20240503T000000Z', false],
      ['20240503T000000Z_20240504T000000Z', false],
    ]);
    const sec = (iso: string) => t(iso) / 1000;
    expect(exportQuery(probed[0]!.window, s, now).where).toBe(
      `number(properties["time"]) >= ${sec('2024-05-01T00:00:00Z')} and number(properties["time"]) < ${sec('2024-05-01T01:00:00Z')}`,
    );
  });

  it('should plan no probe once a rate is known, and a probe-sized first window is left as it is', () => {
    // Prepare
    const known = commitWindow(EMPTY, 'processing-time', day.from - H, day.from, 600);
    const withRate = planSettings(mixpanel(), windows(), 'processing-time', sizingOf(known, 'processing-time', now));
    const unknown = planSettings(mixpanel(), windows(), 'processing-time', sizingOf(EMPTY, 'processing-time', now));
    const hour = { window: { ...day, id: 'w', to: day.from + H, mode: 'processing-time' as const }, force: false };

    // Act / Assess
    expect(withRate.probeMinutes).toBeUndefined();
    const { jobs } = planManualJobs({ ...day, mode: 'processing-time', force: false }, withRate, [], now);
    expect(withProbeJob(jobs, withRate)).toEqual(jobs);
    expect(withProbeJob([hour], unknown)).toEqual([hour]);
  });

  it("should size and split the windows after the probe from the probe's rate", () => {
    // Prepare: a processing-time backfill of three days with no rate; the probe hour held 120,000 events
    const sizing = sizingOf(EMPTY, 'processing-time', now);
    const s = planSettings(mixpanel(), windows({ mode: 'processing-time' }), 'processing-time', sizing);
    const range = { from: day.from, to: day.from + 72 * H, mode: 'processing-time' as const, force: false };
    const [probe, ...rest] = withProbeJob(planManualJobs(range, s, [], now).jobs, s);

    // Act
    const next = resizeAfterProbe(probe!.window, 120_000, rest, { mixpanel: mixpanel(), windows: windows() }, sizing);

    // Assess: 2,000 events a minute → 8-hour windows under a million events, end to end from the probe's end
    expect(probe!.window.to - probe!.window.from).toBe(H);
    expect(next.sizing.eventsPerMinute).toBeCloseTo(2_000);
    expect(next.settings.maxSpanMinutes).toBe(480);
    expect(next.settings.probeMinutes).toBeUndefined();
    expect(next.jobs[0]!.window.from).toBe(probe!.window.to);
    expect(next.jobs.at(-1)!.window.to).toBe(range.to);
    for (const [a, b] of next.jobs.slice(1).map((j, i) => [next.jobs[i]!, j] as const))
      expect(b.window.from).toBe(a.window.to);
    expect(next.jobs.every((j) => j.window.to - j.window.from <= 8 * H)).toBe(true);
  });
});
