/**
 * The mapper: one raw Mixpanel export event (already JSON-parsed) → one XDM ExperienceEvent, or a rejection with a
 * machine-readable reason. Pure (no I/O, no clock) and never throws for bad input. The output rules are a contract,
 * written in docs/xdm-mapping.md.
 *
 * `compileMapper` validates the config once and precompiles every path, table and conversion; the function it returns
 * does one pass over the event's properties, one SHA-256 for `_id` (plus one per hashed value) and one JSON.stringify
 * of the record. It reuses per-mapper scratch arrays, so a mapper must not be re-entered (it is synchronous).
 * Slightly over 400 lines: the per-event function is one hot loop over shared scratch state, kept in one closure.
 */
import { hash } from 'node:crypto';
import { type MappingConfig, MappingConfigError, type MappingPlan, resolveMapping, type Source } from './config.ts';
import { eventId } from './id.ts';
import type { AuthenticatedState } from './presets.ts';
import { type LocalTimeConverter, localTimeConverter } from '#common/zone-time';
import { IsoFormatter, MAX_DATE_MS, mixpanelTimeMs } from './event-time.ts';
import { C_REGION, CONVERSION_CODES, convert, identityText, textOf } from './convert.ts';
import { type CompiledRule, type CompiledRules, compileRules, ruleOf, writeRule } from './rules.ts';
import { subdivisionCode } from './geo.ts';

/**
 * Largest serialized record accepted: "The maximum record size is 1 MB, with the recommended size being 10 KB"
 * (https://experienceleague.adobe.com/en/docs/experience-platform/ingestion/guardrails, streaming). Adobe does not say
 * whether a MB is 10^6 or 2^20 bytes; the smaller reading is used, which also leaves room under 2^20 for the streaming
 * envelope (header + xdmMeta, well under 1 KB). Measured in UTF-8 bytes of `json`.
 */
export const MAX_RECORD_BYTES = 1_000_000;

/**
 * Largest ExperienceEvent Real-Time Customer Profile keeps: "Maximum ExperienceEvent size | 10KB | System-enforced
 * guardrail", larger events are dropped, size "measured as uncompressed data in JSON at time of ingestion"
 * (AdobeDocs/experience-platform.en help/profile/guardrails.md, data size limits). KB read as 10^3 bytes, the
 * stricter reading. Measured in UTF-8 bytes of `json`, like {@link MAX_RECORD_BYTES}.
 */
export const PROFILE_MAX_EVENT_BYTES = 10_000;

export interface MapperContext {
  /** Mixpanel project id (MIXPANEL_PROJECT_ID); part of `_id` and of `_{tenant}.mixpanel.projectId`. */
  projectId: string;
  /** AEP tenant id (AEP_TENANT_ID), without or with its leading underscore. */
  tenant: string;
  /** IANA zone of the project (MIXPANEL_PROJECT_TIMEZONE). */
  projectTimezone: string;
  /** MIXPANEL_LEGACY_LOCAL_TIME: `time` is project-local seconds (projects created before 2023). */
  legacyLocalTime: boolean;
  /** Override of {@link MAX_RECORD_BYTES}. */
  maxRecordBytes?: number;
  /**
   * The target dataset is enabled for Real-Time Customer Profile (AEP_PROFILE_ENABLED): records over
   * {@link PROFILE_MAX_EVENT_BYTES} are rejected as `too-large-for-profile`, records without identity as `no-identity`.
   */
  profile?: boolean;
}

export type RejectReason =
  | 'not-an-object'
  | 'missing-event'
  | 'missing-properties'
  | 'missing-time'
  | 'invalid-time'
  | 'record-too-large'
  | 'too-large-for-profile'
  | 'no-identity'
  | 'unmappable';

/**
 * One identityMap entry. XDM defaults (identityitem data type: `authenticatedState` "ambiguous", `primary` false)
 * are not written, which keeps records small (Adobe recommends 10 KB per record).
 */
export interface IdentityEntry {
  id: string;
  authenticatedState?: AuthenticatedState;
  primary?: true;
}

export type IdentityMap = Record<string, IdentityEntry[]>;

export interface XdmRecord {
  _id: string;
  timestamp: string;
  eventType?: string;
  identityMap?: IdentityMap;
  [field: string]: unknown;
}

/** `identified`: the record has an identityMap (Real-Time Profile can only use records that have one). */
export type MapOutcome =
  | { ok: true; id: string; record: XdmRecord; json: string; identified: boolean }
  | { ok: false; reason: RejectReason; detail: string };

export type Mapper = (event: unknown) => MapOutcome;

// Source codes.
const S_PROPERTY = 0;
const S_EVENT = 1;
const S_PROJECT_ID = 2;
const S_TIME_MS = 3;

/** XDM identityitem default of `authenticatedState`. */
const DEFAULT_AUTHENTICATED_STATE: AuthenticatedState = 'ambiguous';

/** Mixpanel's `time` property: consumed by `timestamp` and the time fields, never copied to the properties map. */
const TIME_KEY = 'time';
const DETAIL_PREVIEW_CHARS = 80;

interface CompiledField {
  source: number;
  /** Slot of the source property (S_PROPERTY, and S_TIME_MS → `time`), else -1. */
  slot: number;
  conversion: number;
  whenAbsent: boolean | undefined;
  /** Container holding the field, and the field's key in it. */
  container: number;
  key: string;
}

interface CompiledIdentity {
  slot: number;
  namespace: string;
  authenticatedState: AuthenticatedState;
  /** authenticatedState differs from the XDM default and is written. */
  authenticated: boolean;
}

/**
 * Validates the config against the context and precompiles it.
 * @throws MappingConfigError when the config or the context cannot be used (names every problem)
 */
export function compileMapper(config: MappingConfig, ctx: MapperContext): Mapper {
  const plan = resolveMapping(config, ctx.tenant, `mapping (preset ${config.preset}) for tenant ${ctx.tenant}`);
  const contextIssues: string[] = [];
  if (typeof ctx.projectId !== 'string' || ctx.projectId.length === 0) {
    contextIssues.push('MIXPANEL_PROJECT_ID: must be a non-empty project id');
  }
  let localTime: LocalTimeConverter | null = null;
  try {
    const converter = localTimeConverter(ctx.projectTimezone);
    if (ctx.legacyLocalTime) localTime = converter;
  } catch (error) {
    contextIssues.push(
      `MIXPANEL_PROJECT_TIMEZONE: "${ctx.projectTimezone}" is not an IANA time zone (${String(error)})`,
    );
  }
  const maxRecordBytes = ctx.maxRecordBytes ?? MAX_RECORD_BYTES;
  if (!Number.isSafeInteger(maxRecordBytes) || maxRecordBytes <= 0) {
    contextIssues.push(`maxRecordBytes: must be a positive integer, got ${String(ctx.maxRecordBytes)}`);
  }
  if (contextIssues.length > 0) {
    throw new MappingConfigError('mapper context', contextIssues, {
      hint: 'Fix these settings of the forwarder (see docs/architecture.md#configuration).',
    });
  }
  return buildMapper(plan, ctx.projectId, localTime, maxRecordBytes, ctx.profile === true);
}

function buildMapper(
  plan: MappingPlan,
  projectId: string,
  localTime: LocalTimeConverter | null,
  recordLimit: number,
  profile: boolean,
): Mapper {
  // Slots: every property the plan reads, drops or hashes, read once per event. A null-prototype object is the
  // fastest string-keyed lookup here (measured against Map) and has no inherited keys.
  const slotOf: Record<string, number | undefined> = Object.create(null) as Record<string, number | undefined>;
  const slotKeys: string[] = [];
  const slot = (key: string): number => {
    let s = slotOf[key];
    if (s === undefined) {
      s = slotKeys.length;
      slotKeys.push(key);
      slotOf[key] = s;
    }
    return s;
  };

  // Containers: node 0 is the record; each other node is an object created on first write.
  const containerParent: number[] = [-1];
  const containerKey: string[] = [''];
  const containerIndex = new Map<string, number>([['', 0]]);
  const container = (path: readonly string[]): number => {
    let index = 0;
    let joined = '';
    for (const segment of path) {
      joined += `\u0000${segment}`;
      let next = containerIndex.get(joined);
      if (next === undefined) {
        next = containerParent.length;
        containerParent.push(index);
        containerKey.push(segment);
        containerIndex.set(joined, next);
      }
      index = next;
    }
    return index;
  };

  const identities: CompiledIdentity[] = plan.identities.map((i) => ({
    slot: slot(i.key),
    namespace: i.namespace,
    authenticatedState: i.authenticatedState,
    authenticated: i.authenticatedState !== DEFAULT_AUTHENTICATED_STATE,
  }));
  const primaryIdentity = plan.identities.findIndex((i) => i.primary);

  const fields: CompiledField[] = plan.fields.map((f) => {
    const leaf = f.path[f.path.length - 1] ?? '';
    return {
      source: sourceCode(f.source),
      slot: f.source.kind === 'property' ? slot(f.source.key) : f.source.kind === 'timeMs' ? slot(TIME_KEY) : -1,
      conversion: CONVERSION_CODES[f.conversion],
      whenAbsent: f.whenAbsent,
      container: container(f.path.slice(0, -1)),
      key: leaf,
    };
  });
  // The properties map is built detached and attached to its parent container when it has an entry.
  const mapPath = plan.propertiesMapPath;
  const hasMap = mapPath !== null;
  const mapParent = mapPath === null ? 0 : container(mapPath.slice(0, -1));
  const mapKey = mapPath === null ? '' : (mapPath[mapPath.length - 1] ?? '');
  if (hasMap) slot(TIME_KEY);
  for (const key of plan.drop) slot(key);
  for (const key of plan.hash) slot(key);
  const rules: CompiledRules | null = compileRules(plan, slot, container);

  const slotCount = slotKeys.length;
  const slotDropped = new Uint8Array(slotCount);
  const slotHashed = new Uint8Array(slotCount);
  for (let s = 0; s < slotCount; s++) {
    const key = slotKeys[s] ?? '';
    slotDropped[s] = plan.drop.has(key) ? 1 : 0;
    slotHashed[s] = plan.hash.has(key) ? 1 : 0;
  }
  // Profile cannot use a record without identity, nor keep one over its event size limit.
  const requireIdentity = plan.requireIdentity || profile;
  const noIdentityWhy = profile
    ? 'Real-Time Customer Profile (AEP_PROFILE_ENABLED=true) cannot use a record without one'
    : "the mapping's requireIdentity says the dataset needs one";
  const maxRecordBytes = profile ? Math.min(recordLimit, PROFILE_MAX_EVENT_BYTES) : recordLimit;
  const timeSlot = slotOf[TIME_KEY] ?? -1;
  const containerCount = containerParent.length;
  const iso = new IsoFormatter();

  // Per-event scratch, reset after each call.
  const values: unknown[] = new Array<unknown>(slotCount).fill(undefined);
  const used = new Uint8Array(slotCount);
  const objects: Array<Record<string, unknown> | undefined> = new Array<Record<string, unknown> | undefined>(
    containerCount,
  ).fill(undefined);
  const idTexts: Array<string | undefined> = new Array<string | undefined>(identities.length).fill(undefined);

  const ensure = (index: number): Record<string, unknown> => {
    let obj = objects[index];
    if (obj === undefined) {
      obj = {};
      ensure(containerParent[index] ?? 0)[containerKey[index] ?? ''] = obj;
      objects[index] = obj;
    }
    return obj;
  };

  return function mapEvent(input: unknown): MapOutcome {
    if (input === null || typeof input !== 'object' || Array.isArray(input)) {
      return reject('not-an-object', `expected a JSON object, got ${describe(input)}`);
    }
    const event = input as Record<string, unknown>;
    const name = event.event;
    if (typeof name !== 'string' || name.length === 0) {
      return reject('missing-event', `"event" must be a non-empty string, got ${describe(name)}`);
    }
    const props = event.properties;
    if (props === null || typeof props !== 'object' || Array.isArray(props)) {
      return reject('missing-properties', `"properties" must be an object, got ${describe(props)}`);
    }
    const properties = props as Record<string, unknown>;
    const time = properties.time;
    if (time === undefined || time === null) return reject('missing-time', '"properties.time" is missing');
    if (typeof time !== 'number' || !Number.isFinite(time) || time <= 0) {
      return reject(
        'invalid-time',
        `"properties.time" must be a positive epoch seconds or milliseconds number, got ${describe(time)}`,
      );
    }
    const timeMs = mixpanelTimeMs(time);
    const instant = localTime === null ? timeMs : localTime.localToUtc(timeMs);
    if (!(instant >= 0 && instant <= MAX_DATE_MS)) {
      return reject('invalid-time', `"properties.time" ${time} is outside the representable date range`);
    }

    try {
      const id = eventId(projectId, event, name, properties, timeMs);
      const record: XdmRecord = { _id: id, timestamp: iso.format(instant) };
      objects[0] = record;
      let rule: CompiledRule | undefined;
      if (rules !== null) {
        rule = ruleOf(rules, name);
        record.eventType = rule.eventType;
      }

      // One pass over the properties: slot properties are kept for the fields and identities, every other property
      // goes straight to the properties map (nothing else reads it).
      let map: Record<string, unknown> | undefined;
      for (const key in properties) {
        const raw = properties[key];
        const s = slotOf[key];
        if (s !== undefined) {
          if (slotDropped[s] === 1 || raw === undefined) continue;
          if (slotHashed[s] === 1) {
            const text = textOf(raw);
            values[s] = text === undefined ? undefined : hash('sha256', text, 'hex');
          } else values[s] = raw;
        } else if (hasMap && key.length > 0) {
          const text = textOf(raw);
          if (text === undefined) continue;
          if (map === undefined) map = {};
          if (key === PROTO_KEY) defineOwn(map, key, text);
          else map[key] = text;
        }
      }

      if (identities.length > 0) {
        let primary = -1;
        for (let i = 0; i < identities.length; i++) {
          const identity = identities[i] as CompiledIdentity;
          const text = identityText(values[identity.slot]);
          idTexts[i] = text;
          if (text !== undefined) {
            used[identity.slot] = 1;
            if (primary < 0 || i === primaryIdentity) primary = i;
          }
        }
        if (primary >= 0) {
          const identityMap: IdentityMap = {};
          for (let i = 0; i < identities.length; i++) {
            const text = idTexts[i];
            if (text === undefined) continue;
            const identity = identities[i] as CompiledIdentity;
            const list = identityMap[identity.namespace];
            let same: IdentityEntry | undefined;
            if (list !== undefined) for (const entry of list) if (entry.id === text) same = entry;
            if (same === undefined) {
              same = identity.authenticated
                ? { id: text, authenticatedState: identity.authenticatedState }
                : { id: text };
              if (list === undefined) identityMap[identity.namespace] = [same];
              else list.push(same);
            }
            if (i === primary) same.primary = true;
          }
          record.identityMap = identityMap;
        }
      }
      const identified = record.identityMap !== undefined;
      if (!identified && requireIdentity) {
        return reject('no-identity', `no identity property of the mapping has a value; ${noIdentityWhy}`);
      }

      for (let f = 0; f < fields.length; f++) {
        const field = fields[f] as CompiledField;
        let value: unknown;
        switch (field.source) {
          case S_PROPERTY:
            if (slotDropped[field.slot] === 1) continue;
            value = values[field.slot];
            break;
          case S_EVENT:
            value = name;
            break;
          case S_PROJECT_ID:
            value = projectId;
            break;
          default: // S_TIME_MS
            if (slotDropped[field.slot] === 1) continue;
            value = timeMs;
            break;
        }
        let out =
          field.conversion === C_REGION ? regionOf(objects[field.container], value) : convert(value, field.conversion);
        if (out === undefined) {
          if (field.whenAbsent === undefined || (value !== undefined && value !== null)) continue;
          out = field.whenAbsent;
        } else if (field.slot >= 0) used[field.slot] = 1;
        ensure(field.container)[field.key] = out;
      }

      if (rules !== null && rule !== undefined) writeRule(rules, rule, record, values, ensure);

      // Slot properties written nowhere else also belong in the properties map (after the others: map order is free).
      if (hasMap) {
        for (let s = 0; s < slotCount; s++) {
          if (used[s] === 1 || s === timeSlot) continue;
          const text = textOf(values[s]);
          if (text === undefined) continue;
          if (map === undefined) map = {};
          const key = slotKeys[s] as string;
          if (key === PROTO_KEY) defineOwn(map, key, text);
          else map[key] = text;
        }
        if (map !== undefined) ensure(mapParent)[mapKey] = map;
      }

      const json = JSON.stringify(record);
      // UTF-8 needs 1–3 bytes per UTF-16 code unit: decide from the length alone when it can.
      if (
        json.length > maxRecordBytes ||
        (json.length * 3 > maxRecordBytes && Buffer.byteLength(json, 'utf8') > maxRecordBytes)
      ) {
        const size = Buffer.byteLength(json, 'utf8');
        if (size <= recordLimit) {
          const why = `over the ${maxRecordBytes}-byte ExperienceEvent limit of Real-Time Customer Profile`;
          return reject('too-large-for-profile', `the record is ${size} bytes, ${why} (Profile would drop it)`);
        }
        return reject(
          'record-too-large',
          `the record is ${size} bytes, over the ${recordLimit}-byte limit of one XDM record`,
        );
      }
      return { ok: true, id, record, json, identified };
    } catch (error) {
      return reject('unmappable', `mapping failed: ${error instanceof Error ? error.message : String(error)}`);
    } finally {
      // Reset the scratch state (and let go of this event's values).
      objects[0] = undefined;
      for (let c = 1; c < containerCount; c++) objects[c] = undefined;
      for (let s = 0; s < slotCount; s++) {
        values[s] = undefined;
        used[s] = 0;
      }
    }
  };
}

/** `__proto__` is a key like any other in a map, but assigning it on a plain object would set the prototype. */
const PROTO_KEY = '__proto__';

function defineOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function sourceCode(source: Source): number {
  switch (source.kind) {
    case 'property':
      return S_PROPERTY;
    case 'event':
      return S_EVENT;
    case 'projectId':
      return S_PROJECT_ID;
    default:
      return S_TIME_MS;
  }
}

function reject(reason: RejectReason, detail: string): MapOutcome {
  return { ok: false, reason, detail };
}

/** Short, bounded description of a bad value for a rejection detail. */
function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  const text =
    typeof value === 'string' ? JSON.stringify(value) : typeof value === 'object' ? 'an object' : String(value);
  const preview = text.length > DETAIL_PREVIEW_CHARS ? `${text.slice(0, DETAIL_PREVIEW_CHARS)}…` : text;
  return typeof value === 'object' ? preview : `${preview} (${typeof value})`;
}

/** `placeContext.geo.stateProvince`: the region's ISO 3166-2 code in the country already written next to it. */
function regionOf(geo: Record<string, unknown> | undefined, value: unknown): string | undefined {
  const country = geo?.countryCode;
  return typeof country === 'string' && typeof value === 'string' ? subdivisionCode(country, value) : undefined;
}
