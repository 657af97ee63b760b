/**
 * The export's line check on raw UTF-8 bytes: the same verdict as `classifyLine(text, window)` in stage-window.ts
 * (which runs `JSON.parse` on the decoded line), without decoding the line or building its object tree.
 *
 * Why: `JSON.parse` of every line was the export's largest cost after gzip, only to read three properties; one pass
 * over the bytes does the same job several times faster, and the bytes go to staging as they came. Why the verdicts
 * are equal (ASCII structure, U+FFFD, duplicate and escaped keys, no recursion):
 * docs/architecture.md#the-exports-line-check.
 */
import type { Window } from '#windows/plan';

/** The reasons a line is not staged (stage-window.ts, `QuarantineReason`). */
export type LineVerdict =
  | 'not-json'
  | 'not-an-object'
  | 'missing-event'
  | 'missing-properties'
  | 'outside-window'
  | undefined;

// Byte codes.
const TAB = 0x09;
const LF = 0x0a;
const CR = 0x0d;
const SPACE = 0x20;
const QUOTE = 0x22;
const PLUS = 0x2b;
const COMMA = 0x2c;
const MINUS = 0x2d;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const COLON = 0x3a;
const UPPER_E = 0x45;
const OPEN_ARRAY = 0x5b;
const BACKSLASH = 0x5c;
const CLOSE_ARRAY = 0x5d;
const LOWER_E = 0x65;
const LOWER_U = 0x75;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;

/** Escapes allowed after a backslash: `" \ / b f n r t u`. */
const ESCAPE = new Uint8Array(128);
for (const c of '"\\/bfnrtu') ESCAPE[c.charCodeAt(0)] = 1;
const HEX = new Uint8Array(128);
for (const c of '0123456789abcdefABCDEF') HEX[c.charCodeAt(0)] = 1;

// Keys the check looks for.
const K_OTHER = 0;
const K_EVENT = 1;
const K_PROPERTIES = 2;
const K_TIME = 3;
const KEY_EVENT = 'event';
const KEY_PROPERTIES = 'properties';
const KEY_TIME = 'mp_processing_time_ms';

/** Value kinds, for the fields the check reads. */
const V_STRING = 1;
const V_NUMBER = 2;
const V_OTHER = 3;

const INVALID = -1;

function skipWhitespace(b: Uint8Array, i: number, end: number): number {
  while (i < end) {
    const c = b[i]!;
    if (c !== SPACE && c !== TAB && c !== LF && c !== CR) break;
    i++;
  }
  return i;
}

/** Whether the last string `stringEnd` read had a backslash escape (module scratch: the check is synchronous). */
let sawEscape = false;

/** End (index after the closing quote) of the string whose opening quote is at `i`, or INVALID. Sets `sawEscape`. */
function stringEnd(b: Uint8Array, i: number, end: number): number {
  sawEscape = false;
  for (i++; i < end; i++) {
    const c = b[i]!;
    // Most string bytes (lower-case letters, UTF-8 sequences) are above the backslash: one comparison each.
    if (c > BACKSLASH) continue;
    if (c === QUOTE) return i + 1;
    if (c === BACKSLASH) {
      sawEscape = true;
      if (i + 1 >= end) return INVALID;
      const x = b[i + 1]!;
      if (x >= 128 || ESCAPE[x] !== 1) return INVALID;
      if (x === LOWER_U) {
        if (i + 5 >= end) return INVALID;
        for (let k = i + 2; k < i + 6; k++) {
          const h = b[k]!;
          if (h >= 128 || HEX[h] !== 1) return INVALID;
        }
        i += 5;
      } else i += 1;
    } else if (c < SPACE) return INVALID;
  }
  return INVALID;
}

/** End of the JSON number starting at `i`, or INVALID. */
function numberEnd(b: Uint8Array, i: number, end: number): number {
  if (b[i] === MINUS) i++;
  if (i >= end) return INVALID;
  let c = b[i]!;
  if (c === ZERO) i++;
  else if (c > ZERO && c <= NINE) {
    i++;
    while (i < end && (c = b[i]!) >= ZERO && c <= NINE) i++;
  } else return INVALID;
  if (i < end && b[i] === DOT) {
    i++;
    const digits = i;
    while (i < end && (c = b[i]!) >= ZERO && c <= NINE) i++;
    if (i === digits) return INVALID;
  }
  if (i < end && (b[i] === LOWER_E || b[i] === UPPER_E)) {
    i++;
    if (i < end && (b[i] === PLUS || b[i] === MINUS)) i++;
    const digits = i;
    while (i < end && (c = b[i]!) >= ZERO && c <= NINE) i++;
    if (i === digits) return INVALID;
  }
  return i;
}

/** End of `literal` (true/false/null) at `i`, or INVALID. */
function literalEnd(b: Uint8Array, i: number, end: number, literal: string): number {
  if (i + literal.length > end) return INVALID;
  for (let k = 0; k < literal.length; k++) if (b[i + k] !== literal.charCodeAt(k)) return INVALID;
  return i + literal.length;
}

/**
 * Which watched key the string at [start, stop) (quotes included) is, at depth 1 (the event) or 2 (its properties).
 * `escaped`: the string has a backslash escape.
 */
function keyId(b: Buffer, start: number, stop: number, depth: number, escaped: boolean): number {
  if (escaped) {
    // Rare: decode the key as JSON.parse would (non-ASCII bytes cannot spell an ASCII key either way).
    const key = JSON.parse(b.toString('latin1', start, stop)) as string;
    if (depth === 1) return key === KEY_EVENT ? K_EVENT : key === KEY_PROPERTIES ? K_PROPERTIES : K_OTHER;
    return key === KEY_TIME ? K_TIME : K_OTHER;
  }
  if (depth === 1)
    return isKey(b, start, stop, KEY_EVENT) ? K_EVENT : isKey(b, start, stop, KEY_PROPERTIES) ? K_PROPERTIES : K_OTHER;
  return isKey(b, start, stop, KEY_TIME) ? K_TIME : K_OTHER;
}

/** The quoted string at [start, stop) is exactly the ASCII `key` (no escapes). */
function isKey(b: Uint8Array, start: number, stop: number, key: string): boolean {
  if (stop - start - 2 !== key.length) return false;
  for (let k = 0; k < key.length; k++) if (b[start + 1 + k] !== key.charCodeAt(k)) return false;
  return true;
}

/**
 * The verdict of `classifyLine` for the UTF-8 line `b[start, end)` (without its newline): undefined when the line is an
 * event of window `w` to stage, else the quarantine reason.
 */
export function classifyLineBytes(b: Buffer, start: number, end: number, w: Window): LineVerdict {
  let i = skipWhitespace(b, start, end);
  if (i >= end) return 'not-json';
  const topIsObject = b[i] === OPEN_OBJECT;

  // What JSON.parse would leave in the fields classifyLine reads (last duplicate key wins).
  let eventOk = false;
  let propertiesIsObject = false;
  let time: number | undefined;

  // Open containers: `depth` of them; kinds[d] is 1 when the container at depth d is an object.
  let depth = 0;
  // Key of the value being read in the top object (depth 1) and in the properties object (depth 2).
  let key1 = K_OTHER;
  let key2 = K_OTHER;
  // The container open at depth 2 is the (current) properties object.
  let inProperties = false;

  // Each turn reads one value at i (after whitespace), then closes containers or reads a comma (and a key).
  for (;;) {
    i = skipWhitespace(b, i, end);
    if (i >= end) return 'not-json';
    const c = b[i]!;
    let kind: number;
    const valueStart = i;
    if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      const object = c === OPEN_OBJECT;
      if (depth === 1 && key1 === K_PROPERTIES) {
        propertiesIsObject = object;
        time = undefined;
        inProperties = object;
      } else if (depth === 1 && key1 === K_EVENT) eventOk = false;
      else if (depth === 2 && inProperties && key2 === K_TIME) time = undefined;
      depth++;
      if (depth >= kinds.length) kinds = grow(kinds);
      kinds[depth] = object ? 1 : 0;
      i = skipWhitespace(b, i + 1, end);
      if (i < end && b[i] === (object ? CLOSE_OBJECT : CLOSE_ARRAY)) {
        i++;
        depth--;
        if (depth === 1) inProperties = false;
      } else if (object) {
        // First key of the object.
        const next = readKey(b, i, end, depth === 1 || (depth === 2 && inProperties) ? depth : 0);
        if (next < 0) return 'not-json';
        if (depth === 1) key1 = lastKey;
        else if (depth === 2 && inProperties) key2 = lastKey;
        i = next;
        continue;
      } else continue;
    } else {
      if (c === QUOTE) {
        i = stringEnd(b, i, end);
        kind = V_STRING;
      } else if (c === MINUS || (c >= ZERO && c <= NINE)) {
        i = numberEnd(b, i, end);
        kind = V_NUMBER;
      } else if (c === 0x74) {
        i = literalEnd(b, i, end, 'true');
        kind = V_OTHER;
      } else if (c === 0x66) {
        i = literalEnd(b, i, end, 'false');
        kind = V_OTHER;
      } else if (c === 0x6e) {
        i = literalEnd(b, i, end, 'null');
        kind = V_OTHER;
      } else return 'not-json';
      if (i < 0) return 'not-json';
      if (depth === 1) {
        if (key1 === K_EVENT) eventOk = kind === V_STRING && i - valueStart > 2;
        else if (key1 === K_PROPERTIES) {
          propertiesIsObject = false;
          time = undefined;
        }
      } else if (depth === 2 && inProperties && key2 === K_TIME) {
        time = kind === V_NUMBER ? Number(b.toString('latin1', valueStart, i)) : undefined;
      }
    }

    // After a value: close containers, or read a comma (and the next key in an object).
    for (;;) {
      i = skipWhitespace(b, i, end);
      if (depth === 0) {
        if (i !== end) return 'not-json';
        if (!topIsObject) return 'not-an-object';
        if (!eventOk) return 'missing-event';
        if (!propertiesIsObject) return 'missing-properties';
        if (w.mode === 'processing-time' && !(time !== undefined && time >= w.from && time < w.to))
          return 'outside-window';
        return undefined;
      }
      if (i >= end) return 'not-json';
      const d = b[i]!;
      const object = kinds[depth] === 1;
      if (d === COMMA) {
        i++;
        if (object) {
          const next = readKey(
            b,
            skipWhitespace(b, i, end),
            end,
            depth === 1 || (depth === 2 && inProperties) ? depth : 0,
          );
          if (next < 0) return 'not-json';
          if (depth === 1) key1 = lastKey;
          else if (depth === 2 && inProperties) key2 = lastKey;
          i = next;
        }
        break;
      }
      if (d !== (object ? CLOSE_OBJECT : CLOSE_ARRAY)) return 'not-json';
      i++;
      depth--;
      if (depth === 1) inProperties = false;
    }
  }
}

// Module scratch (the check is synchronous and never re-entered): the container stack and the last key read.
let kinds: Uint8Array = new Uint8Array(64);
let lastKey = K_OTHER;

function grow(a: Uint8Array): Uint8Array {
  const bigger = new Uint8Array(a.length * 2);
  bigger.set(a);
  return bigger;
}

/**
 * Reads `"key"` + `:` at `i`; returns the index after the colon (the value follows) or INVALID. Sets `lastKey` when
 * `watch` is the depth of a watched object (1: the event, 2: its properties), else K_OTHER.
 */
function readKey(b: Buffer, i: number, end: number, watch: number): number {
  if (i >= end || b[i] !== QUOTE) return INVALID;
  const stop = stringEnd(b, i, end);
  if (stop < 0) return INVALID;
  lastKey = watch === 0 ? K_OTHER : keyId(b, i, stop, watch, sawEscape);
  const colon = skipWhitespace(b, stop, end);
  if (colon >= end || b[colon] !== COLON) return INVALID;
  return colon + 1;
}
