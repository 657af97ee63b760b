/**
 * Time-zone arithmetic for the Mixpanel emulator (Intl only, no dependencies).
 *
 * Deliberately independent of the connector's own calendar helpers: the emulator is the reference the connector is
 * tested against, so it must not share (and hide) the connector's bugs.
 *
 * Offsets are cached per 15-minute UTC bucket: every modern DST transition happens on a quarter hour, and calling
 * `Intl.DateTimeFormat#formatToParts` per event would cost more than generating the event.
 */

export const MS_PER_DAY = 86_400_000;
const BUCKET_MS = 15 * 60_000;
const MAX_CACHE_ENTRIES = 100_000;

/** Offsets of one IANA zone, cached per 15-minute bucket. */
export class ZoneOffsets {
  readonly zone: string;
  readonly isUtc: boolean;
  private readonly format: Intl.DateTimeFormat | undefined;
  private readonly cache = new Map<number, number>();
  private lastBucket = Number.NaN;
  private lastOffset = 0;

  constructor(zone: string) {
    this.zone = zone;
    // Throws a RangeError naming the zone when it is not a valid IANA zone.
    const format = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    const resolved = format.resolvedOptions().timeZone;
    this.isUtc = resolved === 'UTC' || resolved === 'Etc/UTC' || resolved === 'Etc/GMT' || zone.toUpperCase() === 'UTC';
    this.format = this.isUtc ? undefined : format;
  }

  /** Offset from UTC (ms, positive east of Greenwich) in force at the UTC instant `utcMs`. */
  offsetAt(utcMs: number): number {
    if (this.format === undefined) return 0;
    const bucket = Math.floor(utcMs / BUCKET_MS);
    if (bucket === this.lastBucket) return this.lastOffset;
    let offset = this.cache.get(bucket);
    if (offset === undefined) {
      offset = this.compute(bucket * BUCKET_MS);
      if (this.cache.size >= MAX_CACHE_ENTRIES) this.cache.clear();
      this.cache.set(bucket, offset);
    }
    this.lastBucket = bucket;
    this.lastOffset = offset;
    return offset;
  }

  /** Wall-clock time of `utcMs` in this zone, as a naive epoch (ms since 1970-01-01T00:00 local). */
  toLocal(utcMs: number): number {
    return utcMs + this.offsetAt(utcMs);
  }

  /**
   * The UTC instants whose local wall-clock time is `localMs`: one normally, two in a fall-back overlap, none in a
   * spring-forward gap. Sorted ascending.
   */
  fromLocal(localMs: number): number[] {
    if (this.format === undefined) return [localMs];
    const offsets = new Set<number>([
      this.offsetAt(localMs - MS_PER_DAY),
      this.offsetAt(localMs),
      this.offsetAt(localMs + MS_PER_DAY),
    ]);
    const out: number[] = [];
    for (const o of offsets) {
      const utc = localMs - o;
      if (this.offsetAt(utc) === o) out.push(utc);
    }
    return out.sort((a, b) => a - b);
  }

  /** Index of the local calendar day (days since 1970-01-01 local) that contains the UTC instant `utcMs`. */
  dayIndex(utcMs: number): number {
    return Math.floor(this.toLocal(utcMs) / MS_PER_DAY);
  }

  private compute(utcMs: number): number {
    const parts = (this.format as Intl.DateTimeFormat).formatToParts(new Date(utcMs));
    let y = 0;
    let mo = 0;
    let d = 0;
    let h = 0;
    let mi = 0;
    let s = 0;
    for (const p of parts) {
      switch (p.type) {
        case 'year':
          y = Number(p.value);
          break;
        case 'month':
          mo = Number(p.value);
          break;
        case 'day':
          d = Number(p.value);
          break;
        case 'hour':
          h = Number(p.value);
          break;
        case 'minute':
          mi = Number(p.value);
          break;
        case 'second':
          s = Number(p.value);
          break;
        default:
          break;
      }
    }
    const naive = Date.UTC(y, mo - 1, d, h, mi, s);
    return naive - (utcMs - (((utcMs % 1000) + 1000) % 1000));
  }
}

const zones = new Map<string, ZoneOffsets>();

/** Shared, cached offsets of `zone` (validated: throws RangeError for an unknown zone). */
export function zoneOffsets(zone: string): ZoneOffsets {
  let z = zones.get(zone);
  if (z === undefined) {
    z = new ZoneOffsets(zone);
    zones.set(zone, z);
  }
  return z;
}

const DAY_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Day index (days since 1970-01-01) of a strict `yyyy-mm-dd` calendar date, or undefined when it is not one. */
export function parseDay(text: string): number | undefined {
  const m = DAY_RE.exec(text);
  if (m === null) return undefined;
  const y = Number(m[1]);
  const mo = Number(m[2]);
  const d = Number(m[3]);
  if (mo < 1 || mo > 12 || d < 1 || d > 31) return undefined;
  const ms = Date.UTC(y, mo - 1, d);
  const back = new Date(ms);
  if (back.getUTCFullYear() !== y || back.getUTCMonth() !== mo - 1 || back.getUTCDate() !== d) return undefined;
  return ms / MS_PER_DAY;
}

/** `yyyy-mm-dd` of a day index. */
export function formatDay(dayIndex: number): string {
  return new Date(dayIndex * MS_PER_DAY).toISOString().slice(0, 10);
}
