/**
 * Wall-clock time in an IANA zone: calendar days (window planning) and legacy local epoch → UTC (mapping).
 * Which zone Mixpanel reads dates in, and how ambiguous and skipped wall-clock times resolve (TC39 Temporal's
 * "compatible" rules): docs/architecture.md#time-zones-and-legacy-local-time.
 *
 * Offsets come from `Intl.DateTimeFormat` (no dependency) and are cached per hour, so the hot path is one Map lookup;
 * this assumes a zone never changes its offset twice within ~29 hours, else the cache misses the second change.
 */

/** Largest instant a JavaScript Date can represent (ECMA-262 §21.4.1.1); `toISOString` throws beyond it. */
export const MAX_DATE_MS = 8.64e15;

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
/** UTC offsets on Earth lie within −12 h … +14 h; the search window adds one hour of slack on each side. */
const WINDOW_BEFORE_MS = 15 * HOUR_MS;
const WINDOW_AFTER_MS = 13 * HOUR_MS;
/** Cached hours per zone before the cache is cleared (a five-year backfill touches ~44k hours). */
const MAX_CACHED_HOURS = 100_000;

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-CA', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(zone, f);
  }
  return f;
}

interface Civil {
  readonly year: number;
  readonly month: number;
  readonly day: number;
  readonly hour: number;
  readonly minute: number;
  readonly second: number;
}

function civil(ms: number, zone: string): Civil {
  const parts: Record<string, number> = {};
  for (const p of formatter(zone).formatToParts(new Date(ms))) {
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  }
  return {
    year: parts.year ?? 0,
    month: parts.month ?? 0,
    day: parts.day ?? 0,
    hour: parts.hour ?? 0,
    minute: parts.minute ?? 0,
    second: parts.second ?? 0,
  };
}

/** `YYYY-MM-DD` of the instant `ms` in `zone`. */
export function dayString(ms: number, zone: string): string {
  const c = civil(ms, zone);
  return `${String(c.year).padStart(4, '0')}-${String(c.month).padStart(2, '0')}-${String(c.day).padStart(2, '0')}`;
}

/**
 * The instant at which the local day `YYYY-MM-DD` starts in `zone`: local midnight through the product's one zone
 * converter, whose rules also give the right answer when midnight itself is skipped (the first instant after the
 * gap) or repeated (the earlier instant).
 */
export function startOfLocalDay(day: string, zone: string): number {
  const [y, m, d] = day.split('-').map(Number) as [number, number, number];
  return localTimeConverter(zone).localToUtc(Date.UTC(y, m - 1, d));
}

/**
 * The wall-clock time of the instant `ms` in `zone`, written as a UTC epoch (ms): how legacy projects store `time`
 * (docs/architecture.md#time-zones-and-legacy-local-time). The identity in UTC.
 */
export function wallClockMs(ms: number, zone: string): number {
  if (zone === 'UTC') return ms;
  const c = civil(ms, zone);
  return Date.UTC(c.year, c.month - 1, c.day, c.hour, c.minute, c.second) + (((ms % 1000) + 1000) % 1000);
}

/** Start of the local day that contains `ms`. */
export function startOfDayContaining(ms: number, zone: string): number {
  return startOfLocalDay(dayString(ms, zone), zone);
}

/** Start of the local day after the one that starts at `dayStart`. */
export function startOfNextDay(dayStart: number, zone: string): number {
  // 26 h later is always inside the next local day (days last 23–25 h), then snap to its start.
  return startOfDayContaining(dayStart + 26 * 3_600_000, zone);
}

/** Adds whole days to a `YYYY-MM-DD` string. */
export function addDays(day: string, days: number): string {
  const [y, m, d] = day.split('-').map(Number) as [number, number, number];
  return new Date(Date.UTC(y, m - 1, d + days)).toISOString().slice(0, 10);
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
        case 'year':
          year = Number(part.value);
          break;
        case 'month':
          month = Number(part.value);
          break;
        case 'day':
          day = Number(part.value);
          break;
        case 'hour':
          hour = Number(part.value);
          break;
        case 'minute':
          minute = Number(part.value);
          break;
        case 'second':
          sec = Number(part.value);
          break;
        default:
          break;
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
