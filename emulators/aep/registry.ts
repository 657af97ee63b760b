/**
 * Schema Registry emulation (AdobeDocs/experience-platform-apis static/swagger-specs/schema-registry.yaml,
 * experience-platform.en help/xdm/api/): `/stats`, tenant field groups, tenant schemas of class XDM ExperienceEvent,
 * and identity descriptors. A schema created here is what ingestion then validates records against
 * ({@link SchemaRegistry.checkRecord}), so a provisioned emulator and the mapper must agree.
 */
import { randomBytes } from 'node:crypto';
import { type Exchange, header, parseJson, readBody, sendJson } from './http.ts';
import type { XdmProblem } from './xdm-checks.ts';

type Json = Record<string, unknown>;

/** The XDM ExperienceEvent class (adobe/xdm components/classes/experienceevent.schema.json). */
export const EXPERIENCE_EVENT_CLASS = 'https://ns.adobe.com/xdm/context/experienceevent';

/**
 * Fields the class brings: `_id` and `timestamp` (data/time-series), `identityMap` (context/identitymap), `eventType`
 * and `eventMergeId` (experienceevent.schema.json `definitions.experienceevent`).
 */
const CLASS_FIELDS = ['_id', 'timestamp', 'eventType', 'eventMergeId', 'identityMap'];

/**
 * Adobe's standard ExperienceEvent field groups the emulator knows, with the top-level fields each adds (adobe/xdm
 * components/fieldgroups/experience-event/experienceevent-*.schema.json, `definitions.*.properties`).
 */
export const STANDARD_FIELD_GROUPS: Readonly<Record<string, readonly string[]>> = {
  'https://ns.adobe.com/xdm/context/experienceevent-web': ['web'],
  'https://ns.adobe.com/xdm/context/experienceevent-environment-details': ['environment', 'device', 'placeContext'],
  'https://ns.adobe.com/xdm/context/experienceevent-commerce': ['commerce', 'productListItems'],
  'https://ns.adobe.com/xdm/context/experienceevent-application': ['application'],
  'https://ns.adobe.com/xdm/context/experienceevent-marketing': ['marketing'],
  'https://ns.adobe.com/xdm/context/experienceevent-search': ['search'],
  'https://ns.adobe.com/xdm/context/experienceevent-channel': ['channel'],
  'https://ns.adobe.com/xdm/context/experienceevent-enduserids': ['endUserIDs'],
  'https://ns.adobe.com/xdm/context/experienceevent-advertising': ['advertising'],
  'https://ns.adobe.com/xdm/context/experienceevent-directmarketing': ['directMarketing'],
};

/** JSON Schema types a custom field may have (help/xdm/tutorials/custom-fields-api.md). */
const FIELD_TYPES = new Set(['string', 'integer', 'number', 'boolean', 'object', 'array']);

/** Listing and lookup Accept headers (schema-registry.yaml parameters `acceptListing`, `accept`). */
const LISTING_ACCEPT = /^application\/vnd\.adobe\.xed(-id)?\+json$/;
const LOOKUP_ACCEPT = /^application\/vnd\.adobe\.xed(-full)?(-notext)?(-desc)?\+json;\s*version=\d+/;
/** Descriptors use `xdm` instead of `xed` (schema-registry.yaml `acceptDescriptors`). */
const DESCRIPTOR_ACCEPT = /^application\/vnd\.adobe\.xdm(-v2)?(-id|-link)?\+json$/;

export interface RegistryAnswer {
  readonly status: number;
  readonly body?: unknown;
}

/** Whether an identity namespace code exists (the Identity Service emulation answers). */
export type NamespaceLookup = (code: string) => boolean;

/** The tenant container of one sandbox. */
export class SchemaRegistry {
  readonly #tenant: string;
  readonly #orgId: string;
  readonly #hasNamespace: NamespaceLookup;
  readonly fieldGroups = new Map<string, Json>();
  readonly schemas = new Map<string, Json>();
  readonly descriptors: Json[] = [];

  constructor(tenant: string, orgId: string, hasNamespace: NamespaceLookup) {
    this.#tenant = tenant;
    this.#orgId = orgId;
    this.#hasNamespace = hasNamespace;
  }

  /** Routes one `/data/foundation/schemaregistry/...` request; undefined when no route matches. */
  async serve(ex: Exchange, rest: string): Promise<RegistryAnswer | undefined> {
    const accept = header(ex, 'accept') ?? '';
    if (rest === '/stats' && ex.method === 'GET') {
      return { status: 200, body: { imsOrg: this.#orgId, tenantId: this.#tenant, counts: this.#counts() } };
    }
    const m = /^\/tenant\/(fieldgroups|schemas|descriptors)(?:\/(.+))?$/.exec(rest);
    if (m === null) return undefined;
    const [kind, id] = [m[1] as 'fieldgroups' | 'schemas' | 'descriptors', m[2]];
    if (kind === 'descriptors') return this.#descriptors(ex, accept, id);
    const store = kind === 'fieldgroups' ? this.fieldGroups : this.schemas;
    if (ex.method === 'GET' && id === undefined) {
      if (!LISTING_ACCEPT.test(accept)) {
        return bad(`Accept must be application/vnd.adobe.xed-id+json or xed+json for a listing, got "${accept}"`);
      }
      const results = filter([...store.values()], ex.query.get('property'));
      const shortForm = accept.includes('xed-id');
      const page = { count: results.length, next: null };
      return { status: 200, body: { results: shortForm ? results.map(summary) : results, _page: page } };
    }
    if (ex.method === 'GET' && id !== undefined) {
      if (!LOOKUP_ACCEPT.test(accept)) {
        const wanted = 'application/vnd.adobe.xed+json; version=1';
        return bad(`Accept must name a version for a lookup (${wanted}), got "${accept}"`);
      }
      const found = this.#lookup(store, id);
      return found === undefined ? notFound(id) : { status: 200, body: found };
    }
    const body = await readJson(ex);
    if ('error' in body) return bad(body.error);
    if (ex.method === 'POST' && id === undefined) {
      return kind === 'fieldgroups' ? this.#createFieldGroup(body.value) : this.#createSchema(body.value);
    }
    if (id === undefined) return undefined;
    const found = this.#lookup(store, id);
    if (found === undefined) return notFound(id);
    if (ex.method === 'PUT' && kind === 'fieldgroups') return this.#replaceFieldGroup(found, body.value);
    if (ex.method === 'PATCH' && kind === 'schemas') return this.#patchSchema(found, body.value);
    return undefined;
  }

  /**
   * Validates a record against the schema a dataset was created with: top-level fields only from the class and the
   * schema's field groups, and the tenant object only with the fields and types of its tenant field groups.
   * @returns problems, or undefined when the schema is not one this registry holds (configured datasets)
   */
  checkRecord(record: Json, schemaId: string): XdmProblem[] | undefined {
    const schema = this.schemas.get(schemaId);
    if (schema === undefined) return undefined;
    const refs = refsOf(schema);
    const allowed = new Set(CLASS_FIELDS);
    const tenantKey = `_${this.#tenant}`;
    const tenantProps: Json = {};
    for (const ref of refs) {
      for (const field of STANDARD_FIELD_GROUPS[ref] ?? []) allowed.add(field);
      const group = this.fieldGroups.get(ref);
      if (group === undefined) continue;
      allowed.add(tenantKey);
      for (const def of Object.values(asObject(group.definitions))) {
        mergeInto(tenantProps, asObject(asObject(asObject(asObject(def).properties)[tenantKey]).properties));
      }
    }
    const problems: XdmProblem[] = [];
    for (const key of Object.keys(record)) {
      if (!allowed.has(key)) {
        const message = `extraneous key [${key}] is not permitted by schema ${schemaId}`;
        problems.push({ pointerToViolation: '#', keyword: 'additionalProperties', message });
      }
    }
    if (allowed.has(tenantKey) && record[tenantKey] !== undefined) {
      checkValue(record[tenantKey], { type: 'object', properties: tenantProps }, `#/${tenantKey}`, problems);
    }
    return problems;
  }

  #counts(): Json {
    return { schemas: this.schemas.size, mixins: this.fieldGroups.size, datatypes: 0, classes: 0, unions: 0 };
  }

  #lookup(store: Map<string, Json>, id: string): Json | undefined {
    return store.get(id) ?? [...store.values()].find((r) => r['meta:altId'] === id);
  }

  #newId(kind: 'mixins' | 'schemas'): { $id: string; 'meta:altId': string } {
    const hex = randomBytes(24).toString('hex');
    const tenant = this.#tenant;
    return { $id: `https://ns.adobe.com/${tenant}/${kind}/${hex}`, 'meta:altId': `_${tenant}.${kind}.${hex}` };
  }

  #titleTaken(store: Map<string, Json>, title: unknown, except?: Json): boolean {
    return [...store.values()].some((r) => r !== except && r.title === title);
  }

  /** POST /tenant/fieldgroups (schema-registry.yaml `createFieldGroup`; help/xdm/api/field-groups.md). */
  #createFieldGroup(body: unknown): RegistryAnswer {
    const problems = this.#fieldGroupProblems(body);
    if (problems.length > 0) return bad(problems.join('; '));
    const fg = body as Json;
    // schema-registry.yaml lists only 400 here; a duplicate title gets 409, the Identity Service's documented answer to
    // a duplicate code, so a client that creates without looking up first fails loudly instead of duplicating.
    if (this.#titleTaken(this.fieldGroups, fg.title)) return titleConflict('field group', fg.title);
    const created: Json = { ...this.#newId('mixins'), 'meta:resourceType': 'mixins', version: '1.0', ...fg };
    created['meta:containerId'] = 'tenant';
    this.fieldGroups.set(String(created.$id), created);
    return { status: 201, body: created };
  }

  /** PUT /tenant/fieldgroups/{id}: the whole field group again; XDM lets fields be added, never removed or retyped. */
  #replaceFieldGroup(existing: Json, body: unknown): RegistryAnswer {
    const problems = this.#fieldGroupProblems(body);
    if (problems.length > 0) return bad(problems.join('; '));
    const fg = body as Json;
    if (this.#titleTaken(this.fieldGroups, fg.title, existing)) return titleConflict('field group', fg.title);
    const breaking: string[] = [];
    for (const [name, def] of Object.entries(asObject(existing.definitions))) {
      const next = asObject(asObject(fg.definitions)[name]).properties;
      findBreaking(asObject(asObject(def).properties), asObject(next), '', breaking);
    }
    if (breaking.length > 0) {
      const rule = 'Only additive changes are allowed to an existing field group (help/xdm/schema/composition.md)';
      return bad(`${rule}: ${breaking.join('; ')}`);
    }
    const [major, minor] = String(existing.version ?? '1.0')
      .split('.')
      .map(Number);
    const ids = { $id: existing.$id, 'meta:altId': existing['meta:altId'], 'meta:resourceType': 'mixins' };
    const updated = { ...fg, ...ids, version: `${major}.${(minor ?? 0) + 1}` };
    this.fieldGroups.set(String(existing.$id), updated);
    return { status: 200, body: updated };
  }

  /** What the field group body must be: `meta:intendedToExtend`, fields only under `_{tenant}`, known JSON types. */
  #fieldGroupProblems(body: unknown): string[] {
    const fg = asObject(body);
    const problems: string[] = [];
    if (fg.type !== 'object') problems.push('type must be "object"');
    if (typeof fg.title !== 'string' || fg.title === '') problems.push('title is required');
    const extend = fg['meta:intendedToExtend'];
    if (!Array.isArray(extend) || !extend.includes(EXPERIENCE_EVENT_CLASS)) {
      problems.push(`meta:intendedToExtend must list ${EXPERIENCE_EVENT_CLASS}`);
    }
    const definitions = asObject(fg.definitions);
    if (Object.keys(definitions).length === 0) problems.push('definitions must define the fields');
    for (const ref of refsOf(fg)) {
      const name = /^#\/definitions\/(.+)$/.exec(ref)?.[1];
      if (name === undefined || definitions[name] === undefined) {
        problems.push(`allOf $ref ${ref} does not name a definition`);
      }
    }
    for (const [name, def] of Object.entries(definitions)) {
      for (const key of Object.keys(asObject(asObject(def).properties))) {
        // Custom fields live under the tenant id (help/xdm/api/field-groups.md, "Create a field group").
        if (key !== `_${this.#tenant}`) {
          problems.push(`definitions.${name}: field "${key}" must be nested under _${this.#tenant}`);
        }
      }
      checkFieldSchemas(asObject(asObject(def).properties), `definitions.${name}`, problems);
    }
    return problems;
  }

  /** POST /tenant/schemas (schema-registry.yaml `createSchema`): one class, then field groups compatible with it. */
  #createSchema(body: unknown): RegistryAnswer {
    const schema = asObject(body);
    const problems: string[] = [];
    if (schema.type !== 'object') problems.push('type must be "object"');
    if (typeof schema.title !== 'string' || schema.title === '') problems.push('title is required');
    const refs = refsOf(schema);
    if (refs[0] !== EXPERIENCE_EVENT_CLASS) problems.push(`allOf must start with the class ${EXPERIENCE_EVENT_CLASS}`);
    problems.push(...refs.slice(1).flatMap((r) => this.#refProblem(r)));
    if (problems.length > 0) return bad(problems.join('; '));
    if (this.#titleTaken(this.schemas, schema.title)) return titleConflict('schema', schema.title);
    const created = {
      ...this.#newId('schemas'),
      'meta:resourceType': 'schemas',
      version: '1.0',
      ...schema,
      'meta:class': EXPERIENCE_EVENT_CLASS,
      'meta:containerId': 'tenant',
    };
    this.schemas.set(created.$id, created);
    return { status: 201, body: created };
  }

  #refProblem(ref: string): string[] {
    if (STANDARD_FIELD_GROUPS[ref] !== undefined || this.fieldGroups.has(ref)) return [];
    return [`allOf: ${ref} is not a field group of the ExperienceEvent class in this sandbox`];
  }

  /**
   * PATCH /tenant/schemas/{id} (JSON Patch, schema-registry.yaml `patchSchema`): the emulator applies the two edits
   * Adobe's guides use: `add` `/allOf/-` (help/xdm/api/schemas.md, "Add a field group") and `add` `/meta:immutableTags`
   * `["union"]` (help/profile/tutorials/dataset-configuration.md); other operations are refused.
   */
  #patchSchema(schema: Json, body: unknown): RegistryAnswer {
    if (!Array.isArray(body)) return bad('a JSON Patch array is required');
    const next = structuredClone(schema);
    for (const op of body.map(asObject)) {
      if (op.op === 'add' && op.path === '/allOf/-') {
        const ref = String(asObject(op.value).$ref ?? '');
        const problem = this.#refProblem(ref);
        if (problem.length > 0) return bad(problem.join('; '));
        if (!refsOf(next).includes(ref)) (next.allOf as unknown[]).push({ $ref: ref });
      } else if ((op.op === 'add' || op.op === 'replace') && op.path === '/meta:immutableTags') {
        if (!Array.isArray(op.value) || !op.value.every((t) => t === 'union')) {
          return bad('meta:immutableTags takes ["union"]');
        }
        // Profile needs a primary identity field or an identityMap (help/xdm/api/schemas.md, "Enable a schema for
        // use in Profile"); every schema here is an ExperienceEvent, whose class brings identityMap.
        next['meta:immutableTags'] = ['union'];
      } else {
        return bad(`JSON Patch operation ${JSON.stringify(op)} is not emulated`);
      }
    }
    const [major, minor] = String(schema.version ?? '1.0')
      .split('.')
      .map(Number);
    next.version = `${major}.${(minor ?? 0) + 1}`;
    this.schemas.set(String(schema.$id), next);
    return { status: 200, body: next };
  }

  /** The field of the schema's tenant field groups at this JSON pointer (`/_acme/mixpanel/distinctId`). */
  #fieldAt(schema: Json, pointer: string): Json | undefined {
    const [first, ...rest] = pointer.split('/').slice(1);
    if (first !== `_${this.#tenant}`) return undefined;
    for (const ref of refsOf(schema)) {
      for (const def of Object.values(asObject(this.fieldGroups.get(ref)?.definitions))) {
        let node = asObject(asObject(def).properties)[first] as Json | undefined;
        for (const key of rest) {
          node = node === undefined ? undefined : (asObject(node.properties)[key] as Json | undefined);
        }
        if (node !== undefined) return node;
      }
    }
    return undefined;
  }

  #primaryDescriptor(schemaId: string): Json | undefined {
    return this.descriptors.find((d) => d['xdm:sourceSchema'] === schemaId && d['xdm:isPrimary'] === true);
  }

  /** GET/POST /tenant/descriptors (schema-registry.yaml `createDescriptor`; help/xdm/api/descriptors.md). */
  async #descriptors(ex: Exchange, accept: string, id: string | undefined): Promise<RegistryAnswer | undefined> {
    if (ex.method === 'GET' && id === undefined) {
      if (!DESCRIPTOR_ACCEPT.test(accept)) {
        return bad(`Accept must be application/vnd.adobe.xdm+json for descriptors, got "${accept}"`);
      }
      const listed = filter(this.descriptors, ex.query.get('property'));
      const grouped: Record<string, unknown[]> = {};
      for (const d of listed) (grouped[String(d['@type'])] ??= []).push(accept.includes('-id') ? d['@id'] : d);
      return { status: 200, body: grouped };
    }
    if (ex.method !== 'POST' || id !== undefined) return undefined;
    const read = await readJson(ex);
    if ('error' in read) return bad(read.error);
    const d = asObject(read.value);
    if (d['@type'] !== 'xdm:descriptorIdentity') {
      return bad('the emulator creates xdm:descriptorIdentity descriptors only');
    }
    const schema = this.schemas.get(String(d['xdm:sourceSchema']));
    const problems: string[] = [];
    if (schema === undefined) {
      problems.push(`xdm:sourceSchema ${String(d['xdm:sourceSchema'])} is not a schema of this sandbox`);
    }
    if (d['xdm:sourceVersion'] === undefined) problems.push('xdm:sourceVersion is required');
    const property = String(d['xdm:sourceProperty'] ?? '');
    const field = schema === undefined ? undefined : this.#fieldAt(schema, property);
    // An identity field is a string field of the schema (help/xdm/ui/fields/identity.md).
    if (schema !== undefined && field?.type !== 'string') {
      problems.push(`xdm:sourceProperty ${property} is not a string field of the schema`);
    }
    if (d['xdm:property'] !== 'xdm:code' && d['xdm:property'] !== 'xdm:id') {
      problems.push('xdm:property must be xdm:code or xdm:id');
    }
    if (typeof d['xdm:namespace'] !== 'string' || !this.#hasNamespace(d['xdm:namespace'])) {
      problems.push(`xdm:namespace ${String(d['xdm:namespace'])} is not an identity namespace of this sandbox`);
    }
    if (typeof d['xdm:isPrimary'] !== 'boolean') problems.push('xdm:isPrimary must be true or false');
    if (problems.length > 0) return bad(problems.join('; '));
    if (d['xdm:isPrimary'] === true && this.#primaryDescriptor(String(d['xdm:sourceSchema'])) !== undefined) {
      return conflict('the schema already has a primary identity descriptor');
    }
    const meta = { 'meta:containerId': 'tenant', imsOrg: this.#orgId, version: '1' };
    const created = { ...d, '@id': randomBytes(20).toString('hex'), ...meta };
    this.descriptors.push(created);
    return { status: 201, body: created };
  }
}

/** `property=field==value` filters of listing calls; an array field matches when it contains the value. */
export function filter<T extends Json>(items: readonly T[], property: string | null): T[] {
  if (property === null || property === '') return [...items];
  const clauses = property
    .split(',')
    .map((c) => /^([^=!<>]+)==(.*)$/.exec(c))
    .filter((m) => m !== null);
  return items.filter((item) =>
    clauses.every((m) => {
      const value = item[m[1] as string];
      return Array.isArray(value) ? value.map(String).includes(m[2] as string) : String(value) === m[2];
    }),
  );
}

function summary(r: Json): Json {
  return { $id: r.$id, 'meta:altId': r['meta:altId'], version: r.version, title: r.title };
}

function refsOf(resource: Json): string[] {
  return (Array.isArray(resource.allOf) ? resource.allOf : []).map((r) => String(asObject(r).$ref ?? ''));
}

function checkFieldSchemas(properties: Json, at: string, problems: string[]): void {
  for (const [key, value] of Object.entries(properties)) {
    const field = asObject(value);
    if (!FIELD_TYPES.has(String(field.type))) {
      problems.push(`${at}.${key}: type ${JSON.stringify(field.type)} is not an XDM field type`);
    }
    if (field.properties !== undefined) checkFieldSchemas(asObject(field.properties), `${at}.${key}`, problems);
  }
}

function findBreaking(before: Json, after: Json, at: string, out: string[]): void {
  for (const [key, old] of Object.entries(before)) {
    const next = after[key];
    const pointer = `${at}/${key}`;
    if (next === undefined) {
      out.push(`${pointer} was removed`);
      continue;
    }
    const [o, n] = [asObject(old), asObject(next)];
    if (o.type !== n.type || o.format !== n.format) {
      out.push(`${pointer} changed from ${String(o.type)} to ${String(n.type)}`);
    } else if (o.properties !== undefined) findBreaking(asObject(o.properties), asObject(n.properties), pointer, out);
  }
}

function mergeInto(target: Json, source: Json): void {
  for (const [key, value] of Object.entries(source)) {
    const existing = asObject(target[key]);
    const incoming = asObject(value);
    if (existing.properties !== undefined && incoming.properties !== undefined) {
      const merged = { ...asObject(existing.properties) };
      mergeInto(merged, asObject(incoming.properties));
      target[key] = { ...existing, properties: merged };
    } else {
      target[key] = value;
    }
  }
}

/** Checks a value against a field's JSON schema (types, formats the mapping uses, no unknown keys). */
function checkValue(value: unknown, schema: Json, pointer: string, problems: XdmProblem[]): undefined {
  const type = schema.type;
  const fail = (message: string): undefined => {
    problems.push({ pointerToViolation: pointer, keyword: 'type', message });
  };
  if (type === 'object') {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      return fail(`expected type: JSONObject, found: ${typeof value}`);
    }
    if (schema['meta:xdmType'] === 'map') {
      const item = asObject(schema.additionalProperties);
      for (const [k, v] of Object.entries(value)) checkValue(v, item, `${pointer}/${k}`, problems);
      return;
    }
    const props = asObject(schema.properties);
    for (const [k, v] of Object.entries(value)) {
      if (props[k] === undefined) {
        const message = `extraneous key [${k}] is not permitted`;
        problems.push({ pointerToViolation: pointer, keyword: 'additionalProperties', message });
      } else {
        checkValue(v, asObject(props[k]), `${pointer}/${k}`, problems);
      }
    }
    return;
  }
  if (type === 'string' && typeof value !== 'string') return fail(`expected type: String, found: ${typeof value}`);
  if (type === 'integer' && !Number.isInteger(value)) {
    return fail(`expected type: Long, found: ${JSON.stringify(value)}`);
  }
  if (type === 'number' && typeof value !== 'number') return fail(`expected type: Number, found: ${typeof value}`);
  if (type === 'boolean' && typeof value !== 'boolean') return fail(`expected type: Boolean, found: ${typeof value}`);
  if (type === 'array' && !Array.isArray(value)) return fail(`expected type: JSONArray, found: ${typeof value}`);
}

/** Reads a JSON request body (at most 1 MB). */
export async function readJson(ex: Exchange): Promise<{ value: unknown } | { error: string }> {
  const read = await readBody(ex, 1_000_000);
  if (read.tooLarge) return { error: 'request body is too large' };
  const parsed = parseJson(read.body);
  return parsed.ok ? { value: parsed.value } : { error: `request body is not JSON: ${parsed.error}` };
}

/**
 * Errors in the Platform gateway's problem shape `{"type","title","status","detail"}`
 * (help/landing/troubleshooting.md).
 */
function registryProblem(status: number, title: string, detail: string): RegistryAnswer {
  return { status, body: { type: `https://ns.adobe.com/aep/errors/XDM-${status}`, title, status, detail } };
}

const bad = (detail: string): RegistryAnswer => registryProblem(400, 'Bad Request', detail);
const conflict = (detail: string): RegistryAnswer => registryProblem(409, 'Conflict', detail);
const notFound = (id: string): RegistryAnswer =>
  registryProblem(404, 'Not Found', `No resource ${id} in the tenant container`);
const titleConflict = (what: string, title: unknown): RegistryAnswer =>
  conflict(`A ${what} titled "${String(title)}" already exists`);

export function asObject(value: unknown): Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : {};
}

/** Sends a registry answer. */
export function sendAnswer(ex: Exchange, answer: RegistryAnswer): void {
  sendJson(ex, answer.status, answer.body);
}
