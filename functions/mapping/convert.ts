/**
 * Value conversions of the mapper: each returns undefined when the value does not convert cleanly (the field is then
 * left out and the value stays in the properties map). Codes are small integers: the mapper switches on them per field.
 */
import { mixpanelTimeMs, MAX_DATE_MS } from './event-time.ts';
import type { Conversion } from './presets.ts';
import { toUri } from './url.ts';

export const C_STRING = 0;
export const C_TEXT = 1;
export const C_URI = 2;
export const C_COUNTRY = 3;
export const C_INTEGER = 4;
export const C_NUMBER = 5;
export const C_BOOLEAN = 6;
export const C_DATE_TIME = 7;
export const C_WHOLE = 8;
export const C_EPOCH_SECONDS = 9;
/** Needs the record's country: resolved by the mapper (geo.ts), not by {@link convert}. */
export const C_REGION = 10;
export const CONVERSION_CODES: Readonly<Record<Conversion, number>> = {
  string: C_STRING,
  text: C_TEXT,
  uri: C_URI,
  country: C_COUNTRY,
  integer: C_INTEGER,
  number: C_NUMBER,
  boolean: C_BOOLEAN,
  'date-time': C_DATE_TIME,
  whole: C_WHOLE,
  'epoch-seconds': C_EPOCH_SECONDS,
  region: C_REGION,
};

/** Text of a value for the properties map and for hashing; undefined for null and empty values. */
export function textOf(value: unknown): string | undefined {
  switch (typeof value) {
    case 'string':
      return value.length > 0 ? value : undefined;
    case 'number':
      return Number.isFinite(value) ? String(value) : undefined;
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object':
      return value === null || isEmptyObject(value) ? undefined : JSON.stringify(value);
    default:
      return undefined;
  }
}

/** Identity ids and names of standard fields: non-empty strings, finite numbers as their text. */
export function identityText(value: unknown): string | undefined {
  if (typeof value === 'string') return value.length > 0 ? value : undefined;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}

function isEmptyObject(value: object): boolean {
  if (Array.isArray(value)) return value.length === 0;
  for (const _ in value) return false;
  return true;
}

/** Applies a conversion code to a value. */
export function convert(value: unknown, conversion: number): unknown {
  if (value === undefined || value === null) return undefined;
  switch (conversion) {
    case C_STRING:
      return textOf(value);
    case C_TEXT:
      return identityText(value);
    case C_URI:
      return typeof value === 'string' ? toUri(value) : undefined;
    case C_COUNTRY:
      return typeof value === 'string' ? countryCode(value) : undefined;
    case C_INTEGER:
      return toInteger(value);
    case C_NUMBER:
      return toNumber(value);
    case C_BOOLEAN:
      return value === true || value === 'true' ? true : value === false || value === 'false' ? false : undefined;
    case C_WHOLE: {
      const n = toNumber(value);
      return n === undefined || !Number.isSafeInteger(Math.round(n)) ? undefined : Math.round(n);
    }
    case C_EPOCH_SECONDS: {
      const n = toNumber(value);
      return n === undefined || n <= 0 ? undefined : Math.floor(mixpanelTimeMs(n) / 1000);
    }
    default:
      return toDateTime(value);
  }
}

/** ISO 3166-1 alpha-2 (`pattern: ^[A-Z]{2}$`), lower case upper-cased. */
export function countryCode(value: string): string | undefined {
  if (value.length !== 2) return undefined;
  const upper = value.toUpperCase();
  const a = upper.charCodeAt(0);
  const b = upper.charCodeAt(1);
  return a >= 65 && a <= 90 && b >= 65 && b <= 90 ? upper : undefined;
}

export function toInteger(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) ? value : undefined;
  if (typeof value !== 'string' || value.length === 0 || value.length > 17) return undefined;
  let i = value.charCodeAt(0) === 45 ? 1 : 0; // '-'
  if (i === value.length) return undefined;
  for (; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 48 || c > 57) return undefined;
  }
  const n = Number(value);
  return Number.isSafeInteger(n) ? n : undefined;
}

export function toNumber(value: unknown): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value !== 'string' || !DECIMAL.test(value)) return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

const DECIMAL = /^-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;
/** ISO 8601 date or date-time; a date-time without a zone is UTC (Mixpanel's datetime properties are UTC). */
const ISO_DATE_TIME = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)(Z|[+-]\d{2}:?\d{2})?)?$/i;

function toDateTime(value: unknown): string | undefined {
  let ms: number;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return undefined;
    ms = mixpanelTimeMs(value);
  } else if (typeof value === 'string') {
    const m = ISO_DATE_TIME.exec(value);
    if (m === null) return undefined;
    const [, date, clock, zone] = m;
    if (clock === undefined) ms = Date.parse(`${date}T00:00:00Z`);
    else {
      const [whole, fraction = ''] = clock.split('.');
      const millis = fraction === '' ? '' : `.${fraction.slice(0, 3).padEnd(3, '0')}`;
      const offset =
        zone === undefined || zone.toUpperCase() === 'Z'
          ? 'Z'
          : zone.includes(':')
            ? zone
            : `${zone.slice(0, 3)}:${zone.slice(3)}`;
      ms = Date.parse(`${date}T${(whole ?? '').length === 5 ? `${whole}:00` : whole}${millis}${offset}`);
    }
  } else return undefined;
  return Number.isFinite(ms) && Math.abs(ms) <= MAX_DATE_MS ? new Date(ms).toISOString() : undefined;
}
