/**
 * Provisions the Platform side of the connector: tenant id, the tenant field group the mapping writes, an XDM
 * ExperienceEvent schema with the standard field groups, the identity namespaces and the primary identity
 * descriptor, the dataset (optionally for Profile) and, for the streaming sink, the HTTP API streaming connection with
 * its dataflow. Every object is looked up by name first and reused, so running it again creates nothing new.
 *
 * The order follows Adobe's tutorials: help/xdm/tutorials/create-schema-api.md (field group, schema, descriptor),
 * help/catalog/api/create-dataset.md, help/sources/tutorials/api/create/streaming/http.md (base connection, source
 * connection, target connection, dataflow) and help/profile/tutorials/dataset-configuration.md (Profile).
 * Over 400 lines: one find-or-create step per Platform object, in the tutorials' order, reads best as one sequence.
 */
import { ConnectorError } from '#common/errors';
import type { MappingConfig } from '#mapping/config';
import {
  fieldGroupForMapping,
  namespacesToProvision,
  type MappingNamespace,
  requiredFieldGroups,
} from '#mapping/schema';
import type { PlatformApi, PlatformCall } from './api.ts';
import * as ep from './endpoints.ts';
import { compareFieldGroups } from './field-group.ts';

type Json = Record<string, unknown>;

export interface ProvisionOptions {
  readonly api: PlatformApi;
  readonly mapping: MappingConfig;
  readonly sink: 'streaming' | 'batch';
  /** Base name of every object (schema and dataset title; the others derive from it). */
  readonly name: string;
  /** Enable the schema and the dataset for Real-Time Customer Profile. */
  readonly profile: boolean;
  /** Told about each object as it is settled (the CLI prints it). */
  readonly onStep?: (step: ProvisionStep) => void;
}

export type StepAction =
  | 'found'
  | 'created'
  | 'extended'
  | 'updated'
  | 'would create'
  | 'would extend'
  | 'would update';

export interface ProvisionStep {
  readonly object: string;
  readonly name: string;
  readonly action: StepAction;
  readonly id?: string;
  readonly detail?: string;
}

/** The values the connector's configuration needs, by environment variable name. */
export interface ProvisionedValues {
  readonly AEP_TENANT_ID: string;
  readonly AEP_SCHEMA_ID: string;
  readonly AEP_DATASET_ID: string;
  readonly AEP_SINK: 'streaming' | 'batch';
  /** Whether the dataset is enabled for Real-Time Customer Profile (enabled now, or found so). */
  readonly AEP_PROFILE_ENABLED: 'true' | 'false';
  readonly AEP_INLET_URL?: string;
  readonly AEP_FLOW_ID?: string;
}

export interface ProvisionResult {
  readonly values: ProvisionedValues;
  readonly steps: readonly ProvisionStep[];
}

/**
 * An object exists in a shape the provisioner may not change; the message says what differs and what to do.
 * Permanent: running again unchanged meets the same object, someone has to change the mapping, the name or the object.
 */
export class ProvisionConflictError extends ConnectorError {
  constructor(message: string) {
    super('permanent', message);
    this.name = 'ProvisionConflictError';
  }
}

const DESCRIPTION = 'Mixpanel events forwarded by mixpanel-aep-connector.';

/** Default base name of the objects. */
export const DEFAULT_OBJECT_NAME = 'Mixpanel events';

/** Runs every step; in a dry run the writes are recorded on `api.writes` and ids of new objects are placeholders. */
export async function provisionPlatform(o: ProvisionOptions): Promise<ProvisionResult> {
  const steps: ProvisionStep[] = [];
  const step = (s: ProvisionStep): void => {
    steps.push(s);
    o.onStep?.(s);
  };
  const p = new Provisioner(o, step);
  const tenant = await p.tenant();
  const fieldGroupId = await p.fieldGroup(tenant);
  const schema = await p.schema(tenant, fieldGroupId);
  const namespaces = namespacesToProvision(o.mapping, { tenant });
  await p.namespaces(namespaces);
  await p.descriptor(
    schema,
    namespaces.find((n) => n.primary),
  );
  if (o.profile) await p.enableSchemaForProfile(schema);
  const { id: datasetId, profile } = await p.dataset(schema.id);
  const values: ProvisionedValues = {
    AEP_TENANT_ID: tenant,
    AEP_SCHEMA_ID: schema.id,
    AEP_DATASET_ID: datasetId,
    AEP_SINK: o.sink,
    AEP_PROFILE_ENABLED: profile ? 'true' : 'false',
  };
  if (o.sink === 'batch') return { values, steps };
  const streaming = await p.streaming(schema.id, datasetId);
  return { values: { ...values, AEP_INLET_URL: streaming.inletUrl, AEP_FLOW_ID: streaming.flowId }, steps };
}

interface SchemaState {
  readonly id: string;
  readonly altId: string;
  readonly exists: boolean;
  readonly immutableTags: readonly string[];
}

const placeholder = (what: string): string => `<id of the new ${what}>`;
const isPlaceholder = (id: string): boolean => id.startsWith('<');
const titleFilter = (field: string, value: string): string => `property=${encodeURIComponent(`${field}==${value}`)}`;

class Provisioner {
  readonly #o: ProvisionOptions;
  readonly #api: PlatformApi;
  readonly #step: (s: ProvisionStep) => void;

  constructor(o: ProvisionOptions, step: (s: ProvisionStep) => void) {
    this.#o = o;
    this.#api = o.api;
    this.#step = step;
  }

  #would(action: 'create' | 'extend' | 'update'): StepAction {
    if (this.#api.dryRun) return `would ${action}`;
    return action === 'create' ? 'created' : action === 'extend' ? 'extended' : 'updated';
  }

  /** The tenant id from `GET /stats`, so nobody has to type it. */
  async tenant(): Promise<string> {
    const { body } = await this.#api.read({
      path: ep.STATS_PATH,
      service: 'schema-registry',
      what: 'read the tenant id',
      accept: 'application/json',
    });
    const tenantId = (body as { tenantId?: unknown }).tenantId;
    if (typeof tenantId !== 'string' || tenantId === '') {
      throw new ProvisionConflictError(
        'The Schema Registry /stats answer has no tenantId: check AEP_PLATFORM_URL points at the Platform API.',
      );
    }
    const tenant = tenantId.replace(/^_/, '');
    this.#step({ object: 'tenant', name: tenant, action: 'found', id: tenant });
    return tenant;
  }

  /** Creates the tenant field group, or extends it compatibly, or refuses. @returns its `$id` */
  async fieldGroup(tenant: string): Promise<string> {
    const title = `${this.#o.name} fields`;
    const wanted = { ...(fieldGroupForMapping(this.#o.mapping, { tenant }) as Json), title };
    const existing = await this.#findByTitle(ep.TENANT_FIELD_GROUPS_PATH, title, 'find the field group');
    if (existing === undefined) {
      const path = ep.TENANT_FIELD_GROUPS_PATH;
      const call = { path, service: 'schema-registry', body: wanted, accept: ep.ACCEPT_XED_LOOKUP } as const;
      return (await this.#create('field group', title, call, (b) => asObject(b).$id)).id;
    }
    const id = String(existing.$id);
    const comparison = compareFieldGroups(wanted, existing);
    if (comparison.kind === 'conflict') {
      throw new ProvisionConflictError(
        `The field group "${title}" (${id}) exists with fields of other types than the mapping writes:\n` +
          comparison.conflicts.map((c) => `  - ${c}`).join('\n') +
          '\nXDM allows only additive changes. Map these properties to new field names (fields in the mapping JSON), ' +
          'or provision under another name (--name) to start a new schema and dataset.',
      );
    }
    if (comparison.kind === 'same') {
      this.#step({ object: 'field group', name: title, action: 'found', id });
      return id;
    }
    // PUT rewrites the field group: the body carries every field, the existing ones included (schema-registry.yaml).
    await this.#api.write({
      method: 'PUT',
      path: `${ep.TENANT_FIELD_GROUPS_PATH}/${encodeURIComponent(String(existing['meta:altId'] ?? id))}`,
      service: 'schema-registry',
      what: `extend field group "${title}"`,
      body: comparison.merged,
      accept: ep.ACCEPT_XED_LOOKUP,
    });
    const detail = `adds ${comparison.added.join(', ')}`;
    this.#step({ object: 'field group', name: title, action: this.#would('extend'), id, detail });
    return id;
  }

  /** Creates the ExperienceEvent schema, or adds the field groups it lacks (JSON Patch `add` to `/allOf/-`). */
  async schema(tenant: string, fieldGroupId: string): Promise<SchemaState> {
    const title = this.#o.name;
    const refs = [...requiredFieldGroups(this.#o.mapping, tenant), fieldGroupId];
    const existing = await this.#findByTitle(ep.TENANT_SCHEMAS_PATH, title, 'find the schema');
    if (existing === undefined) {
      const allOf = [ep.EXPERIENCE_EVENT_CLASS_ID, ...refs].map(($ref) => ({ $ref }));
      const body = { type: 'object', title, description: DESCRIPTION, allOf };
      const path = ep.TENANT_SCHEMAS_PATH;
      const call = { path, service: 'schema-registry', body, accept: ep.ACCEPT_XED_LOOKUP } as const;
      const created = await this.#create('schema', title, call, (b) => asObject(b).$id);
      const altId = String(asObject(created.body)['meta:altId'] ?? created.id);
      return { id: created.id, altId, exists: created.body !== undefined, immutableTags: [] };
    }
    const id = String(existing.$id);
    const altId = String(existing['meta:altId'] ?? id);
    const have = new Set(asArray(existing.allOf).map((r) => String((r as Json).$ref)));
    if (!have.has(ep.EXPERIENCE_EVENT_CLASS_ID)) {
      throw new ProvisionConflictError(
        `The schema "${title}" (${id}) is not of class XDM ExperienceEvent, and a schema's class cannot change. ` +
          'Provision under another name (--name).',
      );
    }
    const missing = refs.filter((r) => !have.has(r));
    const state = { id, altId, exists: true, immutableTags: asArray(existing['meta:immutableTags']).map(String) };
    if (missing.length === 0) {
      this.#step({ object: 'schema', name: title, action: 'found', id });
      return state;
    }
    await this.#api.write({
      method: 'PATCH',
      path: `${ep.TENANT_SCHEMAS_PATH}/${encodeURIComponent(altId)}`,
      service: 'schema-registry',
      what: `add field groups to schema "${title}"`,
      body: missing.map(($ref) => ({ op: 'add', path: '/allOf/-', value: { $ref } })),
      accept: ep.ACCEPT_XED_LOOKUP,
    });
    const detail = `adds ${missing.join(', ')}`;
    this.#step({ object: 'schema', name: title, action: this.#would('update'), id, detail });
    return state;
  }

  /** Creates the custom namespaces the mapping uses that the sandbox does not have yet. */
  async namespaces(wanted: readonly MappingNamespace[]): Promise<void> {
    if (wanted.length === 0) return;
    const list = { path: ep.NAMESPACES_PATH, service: 'identity', what: 'list identity namespaces' } as const;
    const { body } = await this.#api.read(list);
    const known = new Map(asArray(body).map((n) => [String((n as Json).code).toLowerCase(), n as Json]));
    for (const ns of wanted) {
      // "May contain only letters and numbers" (identity-service.yaml, createNamespace `code`).
      if (!/^[A-Za-z0-9]+$/.test(ns.code)) {
        throw new ProvisionConflictError(
          `The mapping uses identity namespace "${ns.code}", but namespace codes may contain only letters and ` +
            'numbers; rename it in the mapping.',
        );
      }
      const found = known.get(ns.code.toLowerCase());
      if (found !== undefined) {
        this.#step({ object: 'identity namespace', name: ns.code, action: 'found', id: String(found.id ?? ns.code) });
        continue;
      }
      const description = `Mixpanel property ${ns.property}.`;
      const body = { name: `Mixpanel ${ns.property}`, code: ns.code, idType: ns.idType, description };
      const call = { path: ep.NAMESPACES_PATH, service: 'identity', body } as const;
      await this.#create('identity namespace', ns.code, call, (b) => asObject(b).id ?? ns.code);
    }
  }

  /** Marks the tenant field that carries the primary identity as the schema's primary identity. */
  async descriptor(schema: SchemaState, primary: MappingNamespace | undefined): Promise<void> {
    if (primary?.sourceProperty === undefined) return;
    const name = `${primary.sourceProperty} → ${primary.code}`;
    if (schema.exists) {
      const { body } = await this.#api.read({
        path: `${ep.TENANT_DESCRIPTORS_PATH}?${titleFilter('xdm:sourceSchema', schema.id)}`,
        service: 'schema-registry',
        what: 'list the schema descriptors',
        accept: ep.ACCEPT_XDM_DESCRIPTORS,
      });
      const identities = asArray((body as Json)['xdm:descriptorIdentity']).map((d) => d as Json);
      const ours = identities.filter((d) => d['xdm:sourceSchema'] === schema.id);
      const same = ours.find(
        (d) => d['xdm:sourceProperty'] === primary.sourceProperty && d['xdm:namespace'] === primary.code,
      );
      if (same !== undefined) {
        this.#step({ object: 'identity descriptor', name, action: 'found', id: String(same['@id']) });
        return;
      }
      const other = ours.find((d) => d['xdm:isPrimary'] === true);
      if (other !== undefined) {
        throw new ProvisionConflictError(
          `The schema ${schema.id} already has its primary identity on ${String(other['xdm:sourceProperty'])} ` +
            `(${String(other['xdm:namespace'])}); the mapping's primary identity is ${name}. ` +
            'Make them agree in the mapping.',
        );
      }
    }
    const body = {
      '@type': 'xdm:descriptorIdentity',
      'xdm:sourceSchema': schema.id,
      'xdm:sourceVersion': 1,
      'xdm:sourceProperty': primary.sourceProperty,
      'xdm:namespace': primary.code,
      'xdm:property': 'xdm:code',
      'xdm:isPrimary': true,
    };
    const path = ep.TENANT_DESCRIPTORS_PATH;
    const call = { path, service: 'schema-registry', body, accept: ep.ACCEPT_XDM_DESCRIPTORS } as const;
    await this.#create('identity descriptor', name, call, (b) => asObject(b)['@id']);
  }

  /** Adds `union` to the schema's `meta:immutableTags` (help/xdm/api/schemas.md, "Enable a schema for … Profile"). */
  async enableSchemaForProfile(schema: SchemaState): Promise<void> {
    if (schema.immutableTags.includes('union')) return;
    await this.#api.write({
      method: 'PATCH',
      path: `${ep.TENANT_SCHEMAS_PATH}/${encodeURIComponent(schema.altId)}`,
      service: 'schema-registry',
      what: `enable schema ${schema.id} for Profile`,
      body: [{ op: 'add', path: '/meta:immutableTags', value: ['union'] }],
      accept: ep.ACCEPT_XED_LOOKUP,
    });
    const action = this.#would('update');
    this.#step({ object: 'schema', name: this.#o.name, action, id: schema.id, detail: 'enabled for Profile' });
  }

  /**
   * Finds the dataset by name (it must use the schema) or creates it.
   * @returns the dataset id, and whether it is enabled for Profile (enabled here, or tagged so already)
   */
  async dataset(schemaId: string): Promise<{ id: string; profile: boolean }> {
    const name = this.#o.name;
    const profileTags = { unifiedProfile: ['enabled:true'], unifiedIdentity: ['enabled:true'] };
    const { body } = await this.#api.read({
      path: `${ep.DATASETS_PATH}?name=${encodeURIComponent(name)}&properties=name,schemaRef,tags`,
      service: 'catalog',
      what: 'find the dataset',
    });
    const found = Object.entries(asObject(body)).find(([, d]) => asObject(d).name === name);
    if (found === undefined) {
      const body = {
        name,
        description: DESCRIPTION,
        schemaRef: { id: schemaId, contentType: ep.XED_FULL_CONTENT_TYPE },
        ...(this.#o.profile ? { tags: profileTags } : {}),
      };
      // 201 `["@/dataSets/{id}"]` (catalog.yaml createDataset).
      const idOf = (b: unknown): string => String(asArray(b)[0] ?? '').replace(/^@\/dataSets\//, '');
      const created = await this.#create('dataset', name, { path: ep.DATASETS_PATH, service: 'catalog', body }, idOf);
      return { id: created.id, profile: this.#o.profile };
    }
    const [id, dataset] = [found[0], asObject(found[1])];
    const usedSchema = asObject(dataset.schemaRef).id;
    if (!isPlaceholder(schemaId) && usedSchema !== schemaId) {
      throw new ProvisionConflictError(
        `The dataset "${name}" (${id}) uses schema ${String(usedSchema)}, not ${schemaId}; a dataset's schema cannot ` +
          'change. Provision under another name (--name).',
      );
    }
    const tags = asObject(dataset.tags);
    const enabled = asArray(tags.unifiedProfile).some((t) => String(t).replace(/\s/g, '') === 'enabled:true');
    if (this.#o.profile && !enabled) {
      // PATCH /dataSets/{id} with the Profile tags (help/profile/tutorials/dataset-configuration.md).
      await this.#api.write({
        method: 'PATCH',
        path: `${ep.DATASETS_PATH}/${encodeURIComponent(id)}`,
        service: 'catalog',
        what: `enable dataset ${id} for Profile`,
        body: { tags: { ...tags, ...profileTags } },
      });
      this.#step({ object: 'dataset', name, action: this.#would('update'), id, detail: 'enabled for Profile' });
      return { id, profile: true };
    }
    this.#step({ object: 'dataset', name, action: 'found', id, ...(enabled ? { detail: 'enabled for Profile' } : {}) });
    return { id, profile: enabled };
  }

  /** The HTTP API streaming connection, its source and target connections, and the dataflow between them. */
  async streaming(schemaId: string, datasetId: string): Promise<{ inletUrl: string; flowId: string }> {
    const base = `${this.#o.name} streaming`;
    const connection = await this.#flowObject(ep.CONNECTIONS_PATH, `${base} connection`, 'streaming connection', {
      name: `${base} connection`,
      description: 'Authenticated HTTP API connection of mixpanel-aep-connector.',
      connectionSpec: ep.HTTP_API_CONNECTION_SPEC,
      auth: {
        specName: 'Streaming Connection',
        params: {
          sourceId: `${base} connection`,
          dataType: 'xdm',
          name: `${base} connection`,
          authenticationRequired: true,
        },
      },
    });
    let inletUrl = placeholder('streaming connection URL');
    if (!isPlaceholder(connection.id)) {
      // The inlet URL comes with the connection (http.md, "Get streaming endpoint URL").
      const { body } = await this.#api.read({
        path: `${ep.CONNECTIONS_PATH}/${encodeURIComponent(connection.id)}`,
        service: 'flow-service',
        what: 'read the streaming endpoint URL',
      });
      const item = asObject(asArray(asObject(body).items)[0]);
      inletUrl = String(asObject(asObject(item.auth).params).inletUrl ?? '');
      if (inletUrl === '') {
        throw new ProvisionConflictError(`The streaming connection ${connection.id} has no inletUrl.`);
      }
    }
    const source = await this.#flowObject(ep.SOURCE_CONNECTIONS_PATH, `${base} source`, 'source connection', {
      name: `${base} source`,
      baseConnectionId: connection.id,
      connectionSpec: ep.HTTP_API_CONNECTION_SPEC,
    });
    const target = await this.#flowObject(
      ep.TARGET_CONNECTIONS_PATH,
      `${base} target`,
      'target connection',
      {
        name: `${base} target`,
        data: { schema: { id: schemaId, version: ep.XED_FULL_CONTENT_TYPE } },
        params: { dataSetId: datasetId },
        connectionSpec: ep.DATA_LAKE_CONNECTION_SPEC,
      },
      (found) => {
        const dataSetId = asObject(found.params).dataSetId;
        return dataSetId === datasetId || isPlaceholder(datasetId)
          ? undefined
          : `writes to dataset ${String(dataSetId)}`;
      },
    );
    const flow = await this.#findFlow(`${base} dataflow`, source.id, target.id);
    if (flow !== undefined) {
      this.#step({ object: 'dataflow', name: String(flow.name), action: 'found', id: String(flow.id) });
      return { inletUrl, flowId: String(flow.id) };
    }
    const body = {
      name: `${base} dataflow`,
      description: DESCRIPTION,
      flowSpec: ep.HTTP_API_FLOW_SPEC,
      sourceConnectionIds: [source.id],
      targetConnectionIds: [target.id],
    };
    const call = { path: ep.FLOWS_PATH, service: 'flow-service', body } as const;
    const created = await this.#create('dataflow', `${base} dataflow`, call, (b) => asObject(b).id);
    return { inletUrl, flowId: created.id };
  }

  /** A dataflow named so, or any HTTP API dataflow from this source connection into this target connection. */
  async #findFlow(name: string, sourceId: string, targetId: string): Promise<Json | undefined> {
    if (isPlaceholder(sourceId) || isPlaceholder(targetId)) return undefined;
    const { body } = await this.#api.read({
      path: `${ep.FLOWS_PATH}?${titleFilter('sourceConnectionIds', sourceId)}`,
      service: 'flow-service',
      what: 'find the dataflow',
    });
    const flows = asArray(asObject(body).items).map(asObject);
    const linked = (f: Json): boolean =>
      asArray(f.sourceConnectionIds).includes(sourceId) && asArray(f.targetConnectionIds).includes(targetId);
    return flows.find((f) => f.name === name && linked(f)) ?? flows.find(linked);
  }

  /** Finds a Flow Service object by name, or creates it; `mismatch` explains why a found one cannot be reused. */
  async #flowObject(
    path: string,
    name: string,
    object: string,
    body: Json,
    mismatch?: (found: Json) => string | undefined,
  ): Promise<{ id: string }> {
    const query = `${path}?${titleFilter('name', name)}`;
    const find = { path: query, service: 'flow-service', what: `find the ${object}` } as const;
    const { body: listing } = await this.#api.read(find);
    const found = asArray(asObject(listing).items)
      .map(asObject)
      .find((item) => item.name === name);
    if (found !== undefined) {
      const why = mismatch?.(found);
      if (why !== undefined) {
        throw new ProvisionConflictError(
          `The ${object} "${name}" (${String(found.id)}) ${why}. Provision under another name (--name).`,
        );
      }
      this.#step({ object, name, action: 'found', id: String(found.id) });
      return { id: String(found.id) };
    }
    return this.#create(object, name, { path, service: 'flow-service', body }, (b) => asObject(b).id);
  }

  /**
   * POSTs a new object and reports it; in a dry run the call is only recorded and the id is a placeholder.
   * @param idOf reads the new object's id from the answer
   */
  async #create(
    object: string,
    name: string,
    call: Omit<PlatformCall, 'method' | 'what'>,
    idOf: (body: unknown) => unknown,
  ): Promise<{ id: string; body?: unknown }> {
    const answer = await this.#api.write({ ...call, method: 'POST', what: `create ${object} "${name}"` });
    const id = answer === undefined ? placeholder(object) : String(idOf(answer.body) ?? '');
    this.#step({ object, name, action: this.#would('create'), id });
    return answer === undefined ? { id } : { id, body: answer.body };
  }

  /** A Schema Registry resource of the tenant container with exactly this title, in full (`xed+json`). */
  async #findByTitle(path: string, title: string, what: string): Promise<Json | undefined> {
    const { body } = await this.#api.read({
      path: `${path}?${titleFilter('title', title)}`,
      service: 'schema-registry',
      what,
      accept: ep.ACCEPT_XED_LISTING,
    });
    return asArray(asObject(body).results)
      .map(asObject)
      .find((r) => r.title === title);
  }
}

function asObject(value: unknown): Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : {};
}

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}
