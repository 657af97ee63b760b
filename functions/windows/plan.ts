/**
 * Window planning: which half-open UTC intervals `[from, to)` a run exports, and the Mixpanel query for each.
 * Pure: the clock is an argument. See docs/architecture.md#windows-contract.
 *
 * - processing-time windows select events by `mp_processing_time_ms` and lie on a UTC grid of WINDOW_MINUTES;
 *   catch-up coalesces consecutive missing grid windows into spans of at most `maxSpanMinutes` to save queries, and a
 *   span shorter than the grid (a busy project) splits grid windows.
 * - event-time windows are days of the date zone (the zone Mixpanel reads `from_date`/`to_date` in), or sub-day
 *   windows of `maxSpanMinutes` counted from the day's start, selected by a `where` on the event time.
 * `maxSpanMinutes` comes from size.ts (observed rate, events ceiling, size hint).
 */
import type { WindowMode } from '#common/config';
import { ConnectorError } from '#common/errors';
import { type Interval, uncovered } from './intervals.ts';
import { dayString, startOfDayContaining, startOfNextDay, wallClockMs } from '#common/zone-time';
import { compactIso, parseCompactIso } from './window-id.ts';

export interface Window {
  readonly id: string;
  readonly from: number;
  readonly to: number;
  readonly mode: WindowMode;
}

export interface PlanSettings {
  readonly minutes: number;
  readonly settleMinutes: number;
  readonly lookbackDays: number;
  readonly maxWindowsPerRun: number;
  /** The zone Mixpanel reads dates in: UTC, or the project zone for legacy projects. */
  readonly dateZone: string;
  /**
   * Longest window one query may cover, for the mode being planned (size.ts `querySpanMinutes`): processing time
   * coalesces or splits grid windows with it, event time splits days with it. @default 1440
   */
  readonly maxSpanMinutes?: number;
  /**
   * Set when no event rate is known yet (size.ts `probeSpanMinutes`): the run's first window is cut to at most this
   * long, a probe whose events give the rate that sizes the windows after it (`withProbe`).
   */
  readonly probeMinutes?: number;
}

export interface Plan {
  readonly windows: Window[];
  /** Windows still to do after this run (bounded per run; the next run continues). */
  readonly remaining: Window[];
}

export interface ExportQuery {
  readonly from_date: string;
  readonly to_date: string;
  readonly where?: string;
}

const MINUTE = 60_000;
const DAY = 86_400_000;
/** A manual range longer than this is refused: Mixpanel keeps raw events for years, but a backfill this long is split by the operator. */
export const MAX_MANUAL_RANGE_DAYS = 400;

export class WindowRangeError extends ConnectorError {
  constructor(message: string) {
    super('input', message);
    this.name = 'WindowRangeError';
  }
}

export function windowId(from: number, to: number): string {
  return `${compactIso(from)}_${compactIso(to)}`;
}

export function makeWindow(from: number, to: number, mode: WindowMode): Window {
  return { id: windowId(from, to), from, to, mode };
}

/** Parses a window id back into its bounds; throws on a malformed id. */
export function parseWindowId(id: string): { from: number; to: number } {
  const [a, b, extra] = id.split('_');
  const from = parseCompactIso(a ?? '');
  const to = parseCompactIso(b ?? '');
  if (extra !== undefined || Number.isNaN(from) || Number.isNaN(to) || from >= to) {
    throw new WindowRangeError(
      `"${id}" is not a window id: expected {from}_{to} in compact UTC, e.g. 20240101T000000Z_20240101T010000Z`,
    );
  }
  return { from, to };
}

const floorTo = (ms: number, step: number): number => Math.floor(ms / step) * step;
const ceilTo = (ms: number, step: number): number => Math.ceil(ms / step) * step;

/** The end of the last window that is settled at `nowMs` (processing-time: grid; event-time: start of a day). */
export function lastSettledEnd(nowMs: number, mode: WindowMode, s: PlanSettings): number {
  const settled = nowMs - s.settleMinutes * MINUTE;
  return mode === 'processing-time' ? floorTo(settled, s.minutes * MINUTE) : startOfDayContaining(settled, s.dateZone);
}

/** Splits `[from, to)` into windows of the mode (grid-aligned bounds expected). */
export function splitRange(from: number, to: number, mode: WindowMode, s: PlanSettings): Window[] {
  const out: Window[] = [];
  const maxSpan = (s.maxSpanMinutes ?? 1440) * MINUTE;
  if (mode === 'processing-time') {
    const step = s.minutes * MINUTE;
    // A span under the grid divides it (size.ts); otherwise it is a whole number of grid windows.
    const span = maxSpan < step ? maxSpan : floorTo(maxSpan, step);
    for (let a = from; a < to; ) {
      // Spans end on multiples of `span` so that re-planning the same range yields the same windows.
      const b = Math.min(to, floorTo(a, span) + span);
      out.push(makeWindow(a, b, mode));
      a = b;
    }
  } else {
    for (let a = from; a < to; ) {
      const dayStart = startOfDayContaining(a, s.dateZone);
      const dayEnd = startOfNextDay(dayStart, s.dateZone);
      // Sub-day windows are counted from the day's start (the last one of a 25-hour day is shorter), so a range that
      // starts inside a day (a checkpoint after some of its windows) continues on the same boundaries.
      const next = maxSpan >= DAY ? dayEnd : dayStart + (Math.floor((a - dayStart) / maxSpan) + 1) * maxSpan;
      const b = Math.min(to, dayEnd, next);
      out.push(makeWindow(a, b, mode));
      a = b;
    }
  }
  return out;
}

/**
 * `windows` with the first one cut to a probe of `s.probeMinutes` (on the same boundaries as `splitRange` would cut
 * it: multiples of the span, or counted from the day's start), followed by the rest of that window at the planned
 * size. Unchanged without `probeMinutes` or when the first window is no longer than the probe.
 */
export function withProbe(windows: readonly Window[], s: PlanSettings): Window[] {
  const [first, ...rest] = windows;
  if (first === undefined || s.probeMinutes === undefined) return [...windows];
  const [probe] = splitRange(first.from, first.to, first.mode, { ...s, maxSpanMinutes: s.probeMinutes });
  if (probe === undefined || probe.to === first.to) return [...windows];
  return [probe, ...splitRange(probe.to, first.to, first.mode, s), ...rest];
}

function bounded(windows: Window[], s: PlanSettings): Plan {
  return { windows: windows.slice(0, s.maxWindowsPerRun), remaining: windows.slice(s.maxWindowsPerRun) };
}

/**
 * The scheduled run: the previous window, plus every window missing since the checkpoint (catch-up), oldest first,
 * bounded per run.
 * @param checkpointTo end of the last committed window of this mode, if any
 */
export function planScheduled(
  scheduledMs: number,
  mode: WindowMode,
  s: PlanSettings,
  checkpointTo?: number,
  committed: readonly Interval[] = [],
): Plan {
  const end = lastSettledEnd(scheduledMs, mode, s);
  const previousStart =
    mode === 'processing-time' ? end - s.minutes * MINUTE : startOfDayContaining(end - 1, s.dateZone);
  const start = checkpointTo ?? previousStart;
  if (start >= end) return { windows: [], remaining: [] };
  // Windows a manual run already committed beyond the checkpoint are not exported again.
  const windows = uncovered(start, end, committed).flatMap(([a, b]) => splitRange(a, b, mode, s));
  return bounded(windows, s);
}

export interface ManualRange {
  readonly from: number;
  readonly to: number;
  readonly mode: WindowMode;
}

/**
 * A manual range (backfill): aligned outward to the mode's grid, checked, and split into windows.
 * Throws `WindowRangeError` with what to change when the range is not exportable.
 */
export function planManual(range: ManualRange, s: PlanSettings, nowMs: number): Plan & { from: number; to: number } {
  if (!(range.from < range.to))
    throw new WindowRangeError(`"from" (${iso(range.from)}) must be before "to" (${iso(range.to)})`);
  if (range.to - range.from > MAX_MANUAL_RANGE_DAYS * DAY) {
    throw new WindowRangeError(
      `the range covers more than ${MAX_MANUAL_RANGE_DAYS} days: split it into several invocations`,
    );
  }
  let from: number;
  let to: number;
  if (range.mode === 'processing-time') {
    const step = s.minutes * MINUTE;
    from = floorTo(range.from, step);
    to = ceilTo(range.to, step);
  } else {
    from = startOfDayContaining(range.from, s.dateZone);
    const lastDay = startOfDayContaining(range.to - 1, s.dateZone);
    to = startOfNextDay(lastDay, s.dateZone);
  }
  const latest = lastSettledEnd(nowMs, range.mode, s);
  if (to > latest) {
    throw new WindowRangeError(
      `"to" (${iso(to)} after alignment) is later than the last settled ${range.mode} window end ${iso(latest)} ` +
        `(now minus SETTLE_MINUTES=${s.settleMinutes}${range.mode === 'event-time' ? ', whole days only' : ''}): choose an earlier "to"`,
    );
  }
  return { from, to, ...bounded(splitRange(from, to, range.mode, s), s) };
}

/**
 * The export query for a window (docs/architecture.md#two-modes): processing-time scans
 * `day(from − LOOKBACK_DAYS)` … `day(to)`, never later than today in the date zone, with a `where` on
 * `mp_processing_time_ms` — the filter Mixpanel's own hot-shard guide uses (mixpanel/docs
 * pages/docs/tracking-best-practices/hot-shard-limits.md). Event-time selects its day exactly; a sub-day window adds
 * a `where` on the event's `time` (epoch seconds as the export returns it, wall-clock seconds in legacy projects) with
 * only the property access, `number()` typecast, comparisons and `and` of the segmentation expression grammar
 * (mixpanel/docs reference/segmentation-expressions.mdx). `processingOrigin` (the first processing-time window's
 * start) keeps the two modes disjoint.
 */
export function exportQuery(w: Window, s: PlanSettings, nowMs: number, processingOrigin?: number): ExportQuery {
  const today = dayString(nowMs, s.dateZone);
  if (w.mode === 'processing-time') {
    const toDay = dayString(w.to, s.dateZone);
    const fromDay = dayString(w.from - s.lookbackDays * DAY, s.dateZone);
    const p = 'number(properties["mp_processing_time_ms"])';
    return {
      from_date: fromDay,
      to_date: toDay > today ? today : toDay,
      where: `${p} >= ${w.from} and ${p} < ${w.to}`,
    };
  }
  const days = { from_date: dayString(w.from, s.dateZone), to_date: dayString(w.to - 1, s.dateZone) };
  const filters: string[] = [];
  if (!isWholeDays(w, s.dateZone)) {
    const t = 'number(properties["time"])';
    const sec = (ms: number): number => Math.floor(wallClockMs(ms, s.dateZone) / 1000);
    filters.push(`${t} >= ${sec(w.from)}`, `${t} < ${sec(w.to)}`);
  }
  if (processingOrigin !== undefined) filters.push(`number(properties["mp_processing_time_ms"]) < ${processingOrigin}`);
  return filters.length === 0 ? days : { ...days, where: filters.join(' and ') };
}

/** Whether an event-time window is whole days of the date zone (no `where` on the event time needed). */
export function isWholeDays(w: Pick<Window, 'from' | 'to'>, dateZone: string): boolean {
  return startOfDayContaining(w.from, dateZone) === w.from && startOfDayContaining(w.to, dateZone) === w.to;
}

/** Whether a raw event belongs to the window by the mode's own clock (processing-time only; event-time is exact). */
export function inWindow(w: Window, processingTimeMs: unknown): boolean {
  if (w.mode !== 'processing-time') return true;
  return typeof processingTimeMs === 'number' && processingTimeMs >= w.from && processingTimeMs < w.to;
}

const iso = (ms: number): string => new Date(ms).toISOString();
