/**
 * Deterministic `_id` of an ExperienceEvent (docs/architecture.md, invariant 1: the forwarder sends each `_id` once; Profile
 * drops an `_id` it already has, the data lake does not).
 *
 * Source: Mixpanel's deduplication key `(event, distinct_id, time, $insert_id)`
 * (mixpanel/docs, reference "Event Deduplication"), prefixed with the project id, each part length-prefixed so that
 * `("a b","c")` and `("a","b c")` differ. `time` is taken in milliseconds (same unit rule as the timestamp) and
 * `distinct_id`/`$insert_id` numbers as their text, so the id does not depend on the export's `time_in_ms` flag for
 * whole seconds, nor on the mapping config. Without a usable `$insert_id` Mixpanel does not deduplicate, so the id comes
 * from the whole event in a canonical form (keys sorted recursively): only events with equal JSON content share it.
 *
 * Format: a UUID (version 8, RFC 9562 §5.8, built from SHA-256 as in its Appendix B.2), 36 characters. XDM allows a
 * UUID for `_id` (XDM ExperienceEvent class, `_id`), and 122 hash bits make an accidental collision negligible.
 */
import { hash } from 'node:crypto';

const TUPLE_TAG = 'mixpanel-dedupe-v1';
const EVENT_TAG = 'mixpanel-event-v1';

/** Hex digit of the hash at the variant position → RFC 9562 variant `10xx`. */
const VARIANT: Readonly<Record<string, string>> = {
  '0': '8',
  '1': '9',
  '2': 'a',
  '3': 'b',
  '4': '8',
  '5': '9',
  '6': 'a',
  '7': 'b',
  '8': '8',
  '9': '9',
  a: 'a',
  b: 'b',
  c: '8',
  d: '9',
  e: 'a',
  f: 'b',
};

/**
 * `_id` of one event. `timeMs` is Mixpanel's `time` in milliseconds (not corrected for legacy local time).
 */
export function eventId(
  projectId: string,
  event: Record<string, unknown>,
  name: string,
  properties: Record<string, unknown>,
  timeMs: number,
): string {
  const insertId = dedupeText(properties.$insert_id);
  if (insertId === undefined) return uuidFromSha256(canonicalJson([EVENT_TAG, projectId, event]));
  const distinctId = dedupeText(properties.distinct_id);
  // Length-prefixed fields ("<length>:<text>", "-" for an absent distinct_id): unambiguous without JSON escaping.
  return uuidFromSha256(
    `${TUPLE_TAG}|${projectId.length}:${projectId}|${name.length}:${name}|` +
      `${distinctId === undefined ? '-' : `${distinctId.length}:${distinctId}`}|${timeMs}|${insertId.length}:${insertId}`,
  );
}

/** UUIDv8 whose 122 free bits are the first bits of SHA-256(input). */
export function uuidFromSha256(input: string): string {
  const h = hash('sha256', input, 'hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-8${h.slice(13, 16)}-${VARIANT[h.charAt(16)] ?? '8'}${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/**
 * JSON with object keys sorted (UTF-16 code unit order) at every depth; `undefined` members are left out as
 * JSON.stringify does. Deterministic for equal JSON values whatever their key order.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + canonicalJson(value[i]);
    return `${out}]`;
  }
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj).sort();
  let out = '{';
  let first = true;
  for (const key of keys) {
    const member = obj[key];
    if (member === undefined || typeof member === 'function') continue;
    out += `${first ? '' : ','}${JSON.stringify(key)}:${canonicalJson(member)}`;
    first = false;
  }
  return `${out}}`;
}

function dedupeText(value: unknown): string | undefined {
  if (typeof value === 'string') return value.length > 0 ? value : undefined;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  return undefined;
}
