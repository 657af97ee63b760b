/**
 * Event time: Mixpanel `properties.time` → the true UTC instant in epoch milliseconds.
 *
 * Units. The export returns epoch seconds, or milliseconds when it was asked for `time_in_ms=true`. A value is read as
 * milliseconds when its magnitude is at least {@link MS_THRESHOLD} (1e11): as milliseconds that is 1973-03-03T09:46:40Z,
 * as seconds it would be the year 5138, so every plausible event time falls on exactly one side. (Mixpanel's /import
 * refuses events older than 1971, so milliseconds below the threshold do not occur in practice.)
 *
 * Legacy local time. Projects created before 2023 store `time` as seconds in the project's timezone ("local epoch":
 * the wall-clock reading written as if it were UTC). The true instant U satisfies U + offset(U) = L, DST included.
 * - A wall-clock time that happened twice (the repeated hour when clocks fall back) resolves to the EARLIER instant.
 * - A wall-clock time that never happened (the hour skipped when clocks spring forward) is read with the offset in effect
 *   before the transition, i.e. it moves forward by the length of the gap (02:30 on a spring-forward night in New York
 *   becomes 03:30 EDT). Mixpanel itself never produces such a time (it converts real instants), so only damaged data
 *   lands here.
 * Both rules are the "compatible" disambiguation of TC39 Temporal and the default of java.time's ZonedDateTime.ofLocal:
 * https://tc39.es/proposal-temporal/docs/zoneddatetime.html#ambiguity-due-to-dst-or-other-time-zone-offset-changes
 *
 * Offsets come from `Intl.DateTimeFormat` (no dependency) and are cached per hour, so the hot path is one Map lookup.
 * Assumption: a zone does not change its offset twice within ~29 hours (true of every zone in the tz database since
 * 1970 as far as we know); the cache would otherwise miss the second change.
 */

/** Magnitudes at or above this are epoch milliseconds, below it epoch seconds (see module doc). */
export const MS_THRESHOLD = 1e11;

/** Largest instant a JavaScript Date can represent (ECMA-262 §21.4.1.1); `toISOString` throws beyond it. */
export const MAX_DATE_MS = 8.64e15;

const HOUR_MS = 3_600_000;
/** UTC offsets on Earth lie within −12 h … +14 h; the search window adds one hour of slack on each side. */
const WINDOW_BEFORE_MS = 15 * HOUR_MS;
const WINDOW_AFTER_MS = 13 * HOUR_MS;
/** Cached hours per zone before the cache is cleared (a five-year backfill touches ~44k hours). */
const MAX_CACHED_HOURS = 100_000;

export interface TimeContext {
  /** `true` when `time` is project-local (MIXPANEL_LEGACY_LOCAL_TIME). */
  legacyLocalTime: boolean;
  /** IANA zone of the project (MIXPANEL_PROJECT_TIMEZONE), e.g. `America/New_York`. */
  projectTimezone: string;
}

/**
 * Mixpanel `time` (seconds or milliseconds, detected) as epoch milliseconds, rounded to the millisecond.
 * This is Mixpanel's value, not corrected for legacy local time.
 */
export function mixpanelTimeMs(time: number): number {
  return Math.round(time >= MS_THRESHOLD || time <= -MS_THRESHOLD ? time : time * 1000);
}

/**
 * The true UTC instant (epoch ms) of a Mixpanel `time`, correcting legacy project-local time when `legacyLocalTime`.
 * Throws a RangeError for an unknown IANA zone (a configuration error, not a data error).
 */
export function eventInstantMs(time: number, ctx: TimeContext): number {
  const ms = mixpanelTimeMs(time);
  return ctx.legacyLocalTime ? zoneFor(ctx.projectTimezone).localToUtc(ms) : ms;
}

const DAY_MS = 86_400_000;
/** Start of year 10000: beyond it toISOString switches to the six-digit extended year form. */
const YEAR_10000_MS = 253_402_300_800_000;
const PAD2 = Array.from({ length: 100 }, (_, i) => String(i).padStart(2, '0'));
const PAD3 = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));

/**
 * `Date.prototype.toISOString` (`YYYY-MM-DDTHH:mm:ss.sssZ`) with the date part cached: an export window's events
 * share a few days, so formatting is a few string concatenations instead of a Date allocation and a full format.
 * One instance per consumer (it holds the cache).
 */
export class IsoFormatter {
  private day = Number.NaN;
  private prefix = '';

  format(ms: number): string {
    if (!(ms >= 0 && ms < YEAR_10000_MS)) return new Date(ms).toISOString();
    const day = Math.floor(ms / DAY_MS);
    if (day !== this.day) {
      this.day = day;
      this.prefix = new Date(day * DAY_MS).toISOString().slice(0, 11);
    }
    let rest = ms - day * DAY_MS;
    const hours = Math.floor(rest / HOUR_MS);
    rest -= hours * HOUR_MS;
    const minutes = Math.floor(rest / 60_000);
    rest -= minutes * 60_000;
    const seconds = Math.floor(rest / 1000);
    rest -= seconds * 1000;
    return `${this.prefix}${PAD2[hours]}:${PAD2[minutes]}:${PAD2[seconds]}.${PAD3[Math.floor(rest)]}Z`;
  }
}

/** Converter from legacy local epoch ms to UTC epoch ms for one zone, for callers that convert many events. */
export interface LocalTimeConverter {
  /** NaN for a time no zone offset can be computed for (beyond the representable date range, or not finite). */
  localToUtc(localMs: number): number;
}

/**
 * The (cached) converter of an IANA zone.
 * @throws RangeError when the runtime's ICU does not know the zone
 */
export function localTimeConverter(timeZone: string): LocalTimeConverter {
  return zoneFor(timeZone);
}

/**
 * Offsets of one IANA zone with two caches: the zone's offset per UTC hour, and the resolution (a single offset, or the
 * two candidates around a transition) per local hour.
 */
class Zone implements LocalTimeConverter {
  private readonly format: Intl.DateTimeFormat;
  /** UTC hour → offset in ms, or NaN when the offset changes inside that hour. */
  private readonly offsetByUtcHour = new Map<number, number>();
  /** Local hour → offset in ms valid for the whole hour, or the candidates when a transition is near. */
  private readonly resolutionByLocalHour = new Map<number, number | Transition>();

  constructor(readonly timeZone: string) {
    // hourCycle h23: midnight is 0, never 24 (the `hour12: false` pitfall).
    this.format = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
  }

  /** UTC instant of a local epoch (wall clock written as UTC), per the rules in the module doc. */
  localToUtc(localMs: number): number {
    // Intl cannot format instants beyond ±8.64e15 ms (it throws): such a time has no offset, and no instant either.
    if (!(Math.abs(localMs) <= MAX_DATE_MS - DAY_MS)) return Number.NaN;
    const hour = Math.floor(localMs / HOUR_MS);
    let resolution = this.resolutionByLocalHour.get(hour);
    if (resolution === undefined) {
      resolution = this.resolveLocalHour(hour);
      if (this.resolutionByLocalHour.size >= MAX_CACHED_HOURS) this.resolutionByLocalHour.clear();
      this.resolutionByLocalHour.set(hour, resolution);
    }
    if (typeof resolution === 'number') return localMs - resolution;

    const { before, after } = resolution;
    const beforeValid = this.offsetAt(localMs - before) === before;
    const afterValid = this.offsetAt(localMs - after) === after;
    if (beforeValid && afterValid) return localMs - Math.max(before, after); // repeated hour: the earlier instant
    if (beforeValid) return localMs - before;
    if (afterValid) return localMs - after;
    return localMs - before; // skipped hour: read with the offset before the transition
  }

  private resolveLocalHour(hour: number): number | Transition {
    const start = hour * HOUR_MS;
    const before = this.offsetAt(start - WINDOW_BEFORE_MS);
    const after = this.offsetAt(start + HOUR_MS + WINDOW_AFTER_MS);
    return before === after ? before : { before, after };
  }

  /** Offset (ms, east positive) of the zone at a UTC instant. */
  offsetAt(utcMs: number): number {
    const hour = Math.floor(utcMs / HOUR_MS);
    let offset = this.offsetByUtcHour.get(hour);
    if (offset === undefined) {
      const atStart = this.computeOffset(hour * HOUR_MS);
      const atEnd = this.computeOffset(hour * HOUR_MS + HOUR_MS - 1000);
      offset = atStart === atEnd ? atStart : Number.NaN;
      if (this.offsetByUtcHour.size >= MAX_CACHED_HOURS) this.offsetByUtcHour.clear();
      this.offsetByUtcHour.set(hour, offset);
    }
    return Number.isNaN(offset) ? this.computeOffset(utcMs) : offset;
  }

  private computeOffset(utcMs: number): number {
    const second = Math.floor(utcMs / 1000) * 1000;
    let year = 0;
    let month = 1;
    let day = 1;
    let hour = 0;
    let minute = 0;
    let sec = 0;
    for (const part of this.format.formatToParts(second)) {
      switch (part.type) {
        case 'year': year = Number(part.value); break;
        case 'month': month = Number(part.value); break;
        case 'day': day = Number(part.value); break;
        case 'hour': hour = Number(part.value); break;
        case 'minute': minute = Number(part.value); break;
        case 'second': sec = Number(part.value); break;
        default: break;
      }
    }
    const wall = new Date(0);
    wall.setUTCFullYear(year, month - 1, day); // setUTCFullYear keeps years 0–99 literal (Date.UTC would add 1900)
    wall.setUTCHours(hour, minute, sec, 0);
    return wall.getTime() - second;
  }
}

interface Transition {
  /** Offset in effect before the transition. */
  before: number;
  /** Offset in effect after it. */
  after: number;
}

const zones = new Map<string, Zone>();

function zoneFor(timeZone: string): Zone {
  let zone = zones.get(timeZone);
  if (zone === undefined) {
    zone = new Zone(timeZone); // throws RangeError: Invalid time zone specified: …
    zones.set(timeZone, zone);
  }
  return zone;
}
