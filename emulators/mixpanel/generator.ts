/**
 * Seeded, lazy, realistic Mixpanel raw-export dataset.
 *
 * Every generated event `i` is derived from its own seed `hash(spec.seed, i)`, so the dataset is random-access: a
 * server can start at any index without generating what comes before, and iterating never holds more than one event.
 * Processing times grow with the index (`start + (i + u) * span / count`), which lets a query on
 * `mp_processing_time_ms` or on a date range jump straight to the indices that can match (see `indexRangeFor`).
 *
 * Lines are written straight into a byte buffer from pre-encoded fragments (`catalog.ts`, `line-buffer.ts`): Node 20's
 * JSON.stringify runs at ~115 MB/s, too slow to serve 200k events/s on top of generating them. The same code path can
 * write an object instead, so `JSON.stringify(cursor.event()) === cursor.line()` holds by construction (and is
 * tested).
 *
 * Shapes follow real exports (mixpanel/docs openapi/export.openapi.yaml example lines, and the events Adobe's
 * Mixpanel source tutorial shows): `time` in epoch seconds (project-local seconds for legacy projects),
 * `distinct_id`, `$insert_id`, `$mp_api_endpoint`, `$mp_api_timestamp_ms`, `mp_processing_time_ms`, plus the default
 * properties of the JavaScript, iOS, Android and server libraries.
 */

import * as C from './catalog.ts';
import type { Field, Group, Platform } from './catalog.ts';
import { LineBuffer, utf8 } from './line-buffer.ts';
import { type IdKind, Rng, seedFor } from './prng.ts';
import { zoneOffsets, type ZoneOffsets } from './time.ts';

export { EVENT_NAMES, type Platform } from './catalog.ts';

export interface DatasetSpec {
  seed: number;
  /** Distinct generated events (duplicates are extra, on top). */
  count: number;
  /** Epoch ms: `mp_processing_time_ms` is spread over `[start, end)`. */
  start: number;
  end: number;
  /** IANA zone of the project; default `UTC`. */
  projectTimezone?: string;
  /** Default false; when true `time` is epoch seconds shifted into project local time (offset at that instant). */
  legacyLocalTime?: boolean;
  /** Default 0.05: event time minutes..hours before processing time (offline mobile queues). */
  lateFraction?: number;
  /** Default 0.01: event time 1..4 days before processing (`$import: true`, sent to the /import endpoint). */
  backdatedFraction?: number;
  /** Default 0.01: an exact duplicate line, or a same-tuple retry (same event/distinct_id/time/$insert_id, later processing). */
  duplicateFraction?: number;
  /** Default 0.001: events carrying a large property (tens of KB, still < 1 MB). */
  largeFraction?: number;
  /** Default 0.002: device clock ahead, event time up to two minutes after the API received it. */
  clockSkewFraction?: number;
}

export interface MixpanelEvent {
  event: string;
  properties: Record<string, unknown>;
}

/** Longest gap between event time and processing time the generator produces (backdated imports). */
export const MAX_EVENT_LAG_MS = 4 * 86_400_000 + 60_000;
/** Longest time an event time can be after its processing time (device clock skew). */
export const MAX_EVENT_LEAD_MS = 2 * 60_000 + 1_000;
/** Longest delay between an event and its same-tuple retry. */
export const MAX_RETRY_DELAY_MS = 15 * 60_000;

const LATE_MIN_MS = 2 * 60_000;
const LATE_MAX_MS = 6 * 3_600_000;
const BACKDATED_MIN_MS = 86_400_000;
const BACKDATED_MAX_MS = 4 * 86_400_000;

// ---------------------------------------------------------------------------------------------------------------------
// Writers: the body of a line is written once, into either UTF-8 JSON bytes or an object.

// JSON.stringify escapes quotes, backslashes, control characters and lone surrogates; anything else is copied as is.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** JSON string literal of `v`, exactly as JSON.stringify writes it. */
function q(v: string): string {
  return NEEDS_ESCAPE.test(v) ? JSON.stringify(v) : `"${v}"`;
}

/** Deep copy of a JSON value, so that objects handed out never share catalogue values. */
function copyJson(v: unknown): unknown {
  if (v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map(copyJson);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = copyJson(x);
  return out;
}

/** A nested value with its JSON bytes (for arrays assembled per event). */
interface Part {
  readonly bytes: Uint8Array;
  readonly value: unknown;
}

interface Writer {
  /** Starts the event; `time` is always the first property, as in Mixpanel's export. */
  begin(name: string, time: number): void;
  f(field: Field): void;
  g(group: Group): void;
  /** A string that may need escaping. */
  str(key: string, v: string): void;
  /** A string known to need no escaping (ASCII ids). */
  safe(key: string, v: string): void;
  /** `a + b`, both needing no escaping. */
  safe2(key: string, a: string, b: string): void;
  num(key: string, v: number): void;
  /** A random id drawn from `g`, after an ASCII `prefix`. */
  id(key: string, g: Rng, kind: IdKind, len: number, prefix: string): void;
  /** An array of parts. */
  list(key: string, parts: readonly Part[]): void;
  /** A string whose escaped JSON (UTF-8, without quotes) is known. */
  encoded(key: string, jsonBytes: Uint8Array, value: string): void;
}

const SCRATCH = new Uint8Array(64);
const keyPrefixes = new Map<string, Uint8Array>();
const keyQuotePrefixes = new Map<string, Uint8Array>();

/** `,"key":` */
function keyPrefix(key: string): Uint8Array {
  let b = keyPrefixes.get(key);
  if (b === undefined) {
    b = utf8(`,${JSON.stringify(key)}:`);
    keyPrefixes.set(key, b);
  }
  return b;
}

/** `,"key":"` */
function keyQuotePrefix(key: string): Uint8Array {
  let b = keyQuotePrefixes.get(key);
  if (b === undefined) {
    b = utf8(`,${JSON.stringify(key)}:"`);
    keyQuotePrefixes.set(key, b);
  }
  return b;
}

class LineWriter implements Writer {
  out: LineBuffer = new LineBuffer();
  begin(name: string, time: number): void {
    this.out.bytes(C.EVENT_PREFIX.get(name) as Uint8Array);
    this.out.num(time);
  }
  f(field: Field): void {
    this.out.bytes(field.bytes);
  }
  g(group: Group): void {
    this.out.bytes(group.bytes);
  }
  str(key: string, v: string): void {
    this.out.bytes(keyPrefix(key));
    this.out.utf8(q(v));
  }
  safe(key: string, v: string): void {
    const out = this.out;
    out.bytes(keyQuotePrefix(key));
    out.ascii(v);
    out.byte(34);
  }
  safe2(key: string, a: string, b: string): void {
    const out = this.out;
    out.bytes(keyQuotePrefix(key));
    out.ascii(a);
    out.ascii(b);
    out.byte(34);
  }
  num(key: string, v: number): void {
    this.out.bytes(keyPrefix(key));
    this.out.num(v);
  }
  id(key: string, g: Rng, kind: IdKind, len: number, prefix: string): void {
    const out = this.out;
    out.bytes(keyQuotePrefix(key));
    if (prefix !== '') out.ascii(prefix);
    out.ensure(Math.max(len, 36) + 1);
    const o = out.off + g.fillId(kind, len, out.buf, out.off);
    out.buf[o] = 34;
    out.off = o + 1;
  }
  encoded(key: string, jsonBytes: Uint8Array): void {
    const out = this.out;
    out.bytes(keyQuotePrefix(key));
    out.bytes(jsonBytes);
    out.byte(34);
  }
  list(key: string, parts: readonly Part[]): void {
    const out = this.out;
    out.bytes(keyPrefix(key));
    out.byte(91);
    for (let i = 0; i < parts.length; i++) {
      if (i > 0) out.byte(44);
      out.bytes((parts[i] as Part).bytes);
    }
    out.byte(93);
  }
}

class ObjectWriter implements Writer {
  name = '';
  p: Record<string, unknown> = {};
  begin(name: string, time: number): void {
    this.name = name;
    this.p = { time };
  }
  f(field: Field): void {
    this.p[field.key] = copyJson(field.value);
  }
  g(group: Group): void {
    for (const f of group.fields) this.p[f.key] = copyJson(f.value);
  }
  str(key: string, v: string): void {
    this.p[key] = v;
  }
  safe(key: string, v: string): void {
    this.p[key] = v;
  }
  safe2(key: string, a: string, b: string): void {
    this.p[key] = a + b;
  }
  num(key: string, v: number): void {
    this.p[key] = v;
  }
  id(key: string, g: Rng, kind: IdKind, len: number, prefix: string): void {
    const n = g.fillId(kind, len, SCRATCH, 0);
    this.p[key] = prefix + String.fromCharCode(...SCRATCH.subarray(0, n));
  }
  list(key: string, parts: readonly Part[]): void {
    this.p[key] = parts.map((x) => copyJson(x.value));
  }
  encoded(key: string, _jsonBytes: Uint8Array, value: string): void {
    this.p[key] = value;
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Users: identity, device and location are stable per user. Profiles are derived from the user's own seed and cached
// per dataset seed, shared by all cursors (concurrent requests over one project reuse them), in a bounded table:
// memory does not depend on dataset size or on the number of requests.

interface UserProfile {
  readonly index: number;
  readonly identified: boolean;
  readonly userId: string;
  /**
   * The escaped JSON of `userId` as UTF-8 (without quotes) when it is not plain printable ASCII (e.g.
   * `joão+12@example.com`); undefined for the common ids that are written as they are.
   */
  readonly userIdJson: Uint8Array | undefined;
  readonly geo: number;
  readonly hasRegion: boolean;
  readonly agent: number;
  readonly screen: number;
  readonly initialReferrer: number;
  readonly appVersion: number;
  readonly carrier: number;
  readonly iosDevice: number;
  readonly androidDevice: number;
  readonly iosOs: number;
  readonly androidOs: number;
  /** 0 native SDK, 1 React Native, 2 Flutter. */
  readonly wrapper: number;
  /** Device ids per platform, made on first use. */
  web?: string;
  ios?: string;
  android?: string;
}

/** Size of the user population (and of its profile table): enough for realistic per-user sequences. */
const MAX_USERS = 8192;
const MAX_CACHED_SEEDS = 8;
const profileTables = new Map<string, Array<UserProfile | undefined>>();

function profileTable(seedLo: number, seedHi: number): Array<UserProfile | undefined> {
  const key = `${seedHi}:${seedLo}`;
  let table = profileTables.get(key);
  if (table === undefined) {
    if (profileTables.size >= MAX_CACHED_SEEDS) profileTables.delete(profileTables.keys().next().value as string);
    table = new Array<UserProfile | undefined>(MAX_USERS).fill(undefined);
    profileTables.set(key, table);
  }
  return table;
}

const PLATFORM_STREAM: Readonly<Record<Platform, number>> = { web: 4, ios: 5, android: 6, server: 7 };
const CLOSE = utf8('}}');
/** Printable ASCII without `"` and `\`: written as is inside a JSON string. */
const PLAIN_ASCII = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

// ---------------------------------------------------------------------------------------------------------------------
// Dataset cursor.

/** What kind of line the cursor is on: the original event, an exact duplicate line, or a same-tuple retry. */
export type RecordKind = 'original' | 'duplicate' | 'retry';

interface Resolved {
  readonly seedLo: number;
  readonly seedHi: number;
  readonly count: number;
  readonly start: number;
  readonly end: number;
  readonly span: number;
  readonly zone: ZoneOffsets;
  readonly legacy: boolean;
  readonly late: number;
  readonly backdated: number;
  readonly skew: number;
  readonly duplicate: number;
  readonly large: number;
  readonly users: number;
}

function fraction(name: string, v: number | undefined, dflt: number): number {
  const x = v ?? dflt;
  if (!(x >= 0 && x <= 1)) throw new RangeError(`DatasetSpec.${name} must be within [0, 1], got ${String(v)}`);
  return x;
}

function resolve(spec: DatasetSpec): Resolved {
  if (!Number.isSafeInteger(spec.count) || spec.count < 0) {
    throw new RangeError(`DatasetSpec.count must be a non-negative integer, got ${String(spec.count)}`);
  }
  if (!Number.isFinite(spec.start) || !Number.isFinite(spec.end) || !(spec.end > spec.start)) {
    throw new RangeError(`DatasetSpec needs finite start < end (epoch ms), got [${spec.start}, ${spec.end})`);
  }
  if (!Number.isFinite(spec.seed)) throw new RangeError('DatasetSpec.seed must be a finite number');
  const late = fraction('lateFraction', spec.lateFraction, 0.05);
  const backdated = fraction('backdatedFraction', spec.backdatedFraction, 0.01);
  const skew = fraction('clockSkewFraction', spec.clockSkewFraction, 0.002);
  if (late + backdated + skew > 1) {
    throw new RangeError('DatasetSpec: lateFraction + backdatedFraction + clockSkewFraction must not exceed 1');
  }
  const seed = Math.trunc(spec.seed);
  return {
    seedLo: seed >>> 0,
    seedHi: Math.floor(seed / 4_294_967_296) >>> 0,
    count: spec.count,
    start: Math.floor(spec.start),
    end: Math.ceil(spec.end),
    span: Math.ceil(spec.end) - Math.floor(spec.start),
    zone: zoneOffsets(spec.projectTimezone ?? 'UTC'),
    legacy: spec.legacyLocalTime ?? false,
    late,
    backdated,
    skew,
    duplicate: fraction('duplicateFraction', spec.duplicateFraction, 0.01),
    large: fraction('largeFraction', spec.largeFraction, 0.001),
    users: Math.min(MAX_USERS, Math.max(100, Math.floor(spec.count / 25))),
  };
}

/** Validates a spec (and its time zone), throwing a RangeError that names the problem. */
export function validateDatasetSpec(spec: DatasetSpec): void {
  resolve(spec);
}

/**
 * Half-open index range `[from, to)` of generated events whose original or retry line can have a processing time in
 * `[procLo, procHi)`. Conservative (a superset): callers still check each line.
 */
export function indexRangeFor(spec: DatasetSpec, procLo: number, procHi: number): { from: number; to: number } {
  const { count, start, span } = resolve(spec);
  if (!(procHi > procLo) || count === 0) return { from: 0, to: 0 };
  const perMs = count / span;
  // A retry is emitted right after its original but processed up to MAX_RETRY_DELAY_MS later.
  const lo = Math.floor((Math.max(procLo, start - span) - MAX_RETRY_DELAY_MS - start) * perMs) - 2;
  const hi = Math.ceil((Math.min(procHi, start + 2 * span) - start) * perMs) + 2;
  return { from: Math.max(0, Math.min(count, lo)), to: Math.max(0, Math.min(count, hi)) };
}

/**
 * Forward cursor over a dataset: a light record per line (times, name, kind) and the body only on demand, as JSON
 * bytes (`writeLine`), JSON text (`line`) or an object (`event`). Filtering on time or name costs none of them.
 */
export class DatasetCursor {
  private readonly r: Resolved;
  private readonly rng = new Rng();
  private readonly userRng = new Rng();
  private readonly to: number;
  private readonly users: Array<UserProfile | undefined>;
  private readonly lineWriter = new LineWriter();
  private readonly objectWriter = new ObjectWriter();
  private nextIndex: number;
  private pendingDup: RecordKind | undefined;
  private retryDelay = 0;
  private large = false;
  private backdated = false;
  private platformValue: Platform = 'web';

  /** Index of the generated event the current line belongs to. */
  index = -1;
  kind: RecordKind = 'original';
  /** `mp_processing_time_ms` of the current line. */
  processingMs = 0;
  /** `$mp_api_timestamp_ms` of the current line. */
  apiMs = 0;
  /** True UTC event time (ms) of the current line. */
  eventMs = 0;
  /** Event name of the current line. */
  name = '';

  constructor(spec: DatasetSpec, range?: { from?: number; to?: number }) {
    this.r = resolve(spec);
    this.users = profileTable(this.r.seedLo, this.r.seedHi);
    this.nextIndex = Math.max(0, range?.from ?? 0);
    this.to = Math.min(this.r.count, range?.to ?? this.r.count);
  }

  get platform(): Platform {
    return this.platformValue;
  }

  /** Advances to the next line; false at the end. */
  next(): boolean {
    if (this.pendingDup !== undefined) {
      this.kind = this.pendingDup;
      this.pendingDup = undefined;
      if (this.kind === 'retry') {
        this.processingMs = Math.min(this.processingMs + this.retryDelay, this.r.end - 1);
        this.apiMs = this.processingMs - 7 - (this.retryDelay % 97);
      }
      return true;
    }
    if (this.nextIndex >= this.to) return false;
    this.head(this.nextIndex++);
    return true;
  }

  /** Appends the current line and a `\n` to `out`, as UTF-8 JSON identical to `JSON.stringify(this.event(timeInMs))`. */
  writeLine(out: LineBuffer, timeInMs = false): void {
    const w = this.lineWriter;
    w.out = out;
    this.write(w, timeInMs);
    out.bytes(CLOSE);
    out.byte(10);
  }

  /** The current line as JSON text (no newline). */
  line(timeInMs = false): string {
    const out = new LineBuffer(4096);
    this.writeLine(out, timeInMs);
    return out.text(0, out.length - 1);
  }

  /** The current line as a fresh object. `timeInMs` emits `time` in ms, as `time_in_ms=true` asks. */
  event(timeInMs = false): MixpanelEvent {
    const w = this.objectWriter;
    this.write(w, timeInMs);
    const e = { event: w.name, properties: w.p };
    w.p = {};
    return e;
  }

  /** `time` as stored by Mixpanel for this project: UTC seconds, or project-local seconds for legacy projects. */
  storedTime(timeInMs: boolean): number {
    const ms = this.r.legacy ? this.r.zone.toLocal(this.eventMs) : this.eventMs;
    return timeInMs ? ms : Math.floor(ms / 1000);
  }

  private head(i: number): void {
    const r = this.r;
    const g = this.rng;
    g.reseed(seedFor(r.seedLo, r.seedHi, i, 1));
    const u = g.next();
    const cls = g.next();
    const apiLag = 3 + Math.floor(g.next() ** 2 * 250);
    const lagU = g.next();
    const platformU = g.next();
    const nameU = g.next();
    const dupU = g.next();
    const dupKindU = g.next();
    const retryU = g.next();
    const largeU = g.next();

    this.index = i;
    this.kind = 'original';
    this.processingMs = Math.min(r.start + Math.floor(((i + u) * r.span) / r.count), r.end - 1);
    this.apiMs = this.processingMs - apiLag;
    let lag: number;
    let platform: Platform;
    this.backdated = cls < r.backdated;
    if (this.backdated) {
      // Historical imports come from a backend through /import.
      lag = BACKDATED_MIN_MS + Math.floor(lagU * (BACKDATED_MAX_MS - BACKDATED_MIN_MS));
      platform = 'server';
    } else {
      if (cls < r.backdated + r.late) lag = LATE_MIN_MS + Math.floor(lagU ** 2 * (LATE_MAX_MS - LATE_MIN_MS));
      else if (cls < r.backdated + r.late + r.skew) lag = -(1_000 + Math.floor(lagU * 120_000));
      else lag = 15 + Math.floor(lagU ** 3 * 60_000);
      platform = C.PLATFORMS.pick(platformU);
    }
    this.eventMs = this.apiMs - lag;
    this.platformValue = platform;
    this.name = C.EVENTS[platform].pick(nameU);
    this.large = largeU < r.large;
    this.pendingDup = dupU < r.duplicate ? (dupKindU < 0.5 ? 'duplicate' : 'retry') : undefined;
    this.retryDelay = 1_000 + Math.floor(retryU ** 2 * (MAX_RETRY_DELAY_MS - 1_000));
  }

  private user(userIndex: number): UserProfile {
    const cached = this.users[userIndex];
    if (cached !== undefined) return cached;
    const r = this.r;
    const u = this.userRng;
    u.reseed(seedFor(r.seedLo, r.seedHi, userIndex, 3));
    const identified = u.chance(0.6);
    const style = u.int(3);
    const userId =
      style === 0
        ? `${u.pick(C.FIRST_NAMES)}+${userIndex}@example.com`
        : style === 1
          ? String(100_000 + userIndex)
          : `usr_${u.base36(12)}`;
    const agent = u.int(C.WEB_AGENTS.length);
    const wrapperU = u.next();
    const profile: UserProfile = {
      index: userIndex,
      identified,
      userId,
      userIdJson: PLAIN_ASCII.test(userId) ? undefined : utf8(JSON.stringify(userId).slice(1, -1)),
      geo: u.int(C.GEO_GROUPS.length),
      hasRegion: u.chance(0.9),
      agent,
      screen: u.int((C.WEB_AGENTS[agent] as C.WebAgent).phone ? C.PHONE_SCREENS.length : C.DESKTOP_SCREENS.length),
      initialReferrer: u.chance(0.4) ? 0 : 1 + u.int(C.INITIAL_REFERRERS.length - 1),
      appVersion: u.int(C.APP_VERSIONS.length),
      carrier: u.int(C.CARRIERS.length),
      iosDevice: u.int(C.IOS_DEVICES.length),
      androidDevice: u.int(C.ANDROID_DEVICES.length),
      iosOs: u.int(C.IOS_OS.length),
      androidOs: u.int(C.ANDROID_OS.length),
      wrapper: wrapperU < 0.8 ? 0 : wrapperU < 0.9 ? 1 : 2,
    };
    this.users[userIndex] = profile;
    return profile;
  }

  private deviceId(user: UserProfile, platform: 'web' | 'ios' | 'android'): string {
    const cached = platform === 'web' ? user.web : platform === 'ios' ? user.ios : user.android;
    if (cached !== undefined) return cached;
    const r = this.r;
    const u = this.userRng;
    u.reseed(seedFor(r.seedLo, r.seedHi, user.index, PLATFORM_STREAM[platform]));
    const id =
      platform === 'ios'
        ? u.uuid(true)
        : platform === 'android'
          ? u.uuid()
          : // mixpanel-js: a UUID in recent versions, the older dash-joined hex form otherwise.
            u.chance(0.5)
            ? u.uuid()
            : `${u.hex(14)}-${u.hex(15)}-26001b51-${u.hex(6)}-${u.hex(14)}`;
    if (platform === 'web') user.web = id;
    else if (platform === 'ios') user.ios = id;
    else user.android = id;
    return id;
  }

  /** Writes the body of the current line from the body stream of its index (deterministic). */
  private write(w: Writer, timeInMs: boolean): void {
    const r = this.r;
    const g = this.rng;
    const platform = this.platformValue;
    const name = this.name;

    g.reseed(seedFor(r.seedLo, r.seedHi, this.index, 2));
    // Heavy users are more frequent.
    const user = this.user(Math.floor(g.next() ** 2 * r.users));
    const eventU = g.next();
    const sessionU = g.next();
    const insertU = g.next();
    const extraU = g.next();

    const loginEvent = name === 'Sign Up' || name === 'Log In' || name === '$identify';
    const identified = platform === 'server' || (user.identified && (loginEvent || eventU < 0.8));
    const deviceId = platform === 'server' ? undefined : this.deviceId(user, platform);

    w.begin(name, this.storedTime(timeInMs));
    // Simplified ID management: anonymous events carry `$device:<device id>`.
    if (identified || deviceId === undefined) userIdProperty(w, 'distinct_id', user);
    else w.safe2('distinct_id', '$device:', deviceId);
    const imported = platform === 'server' && this.backdated;
    if (imported) w.f(C.IMPORT_TRUE);
    if (platform === 'web') this.web(w, g, user, deviceId as string);
    else if (platform === 'ios' || platform === 'android') this.mobile(w, g, platform, user, deviceId as string);
    if (platform !== 'server' && identified) userIdProperty(w, '$user_id', user);
    if (!imported) w.g((C.GEO_GROUPS[user.geo] as readonly [Group, Group])[user.hasRegion ? 0 : 1]);
    // Server libraries often send no $insert_id; client SDKs always do, except a few old builds.
    if (insertU >= (platform === 'server' ? 0.25 : 0.02)) {
      if (platform === 'web') w.id('$insert_id', g, 'b36', 16 + g.int(20), '');
      else if (platform === 'server') w.id('$insert_id', g, 'hex', 32, '');
      else w.id('$insert_id', g, platform === 'ios' ? 'UUID' : 'uuid', 36, '');
    }
    w.f(platform === 'web' ? C.API_ENDPOINT_JS : C.API_ENDPOINT);
    w.num('$mp_api_timestamp_ms', this.apiMs);

    custom(w, g, name, extraU, user, deviceId);
    if (sessionU < 0.15) w.g(C.EXPERIMENTS[Math.floor(sessionU / 0.05)] as Group);
    if (identified && sessionU > 0.97) w.f(C.CUSTOMER_TIERS[sessionU > 0.99 ? 1 : 0] as Field);

    if (!imported) w.f(C.COUNTRY_FIELDS[user.geo] as Field);
    if (platform === 'server' && extraU < 0.7) w.f(C.SERVER_LIBS[extraU < 0.4 ? 0 : 1] as Field);
    if (this.large) {
      // 150..900 units: 16..100 KB.
      const units = 150 + g.int(C.LARGE_MAX_UNITS - 150);
      w.encoded(
        'page_snapshot',
        C.LARGE.jsonBytes.subarray(0, units * C.LARGE.unitJsonBytes),
        C.LARGE.text.slice(0, units * C.LARGE.unitChars),
      );
    }
    w.num('mp_processing_time_ms', this.processingMs);
  }

  private web(w: Writer, g: Rng, user: UserProfile, deviceId: string): void {
    const agent = C.WEB_AGENTS[user.agent] as C.WebAgent;
    const page = g.pick(C.PAGES);
    w.f(agent.browser);
    w.f(agent.version);
    w.f(page.url);
    w.safe('$device_id', deviceId);
    w.g(C.INITIAL_REFERRERS[user.initialReferrer] as Group);
    w.f(C.WEB_LIB_VERSION);
    w.f(agent.os);
    if (g.chance(0.4)) w.g(g.pick(C.REFERRER_GROUPS));
    w.g((agent.phone ? C.PHONE_SCREENS : C.DESKTOP_SCREENS)[user.screen] as Group);
    w.f(C.CURRENT_DOMAIN);
    w.f(g.pick(C.PAGE_TITLES));
    w.g(page.tail);
    w.g(C.WEB_TAIL);
  }

  private mobile(w: Writer, g: Rng, platform: 'ios' | 'android', user: UserProfile, deviceId: string): void {
    const ios = platform === 'ios';
    const device = (ios ? C.IOS_DEVICES[user.iosDevice] : C.ANDROID_DEVICES[user.androidDevice]) as C.Device;
    const carrier = C.CARRIERS[user.carrier] as Field;
    w.g(C.APP_VERSIONS[user.appVersion] as Group);
    if (!ios) w.f(C.BLUETOOTH[g.chance(0.6) ? 1 : 0]);
    // Without a SIM the SDKs send an empty carrier, or none at all.
    if (carrier.value !== '' || g.chance(0.5)) w.f(carrier);
    w.safe('$device_id', deviceId);
    if (ios) w.f(C.HAD_PERSISTED_DISTINCT_ID[g.chance(0.9) ? 1 : 0]);
    else w.f(C.HAS_NFC[g.chance(0.7) ? 1 : 0]);
    w.f(ios ? C.IOS_LIB_VERSION : C.ANDROID_LIB_VERSION);
    w.g(device.identity);
    w.g((ios ? C.IOS_OS[user.iosOs] : C.ANDROID_OS[user.androidOs]) as Group);
    if (ios) w.f(g.pick(C.RADIOS));
    w.g(user.wrapper === 0 ? device.screen : device.screenAsStrings);
    w.f(C.WIFI[g.chance(0.55) ? 1 : 0]);
    w.f(
      user.wrapper === 1
        ? C.MOBILE_LIBS.reactNative
        : user.wrapper === 2
          ? C.MOBILE_LIBS.flutter
          : C.MOBILE_LIBS[platform],
    );
  }
}

/** A property holding the user id (escaped only when it needs to be). */
function userIdProperty(w: Writer, key: string, user: UserProfile): void {
  if (user.userIdJson === undefined) w.safe(key, user.userId);
  else w.encoded(key, user.userIdJson, user.userId);
}

function custom(
  w: Writer,
  g: Rng,
  name: string,
  extraU: number,
  user: UserProfile,
  deviceId: string | undefined,
): void {
  switch (name) {
    case '$mp_web_page_view':
      if (extraU < 0.3) w.g(g.pick(C.UTM));
      break;
    case '$mp_click':
    case '$mp_rage_click':
      w.f(g.pick(C.EL_TAGS));
      w.f(g.pick(C.EL_TEXTS));
      w.f(g.pick(C.EL_CLASSES));
      w.f(C.CLICK);
      break;
    case 'Product Viewed':
      w.f(g.pick(C.PRODUCT_FIELDS));
      w.num('position', g.int(24));
      break;
    case 'Add To Cart':
      w.f(g.pick(C.PRODUCT_FIELDS));
      w.num('quantity', 1 + g.int(3));
      w.num('cart_size', 1 + g.int(8));
      break;
    case 'Search': {
      const k = g.int(C.QUERIES.length);
      w.f(C.QUERIES[k] as Field);
      w.num('results_count', (C.QUERIES[k] as Field).value === '' ? 0 : g.int(240));
      w.f(g.pick(C.SEARCH_FILTERS));
      break;
    }
    case 'Sign Up':
      w.f(g.pick(C.PLANS));
      w.f(g.pick(C.SIGNUP_METHODS));
      if (g.chance(0.7)) w.f(C.NO_REFERRAL_CODE);
      else w.id('referral_code', g, 'B36', 6, 'REF-');
      w.f(C.MARKETING_OPT_IN[g.chance(0.4) ? 1 : 0]);
      break;
    case 'Log In':
      w.f(g.pick(C.LOGIN_METHODS));
      w.f(C.LOGIN_SUCCESS);
      break;
    case '$identify':
      if (deviceId !== undefined) w.safe2('$anon_distinct_id', '$device:', deviceId);
      userIdProperty(w, '$identified_id', user);
      break;
    case 'Checkout Started':
      w.num('cart_value', Math.round(g.next() * 50_000) / 100);
      w.num('item_count', 1 + g.int(6));
      break;
    case 'Order Completed': {
      const n = 1 + g.int(4);
      const items: Array<(typeof C.ORDER_ITEMS)[number]> = [];
      let revenue = 0;
      for (let k = 0; k < n; k++) {
        const item = g.pick(C.ORDER_ITEMS);
        items.push(item);
        revenue += item.amount;
      }
      w.id('order_id', g, 'B36', 10, 'ORD-');
      w.num('revenue', Math.round(revenue * 100) / 100);
      w.f(g.pick(C.CURRENCIES));
      w.list('items', items);
      w.f(C.COUPONS[g.chance(0.8) ? 0 : 1] as Field);
      w.f(g.pick(C.SHIPPING));
      break;
    }
    case 'Video Played':
      w.id('video_id', g, 'b36', 8, 'vid_');
      w.num('duration_s', 30 + g.int(600));
      w.num('position_s', g.int(30));
      w.f(g.pick(C.VIDEO_QUALITIES));
      break;
    case '$ae_session':
      w.num('$ae_session_length', Math.round(g.next() * 180_000) / 100);
      break;
    case 'App Open':
      w.f(C.FIRST_OPEN[g.chance(0.05) ? 1 : 0]);
      w.f(C.FROM_BACKGROUND[g.chance(0.6) ? 1 : 0]);
      break;
    case 'Screen View':
    case '$mp_page_view':
      w.f(g.pick(C.SCREEN_NAME_FIELDS));
      w.f(g.pick(C.PREVIOUS_SCREENS));
      break;
    case '$ae_iap':
      w.g(g.pick(C.IAP_PRODUCTS));
      break;
    case '$ae_crashed':
      w.f(g.pick(C.CRASH_REASONS));
      break;
    case '$ae_updated': {
      const version = (C.APP_VERSIONS[user.appVersion] as Group).fields.find((f) => f.key === '$app_version_string');
      w.str('$ae_updated_version', String(version?.value));
      break;
    }
    case 'Push Notification Opened':
      w.num('campaign_id', 1000 + g.int(50));
      w.f(g.pick(C.PUSH_TITLES));
      break;
    case 'Subscription Renewed':
      w.f(g.pick(C.PLANS));
      w.f(g.pick(C.AMOUNTS));
      w.f(g.pick(C.CURRENCIES));
      w.f(g.pick(C.PERIODS));
      w.id('subscription_id', g, 'b36', 14, 'sub_');
      break;
    case 'Invoice Paid':
      w.id('invoice_id', g, 'b36', 14, 'in_');
      w.num('amount', Math.round(g.next() * 100_000) / 100);
      w.f(g.pick(C.CURRENCIES));
      w.f(C.LINE_ITEMS[g.chance(0.2) ? 1 : 0] as Field);
      break;
    case 'Refund Issued':
      w.id('order_id', g, 'B36', 10, 'ORD-');
      w.num('amount', Math.round(g.next() * 20_000) / 100);
      w.f(g.pick(C.REFUND_REASONS));
      break;
    case 'Email Sent':
      w.f(g.pick(C.EMAIL_TEMPLATES));
      w.f(g.pick(C.LOCALES));
      w.f(g.pick(C.EMAIL_SUBJECTS));
      break;
    default:
      break;
  }
}

/**
 * All lines of a dataset, in order (deterministic: the same spec yields the same sequence). Lazy and O(1) in memory.
 * Duplicate lines follow their original directly.
 */
export function* generateDataset(spec: DatasetSpec): Generator<MixpanelEvent> {
  const cursor = new DatasetCursor(spec);
  while (cursor.next()) yield cursor.event();
}

/**
 * The true UTC event time (ms) of an exported event, undoing the legacy project-local shift of `time`.
 *
 * `time` is read as seconds, or as ms when it is too large to be seconds (a `time_in_ms=true` export). In a legacy
 * project, a local time inside a fall-back overlap names two instants; the later one that is not after the event's
 * processing time is chosen (most events are processed seconds after they happen). A local time inside a
 * spring-forward gap names no instant; it is read with the offset in force a day earlier.
 */
export function trueEventTimeMs(
  e: MixpanelEvent,
  spec: Pick<DatasetSpec, 'projectTimezone' | 'legacyLocalTime'>,
): number {
  const raw = e.properties.time;
  const t = typeof raw === 'number' ? raw : Number(raw);
  if (!Number.isFinite(t)) return Number.NaN;
  const ms = Math.abs(t) >= 100_000_000_000 ? t : t * 1000;
  if (!(spec.legacyLocalTime ?? false)) return ms;
  const zone = zoneOffsets(spec.projectTimezone ?? 'UTC');
  const candidates = zone.fromLocal(ms);
  if (candidates.length === 1) return candidates[0] as number;
  if (candidates.length === 0) return ms - zone.offsetAt(ms - 86_400_000);
  const proc = e.properties.mp_processing_time_ms;
  const hint = typeof proc === 'number' ? proc : Number.POSITIVE_INFINITY;
  const notAfter = candidates.filter((c) => c <= hint);
  return notAfter.length > 0 ? (notAfter[notAfter.length - 1] as number) : (candidates[0] as number);
}
