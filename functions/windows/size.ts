/**
 * Window sizing: how long a window one Mixpanel query covers, from the project's observed event rate, the ceiling of
 * events per export (MAX_EVENTS_PER_EXPORT) and a size hint left by a window that ran out of time; with no rate yet,
 * a run's first window is a short probe that measures it.
 * Pure. See docs/architecture.md#windows-contract ("Sizing").
 *
 * Spans are chosen from a fixed set per mode, so that re-planning a range yields the same windows:
 * - processing time: the divisors of WINDOW_MINUTES (sub-grid windows, never under 5 minutes), then the multiples of
 *   WINDOW_MINUTES up to a day (coalesced catch-up and backfills);
 * - event time: the divisors of a day (sub-day windows). Legacy projects store `time` as local wall-clock time, which
 *   repeats an hour when the clocks go back; sub-day windows of at least an hour keep the `where` bounds of a day in
 *   order across that hour (the where of each window then selects a disjoint slice of the day).
 */
import type { WindowMode } from '#common/settings';

const DAY_MINUTES = 1440;
/** Shortest window the planner makes: WINDOW_MINUTES' own minimum. */
export const MIN_SPAN_MINUTES = 5;
/** Shortest sub-day window of a project whose dates are read in a zone with clock changes (legacy local time). */
export const LOCAL_ZONE_MIN_SPAN_MINUTES = 60;
/**
 * Longest probe: the first window of a project (or mode) with no observed rate. An hour, because
 * - its one query costs a minute of Mixpanel's 60 queries an hour (mixpanel/docs pages/docs/other-bits/rate-limits.md),
 *   and the rest of the range then takes the queries its rate needs anyway: a probe adds at most one query to a plan;
 * - a day-long first window of a busy project is one query that may run out of time and be halved again and again
 *   (each attempt a query and up to a Lambda timeout), and it is staged in one partition, as no rate is known;
 * - an hour of a 100 M events/day project is ~4 M events: within one export (the size hint halves it otherwise), and
 *   enough events to measure a rate from; it is also the least sub-day span of legacy local-time projects.
 */
export const PROBE_MINUTES = 60;
/** A size hint (after a window ran out of time) is honoured this long; then the rate alone sizes windows again. */
export const SIZE_HINT_TTL_MS = 86_400_000;

export interface SpanInputs {
  readonly mode: WindowMode;
  /** WINDOW_MINUTES. */
  readonly gridMinutes: number;
  /** The zone Mixpanel reads dates in (UTC, or the legacy project zone). */
  readonly dateZone: string;
}

export interface SizeInputs extends SpanInputs {
  /** Observed events per minute; undefined when nothing was exported yet. */
  readonly eventsPerMinute?: number;
  /** Ceiling of events per query (MAX_EVENTS_PER_EXPORT). */
  readonly maxEvents: number;
  /** Longest span allowed by a size hint, if any. */
  readonly hintMinutes?: number;
}

const divisors = (n: number, min: number): number[] => {
  const out: number[] = [];
  for (let d = min; d <= n; d++) if (n % d === 0) out.push(d);
  return out;
};

/** Every span the planner may use for the mode, ascending. */
export function allowedSpans({ mode, gridMinutes, dateZone }: SpanInputs): number[] {
  if (mode === 'event-time') {
    return divisors(DAY_MINUTES, dateZone === 'UTC' ? MIN_SPAN_MINUTES : LOCAL_ZONE_MIN_SPAN_MINUTES);
  }
  const multiples: number[] = [];
  for (let m = 2 * gridMinutes; m <= DAY_MINUTES; m += gridMinutes) multiples.push(m);
  return [...divisors(gridMinutes, Math.min(MIN_SPAN_MINUTES, gridMinutes)), ...multiples];
}

/**
 * The span (minutes) of the windows to plan: the longest allowed span whose expected events stay within `maxEvents`
 * and within the size hint; the shortest allowed span when even that is expected to hold more; a day when the rate is
 * unknown (processing time: coalesced; event time: whole days, as before sizing existed).
 */
export function querySpanMinutes(i: SizeInputs): number {
  const spans = allowedSpans(i);
  const capped = spans.filter((s) => i.hintMinutes === undefined || s <= i.hintMinutes);
  const candidates = capped.length > 0 ? capped : spans.slice(0, 1);
  const rate = i.eventsPerMinute;
  const fits = candidates.filter((s) => rate === undefined || rate <= 0 || s * rate <= i.maxEvents);
  return fits.length > 0 ? fits[fits.length - 1]! : candidates[0]!;
}

/**
 * The span of a probe window (sized before any rate is known): the longest allowed span of at most
 * {@link PROBE_MINUTES}, and of at most the size hint while one holds; the shortest allowed span when none is.
 */
export function probeSpanMinutes(i: SpanInputs & { readonly hintMinutes?: number }): number {
  const spans = allowedSpans(i);
  const fits = spans.filter((s) => s <= PROBE_MINUTES && (i.hintMinutes === undefined || s <= i.hintMinutes));
  return fits.length > 0 ? fits[fits.length - 1]! : spans[0]!;
}

/**
 * The span to plan a window of `windowMinutes` in after it ran out of time: the longest allowed span of at most half
 * its length, or undefined when it is already as short as the planner makes windows.
 */
export function smallerSpan(windowMinutes: number, i: SpanInputs): number | undefined {
  const half = windowMinutes / 2;
  const spans = allowedSpans(i).filter((s) => s <= half);
  return spans[spans.length - 1];
}

/** A size hint left by a window that ran out of time (kept per mode in the checkpoint). */
export interface SizeHint {
  /** Windows are planned no longer than this. */
  readonly maxSpanMinutes: number;
  /** Until when the hint holds (epoch ms). */
  readonly until: number;
  /** The window that ran out of time. */
  readonly window: string;
}

/** The hint's span while it holds at `nowMs`. */
export function activeHint(hint: SizeHint | undefined, nowMs: number): number | undefined {
  return hint !== undefined && hint.until > nowMs ? hint.maxSpanMinutes : undefined;
}
