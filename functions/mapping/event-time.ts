/**
 * Event time: Mixpanel `properties.time` → the true UTC instant in epoch milliseconds.
 *
 * Units. The export returns epoch seconds, or milliseconds when it was asked for `time_in_ms=true`. A value is read as
 * milliseconds when its magnitude is at least {@link MS_THRESHOLD} (1e11): as milliseconds that is 1973-03-03T09:46:40Z,
 * as seconds it would be the year 5138, so every plausible event time falls on exactly one side. (Mixpanel's /import
 * refuses events older than 1971, so milliseconds below the threshold do not occur in practice.)
 *
 * Legacy project-local time is corrected through the zone converter of `#common/zone-time`.
 */

import { localTimeConverter, MAX_DATE_MS } from '#common/zone-time';

export { MAX_DATE_MS };

/** Magnitudes at or above this are epoch milliseconds, below it epoch seconds (see module doc). */
export const MS_THRESHOLD = 1e11;

const HOUR_MS = 3_600_000;

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
  return ctx.legacyLocalTime ? localTimeConverter(ctx.projectTimezone).localToUtc(ms) : ms;
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
