/**
 * Pure validation of what Adobe Experience Platform would accept: one streaming message envelope, or one XDM
 * ExperienceEvent record (a `body.xdmEntity`, or one line of a batch ingestion JSON file). No I/O, no clock: the caller
 * passes `nowMs`. Used by the DCS (streaming) and the batch ingestion paths of the AEP emulator.
 *
 * Real Platform checks a streamed message's envelope synchronously and validates its record asynchronously (a bad
 * record lands in a failed batch of the dataset): `checkStreamingMessage` tells the two apart, and the caller decides
 * when a record-level refusal is reported.
 */

import { PRODUCT_LIST_ITEM_TYPES, STANDARD_FIELD_TYPES, typeViolation } from './xdm-fields.ts';

/** `schemaRef.contentType` of an XDM message in full (not patch) format, for schema version 1.0:
 * `application/vnd.adobe.xed-full+json;version={SCHEMA_VERSION}` (streaming-ingestion.yaml, `SchemaReference`).
 * https://github.com/AdobeDocs/experience-platform-apis/blob/main/static/swagger-specs/streaming-ingestion.yaml */
export const XDM_FULL_CONTENT_TYPE = 'application/vnd.adobe.xed-full+json;version=1.0';

/** The content type naming a schema version. */
export function xdmFullContentType(schemaVersion: string): string {
  return `application/vnd.adobe.xed-full+json;version=${schemaVersion}`;
}

/** "The maximum record size is 1 MB". Adobe does not say whether 1 MB is 10^6 or 2^20 bytes: the stricter
 * 10^6 is enforced, so a record that fits here fits there.
 * https://github.com/AdobeDocs/experience-platform.en/blob/main/help/ingestion/guardrails.md */
export const MAX_RECORD_BYTES = 1_000_000;

/** Streaming validation "will stop processing that message" once five errors are found.
 * https://github.com/AdobeDocs/experience-platform.en/blob/main/help/ingestion/quality/streaming-validation.md */
export const MAX_PROBLEMS_PER_RECORD = 5;

/** How far in the future a `timestamp` may lie before it is refused (clock skew between producer and Platform).
 * Adobe documents "in the past" without a tolerance; five minutes is the emulator's choice. */
export const DEFAULT_FUTURE_SKEW_MS = 5 * 60_000;

/**
 * Top-level fields of the XDM ExperienceEvent class and of Adobe's standard ExperienceEvent field groups
 * (https://github.com/adobe/xdm: components/classes/experienceevent.schema.json, data/time-series, context/identitymap
 * and the standard field groups). Anything else at the top level must live under the tenant object `_{tenant}`.
 * `_experience` (Adobe-application field groups) is left out: a dataset built for this connector does not carry it.
 */
export const STANDARD_EXPERIENCE_EVENT_FIELDS: ReadonlySet<string> = new Set([
  '_id',
  'timestamp',
  'eventType',
  'eventMergeId',
  'identityMap',
  'producedBy',
  'dataSource',
  'receivedTimestamp',
  'endUserIDs',
  'web',
  'environment',
  'device',
  'placeContext',
  'commerce',
  'productListItems',
  'application',
  'marketing',
  'channel',
  'search',
  'media',
  'advertising',
  'directMarketing',
  'userActivityRegion',
]);

/** Allowed `authenticatedState` values of an identityMap entry (XDM identityitem). */
const AUTHENTICATED_STATES: ReadonlySet<string> = new Set(['ambiguous', 'authenticated', 'loggedOut']);
const IDENTITY_ITEM_KEYS: ReadonlySet<string> = new Set(['id', 'primary', 'authenticatedState']);

/** Date-time forms Platform accepts, as listed in its validation message:
 * `yyyy-MM-dd'T'HH:mm:ssZ`, with up to 9 fraction digits, with `Z` or `±HH:mm`.
 * https://github.com/AdobeDocs/experience-platform.en/blob/main/help/ingestion/quality/retrieve-failed-batches.md */
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-](\d{2}):(\d{2}))$/;
const DATE_TIME_EXPECTED =
  "Expected [yyyy-MM-dd'T'HH:mm:ssZ, yyyy-MM-dd'T'HH:mm:ss.[0-9]{1,9}Z, yyyy-MM-dd'T'HH:mm:ss[+-]HH:mm, " +
  "yyyy-MM-dd'T'HH:mm:ss.[0-9]{1,9}[+-]HH:mm]";

/** One schema violation, shaped like Platform's `_streamingValidation` / `_validationErrors` entries. */
export interface XdmProblem {
  /** JSON pointer of the offending value, `#/_acme/mixpanel/plan`. */
  readonly pointerToViolation: string;
  readonly keyword:
    | 'required'
    | 'type'
    | 'format'
    | 'additionalProperties'
    | 'minLength'
    | 'minItems'
    | 'minProperties'
    | 'enum'
    | 'maxLength'
    | 'future'
    | 'pattern'
    | 'minimum';
  readonly message: string;
}

export interface RecordCheckOptions {
  /** Tenant id, without the leading underscore (`acme` → custom fields under `_acme`). */
  readonly tenant: string;
  /** "Now", in epoch milliseconds: timestamps later than `nowMs + futureSkewMs` are refused. */
  readonly nowMs: number;
  /** @default DEFAULT_FUTURE_SKEW_MS */
  readonly futureSkewMs?: number;
  /** Serialised size of the record when the caller knows it (a batch file line); checked against MAX_RECORD_BYTES. */
  readonly sizeBytes?: number;
  /** Batch ingestion converts epoch-millisecond numbers to date-time; streaming validation wants the string form.
   * https://github.com/AdobeDocs/experience-platform.en/blob/main/help/ingestion/batch-ingestion/api-overview.md
   * @default false */
  readonly allowEpochMillisTimestamp?: boolean;
  /** Checks against the schema the dataset was provisioned with (setup.ts), after the class-level checks. */
  readonly schemaCheck?: (record: Record<string, unknown>, datasetId: string | undefined) => XdmProblem[];
  /** The record's dataset, for `schemaCheck`. */
  readonly datasetId?: string;
}

/**
 * Checks one XDM ExperienceEvent record. Returns the violations found (empty when Platform would accept it), at most
 * MAX_PROBLEMS_PER_RECORD of them.
 */
export function checkXdmRecord(record: unknown, options: RecordCheckOptions): XdmProblem[] {
  const problems: XdmProblem[] = [];
  if (!isPlainObject(record)) {
    problems.push({
      pointerToViolation: '#',
      keyword: 'type',
      message: `expected type: JSONObject, found: ${typeName(record)}`,
    });
    return problems;
  }
  if (options.sizeBytes !== undefined && options.sizeBytes > MAX_RECORD_BYTES) {
    problems.push({
      pointerToViolation: '#',
      keyword: 'maxLength',
      message: `record is ${options.sizeBytes} bytes, over the ${MAX_RECORD_BYTES}-byte record limit`,
    });
  }
  const tenantKey = `_${options.tenant.replace(/^_/, '')}`;

  checkId(record._id, problems);
  checkTimestamp(record.timestamp, options, problems);
  if ('eventType' in record && record.eventType !== null && typeof record.eventType !== 'string') {
    add(problems, '#/eventType', 'type', `expected type: String, found: ${typeName(record.eventType)}`);
  }

  for (const key of Object.keys(record)) {
    if (problems.length >= MAX_PROBLEMS_PER_RECORD) break;
    const value = record[key];
    if (key !== tenantKey && !STANDARD_EXPERIENCE_EVENT_FIELDS.has(key)) {
      const hint = key.startsWith('_') ? ` (custom fields belong under ${tenantKey})` : '';
      add(problems, '#', 'additionalProperties', `extraneous key [${key}] is not permitted${hint}`);
      continue;
    }
    if (key === 'identityMap') {
      checkIdentityMap(value, problems);
      continue;
    }
    if (key === '_id' || key === 'timestamp') continue; // checked above, with a precise message
    checkNoEmpty(value, `#/${escapePointer(key)}`, problems);
  }
  checkStandardFields(record, problems);
  if (options.schemaCheck !== undefined) problems.push(...options.schemaCheck(record, options.datasetId));
  return problems.slice(0, MAX_PROBLEMS_PER_RECORD);
}

/** Types of the standard fields (xdm-fields.ts), and of each productListItems entry. */
function checkStandardFields(record: Record<string, unknown>, problems: XdmProblem[]): void {
  for (const [path, type] of STANDARD_FIELD_TYPES) {
    let value: unknown = record;
    for (const segment of path.split('.')) value = isPlainObject(value) ? value[segment] : undefined;
    if (value === undefined || value === null) continue;
    const violation = typeViolation(value, type);
    if (violation !== undefined) add(problems, `#/${path.replaceAll('.', '/')}`, violation.keyword, violation.message);
  }
  const items = record.productListItems;
  if (items === undefined) return;
  if (!Array.isArray(items)) {
    add(problems, '#/productListItems', 'type', `expected type: JSONArray, found: ${typeName(items)}`);
    return;
  }
  items.forEach((item: unknown, i) => {
    if (!isPlainObject(item)) return;
    for (const [key, type] of PRODUCT_LIST_ITEM_TYPES) {
      const value = item[key];
      const violation = value === undefined || value === null ? undefined : typeViolation(value, type);
      if (violation === undefined) continue;
      add(problems, `#/productListItems/${i}/${key}`, violation.keyword, violation.message);
    }
  });
}

function checkId(id: unknown, problems: XdmProblem[]): void {
  if (id === undefined) add(problems, '#', 'required', 'required key [_id] not found');
  else if (typeof id !== 'string') add(problems, '#/_id', 'type', `expected type: String, found: ${typeName(id)}`);
  else if (id.length === 0) add(problems, '#/_id', 'minLength', 'expected minLength: 1, actual: 0');
}

function checkTimestamp(ts: unknown, options: RecordCheckOptions, problems: XdmProblem[]): void {
  if (ts === undefined) {
    add(problems, '#', 'required', 'required key [timestamp] not found');
    return;
  }
  let ms: number;
  if (typeof ts === 'number' && options.allowEpochMillisTimestamp === true && Number.isInteger(ts)) {
    ms = ts;
  } else if (typeof ts === 'string') {
    const parsed = parseDateTime(ts);
    if (parsed === undefined) {
      add(problems, '#/timestamp', 'format', `[${ts}] is not a valid date-time. ${DATE_TIME_EXPECTED}`);
      return;
    }
    ms = parsed;
  } else {
    add(problems, '#/timestamp', 'type', `expected type: String, found: ${typeName(ts)}`);
    return;
  }
  const skew = options.futureSkewMs ?? DEFAULT_FUTURE_SKEW_MS;
  if (ms > options.nowMs + skew) {
    add(
      problems,
      '#/timestamp',
      'future',
      `[${String(ts)}] is in the future (now is ${new Date(options.nowMs).toISOString()}); an ExperienceEvent records what already happened`,
    );
  }
}

/** Parses an XDM date-time string strictly (real calendar dates only); undefined when it is not one. */
export function parseDateTime(value: string): number | undefined {
  const m = DATE_TIME.exec(value);
  if (m === null) return undefined;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) return undefined;
  if (Number(m[4]) > 23 || Number(m[5]) > 59 || Number(m[6]) > 59) return undefined;
  if (m[9] !== undefined && (Number(m[9]) > 23 || Number(m[10]) > 59)) return undefined;
  // Date.parse copes with any number of fraction digits but keeps milliseconds only, which is all we compare on.
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(year: number, month: number): number {
  const leap = month === 2 && year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return leap ? 29 : (DAYS_IN_MONTH[month - 1] as number);
}

function checkIdentityMap(value: unknown, problems: XdmProblem[]): void {
  if (!isPlainObject(value)) {
    add(problems, '#/identityMap', 'type', `expected type: JSONObject, found: ${typeName(value)}`);
    return;
  }
  const namespaces = Object.keys(value);
  if (namespaces.length === 0) {
    add(problems, '#/identityMap', 'minProperties', 'empty object is not permitted: omit the key');
    return;
  }
  let primaries = 0;
  for (const ns of namespaces) {
    const pointer = `#/identityMap/${escapePointer(ns)}`;
    const items = value[ns];
    if (!Array.isArray(items)) {
      add(problems, pointer, 'type', `expected type: JSONArray, found: ${typeName(items)}`);
      continue;
    }
    if (items.length === 0) {
      add(problems, pointer, 'minItems', 'expected minimum item count: 1, found: 0');
      continue;
    }
    for (let i = 0; i < items.length; i += 1) {
      const item: unknown = items[i];
      const itemPointer = `${pointer}/${i}`;
      if (!isPlainObject(item)) {
        add(problems, itemPointer, 'type', `expected type: JSONObject, found: ${typeName(item)}`);
        continue;
      }
      for (const key of Object.keys(item)) {
        if (!IDENTITY_ITEM_KEYS.has(key))
          add(problems, itemPointer, 'additionalProperties', `extraneous key [${key}] is not permitted`);
      }
      const id = item.id;
      if (typeof id !== 'string') {
        add(
          problems,
          `${itemPointer}/id`,
          id === undefined ? 'required' : 'type',
          id === undefined ? 'required key [id] not found' : `expected type: String, found: ${typeName(id)}`,
        );
      } else if (id.length === 0) {
        add(problems, `${itemPointer}/id`, 'minLength', 'expected minLength: 1, actual: 0');
      }
      const primary = item.primary;
      if (primary !== undefined && typeof primary !== 'boolean') {
        add(problems, `${itemPointer}/primary`, 'type', `expected type: Boolean, found: ${typeName(primary)}`);
      } else if (primary === true) {
        primaries += 1;
      }
      const state = item.authenticatedState;
      if (state !== undefined && (typeof state !== 'string' || !AUTHENTICATED_STATES.has(state))) {
        add(
          problems,
          `${itemPointer}/authenticatedState`,
          'enum',
          `${JSON.stringify(state)} is not a valid enum value (ambiguous, authenticated, loggedOut)`,
        );
      }
    }
  }
  if (primaries > 1) {
    add(problems, '#/identityMap', 'enum', `${primaries} identities are marked primary; at most one may be`);
  }
}

/**
 * Platform refuses null and empty values anywhere: the key must be omitted instead. This walk runs on every node of
 * every record, so it is iterative (no stack overflow on deep nesting) and builds a pointer only for a violation: the
 * stack holds (value, depth, key) in parallel arrays and `path[d]` is the key at depth d of the node being visited.
 */
function checkNoEmpty(root: unknown, rootPointer: string, problems: XdmProblem[]): void {
  const values: unknown[] = [root];
  const depths: number[] = [0];
  const keys: string[] = [''];
  const path: string[] = [];
  while (values.length > 0 && problems.length < MAX_PROBLEMS_PER_RECORD) {
    const value = values.pop();
    const depth = depths.pop() as number;
    path[depth] = keys.pop() as string;
    if (value === null) {
      add(problems, pointerAt(rootPointer, path, depth), 'type', 'null value is not permitted: omit the key');
    } else if (typeof value === 'string') {
      if (value.length === 0)
        add(problems, pointerAt(rootPointer, path, depth), 'minLength', 'empty string is not permitted: omit the key');
    } else if (Array.isArray(value)) {
      if (value.length === 0)
        add(problems, pointerAt(rootPointer, path, depth), 'minItems', 'empty array is not permitted: omit the key');
      for (let i = value.length - 1; i >= 0; i -= 1) {
        values.push(value[i]);
        depths.push(depth + 1);
        keys.push(String(i));
      }
    } else if (typeof value === 'object') {
      const names = Object.keys(value);
      if (names.length === 0)
        add(
          problems,
          pointerAt(rootPointer, path, depth),
          'minProperties',
          'empty object is not permitted: omit the key',
        );
      for (let i = names.length - 1; i >= 0; i -= 1) {
        const name = names[i] as string;
        values.push((value as Record<string, unknown>)[name]);
        depths.push(depth + 1);
        keys.push(name);
      }
    }
  }
}

/** JSON pointer of the node at `depth` below `rootPointer`, from the keys in `path[1..depth]`. */
function pointerAt(rootPointer: string, path: readonly string[], depth: number): string {
  let pointer = rootPointer;
  for (let d = 1; d <= depth; d += 1) pointer += `/${escapePointer(path[d] as string)}`;
  return pointer;
}

// ---------------------------------------------------------------------------------------------------------------
// Streaming message envelope
// ---------------------------------------------------------------------------------------------------------------

export interface EnvelopeContext {
  /** Dataset id → schema `$id`. */
  readonly datasets: ReadonlyMap<string, string>;
  /** Dataset id → schema version named in `schemaRef.contentType` (absent: '1.0'). */
  readonly schemaVersions?: ReadonlyMap<string, string>;
  /** Organisations the sender may write for (the token's org, or the inlet's when unauthenticated). */
  readonly orgIds: ReadonlySet<string>;
  /** HTTP API dataflows by id, and the connection the message came in on. */
  readonly flows: ReadonlyMap<string, { readonly connectionId: string; readonly datasetId: string }>;
  readonly connectionId: string;
}

/** A record-level refusal: what the failed batch file holds for it (the record, plus `_validationErrors`/`_errors`). */
export interface InvalidRecord {
  readonly datasetId: string;
  readonly entity: Record<string, unknown> | undefined;
  readonly errors: Record<string, unknown>;
}

export type EnvelopeResult =
  | { readonly ok: true; readonly datasetId: string; readonly entity: Record<string, unknown> }
  /** `message` follows DCS's wording ("Message has unknown xdm format", ...), with the reason after a colon.
   * `invalid` is set when the envelope was fine and the record is what failed (Platform reports it asynchronously). */
  | {
      readonly ok: false;
      readonly message: string;
      readonly problems?: XdmProblem[];
      readonly invalid?: InvalidRecord;
    };

/**
 * Checks a streaming message envelope (`header` + `body.xdmMeta` + `body.xdmEntity`) and then its record.
 * Wording of the DCS messages: https://github.com/AdobeDocs/experience-platform.en/blob/main/help/ingestion/tutorials/streaming-multiple-messages.md
 * and help/ingestion/quality/retrieve-failed-batches.md.
 */
export function checkStreamingMessage(
  message: unknown,
  envelope: EnvelopeContext,
  options: RecordCheckOptions,
): EnvelopeResult {
  if (!isPlainObject(message)) return unknownFormat('a message must be a JSON object with header and body');
  const header = message.header;
  const body = message.body;
  if (!isPlainObject(header)) return unknownFormat('header is missing');
  if (!isPlainObject(body)) return unknownFormat('body is missing');

  const org = header.imsOrgId;
  if (typeof org !== 'string' || !envelope.orgIds.has(org)) {
    return { ok: false, message: 'Message has an absent or wrong ims org in the header' };
  }
  const headerRef = header.schemaRef;
  if (!isPlainObject(headerRef) || typeof headerRef.id !== 'string')
    return unknownFormat('header.schemaRef.id is missing');
  const datasetId = header.datasetId;
  if (typeof datasetId !== 'string') return unknownFormat('header.datasetId is missing');
  const datasetSchema = envelope.datasets.get(datasetId);
  if (datasetSchema === undefined) return { ok: false, message: `Dataset [${datasetId}] does not exist` };
  const contentType = xdmFullContentType(envelope.schemaVersions?.get(datasetId) ?? '1.0');
  if (headerRef.contentType !== contentType) {
    return unknownFormat(
      `header.schemaRef.contentType must be ${contentType}, found ${JSON.stringify(headerRef.contentType)}`,
    );
  }
  if (datasetSchema !== headerRef.id) {
    return unknownFormat(
      `header.schemaRef.id [${headerRef.id}] is not the schema of dataset [${datasetId}] (${datasetSchema})`,
    );
  }
  // `flowId` is required in the message header (streaming-ingestion.yaml `messageHeader.required`); an HTTP API
  // dataflow ties one connection to one dataset (help/sources/tutorials/api/create/streaming/http.md). Adobe does not
  // publish the refusal's wording: the emulator's.
  const flowId = header.flowId;
  if (typeof flowId !== 'string' || flowId === '') return unknownFormat('header.flowId is missing');
  const flow = envelope.flows.get(flowId);
  if (flow === undefined) return { ok: false, message: `Message has an unknown flowId [${flowId}]: no such dataflow` };
  if (flow.connectionId !== envelope.connectionId || flow.datasetId !== datasetId) {
    return {
      ok: false,
      message:
        `Message has a wrong flowId [${flowId}]: ` +
        `the dataflow does not write from this connection to dataset [${datasetId}]`,
    };
  }
  const source = header.source;
  if (source !== undefined && !isPlainObject(source)) return unknownFormat('header.source must be an object');
  const meta = body.xdmMeta;
  const bodyRef = isPlainObject(meta) ? meta.schemaRef : undefined;
  if (!isPlainObject(bodyRef) || bodyRef.id !== headerRef.id || bodyRef.contentType !== headerRef.contentType) {
    return unknownFormat('body.xdmMeta.schemaRef must repeat header.schemaRef');
  }

  // Record level: what asynchronous validation puts in the failed batch (retrieve-failed-batches.md shows these
  // messages in a failed file). The spec calls `source.name` optional; the failed-batch guide lists its absence as an
  // error: the stricter reading is taken.
  const entity = body.xdmEntity;
  if (entity === undefined) {
    const message = 'Payload body is missing xdmEntity';
    return {
      ok: false,
      message,
      invalid: { datasetId, entity: undefined, errors: { _validationErrors: [{ message }] } },
    };
  }
  const record = isPlainObject(entity) ? entity : undefined;
  if (!isPlainObject(source) || typeof source.name !== 'string' || source.name === '') {
    const message = 'Payload header is missing Source Name';
    return {
      ok: false,
      message,
      invalid: { datasetId, entity: record, errors: { _errors: { _streamingValidation: [{ message }] } } },
    };
  }
  const problems = checkXdmRecord(entity, options.schemaCheck === undefined ? options : { ...options, datasetId });
  if (problems.length > 0) {
    const detail = problems.map((p) => `${p.pointerToViolation}: ${p.message}`).join('; ');
    const validationErrors = problems.map((p) => ({ ...p, schemaLocation: '#', causingExceptions: [] }));
    return {
      ok: false,
      message: `Message is invalid: ${problems.length} schema violations found: ${detail}`,
      problems,
      invalid: { datasetId, entity: record, errors: { _validationErrors: validationErrors } },
    };
  }
  return { ok: true, datasetId, entity: entity as Record<string, unknown> };
}

// ---------------------------------------------------------------------------------------------------------------

function unknownFormat(why: string): EnvelopeResult {
  return { ok: false, message: `Message has unknown xdm format: ${why}` };
}

function add(
  problems: XdmProblem[],
  pointerToViolation: string,
  keyword: XdmProblem['keyword'],
  message: string,
): void {
  if (problems.length < MAX_PROBLEMS_PER_RECORD) problems.push({ pointerToViolation, keyword, message });
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'JSONArray';
  switch (typeof value) {
    case 'string':
      return 'String';
    case 'number':
      return Number.isInteger(value) ? 'Long' : 'Double';
    case 'boolean':
      return 'Boolean';
    case 'object':
      return 'JSONObject';
    default:
      return typeof value;
  }
}

function escapePointer(key: string): string {
  return key.includes('~') || key.includes('/') ? key.replace(/~/g, '~0').replace(/\//g, '~1') : key;
}
