/**
 * Calendar helpers in an IANA time zone (Intl only; local → UTC conversion is the mapper's cached converter).
 *
 * Mixpanel reads `from_date`/`to_date` as UTC days for projects created after 2023-01-01 and as days in the project's
 * current time zone for older projects (mixpanel/docs openapi/src/export.openapi.yaml, parameters from_date/to_date).
 */

import { localTimeConverter } from '#shared/mapping/time';

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

/** Compact UTC form used in window ids and keys: 20240101T000000Z. */
export function compactIso(ms: number): string {
  return new Date(ms).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
}

/** Inverse of `compactIso`. */
export function parseCompactIso(text: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (m === null) return Number.NaN;
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}
