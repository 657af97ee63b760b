/**
 * The Platform objects a connector is set up with, emulated: the Schema Registry (registry.ts), identity namespaces
 * (Identity Service), datasets (Catalog) and the HTTP API streaming connection with its dataflow (Flow Service).
 * Datasets created here join the emulator's datasets, and their records are validated against the registry's schema;
 * a streaming connection created here is an inlet DCS accepts messages on.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import type { EmulatorContext } from './context.ts';
import type { Exchange } from './http.ts';
import { asObject, filter, readJson, type RegistryAnswer, SchemaRegistry } from './registry.ts';
import type { XdmProblem } from './xdm-checks.ts';

type Json = Record<string, unknown>;
type FlowKind = 'connections' | 'sourceConnections' | 'targetConnections' | 'flows';

const REGISTRY = '/data/foundation/schemaregistry';
/** identity-service.yaml `/idnamespace/identities` under `/data/core`. */
const NAMESPACES = '/data/core/idnamespace/identities';
/** catalog.yaml `/dataSets` under `/data/foundation/catalog`. */
const DATASETS = /^\/data\/foundation\/catalog\/dataSets(?:\/([^/]+))?$/;
/** flow-service.yaml, under `/data/foundation/flowservice`. */
const FLOW = /^\/data\/foundation\/flowservice\/(connections|sourceConnections|targetConnections|flows)(?:\/([^/]+))?$/;

/** Ids of help/sources/tutorials/api/create/streaming/http.md: HTTP API source, data lake target, streaming flow. */
const HTTP_API_SPEC = 'bc7b00d6-623a-4dfc-9fdb-f1240aeadaeb';
const DATA_LAKE_SPEC = 'c604ff05-7f1a-43c0-8e18-33bf874cb11c';
const HTTP_API_FLOW_SPECS = new Set(['d8a6f005-7eaf-4153-983e-e8574508b877', 'c1a19761-d2c7-4702-b9fa-fe91f0613e81']);

/** `idType` values (identity-service.yaml `namespaceCreate`). */
const ID_TYPES = new Set(['Cookie', 'Cross_device', 'Device', 'Email', 'Mobile', 'Non_people', 'Phone']);

/** Standard namespaces every sandbox has (help/identity-service/features/namespaces.md, "Standard namespaces"). */
const STANDARD_NAMESPACES: ReadonlyArray<readonly [number, string, string, string]> = [
  [4, 'ECID', 'Adobe Experience Cloud ID', 'Cookie'],
  [6, 'Email', 'Email', 'Email'],
  [7, 'Phone', 'Phone', 'Phone'],
  [10, 'AAID', 'Adobe Analytics (Legacy ID)', 'Cookie'],
  [11, 'Email_LC_SHA256', 'Emails (SHA256, lowercased)', 'Email'],
];

export interface SetupCounts {
  readonly fieldGroups: number;
  readonly schemas: number;
  readonly descriptors: number;
  readonly namespaces: number;
  readonly datasets: number;
  readonly connections: number;
  readonly sourceConnections: number;
  readonly targetConnections: number;
  readonly flows: number;
}

/** State and handlers of the setup APIs of one emulated sandbox. */
export class PlatformSetup {
  readonly registry: SchemaRegistry;
  readonly #ctx: EmulatorContext;
  readonly #inletUrl: (id: string) => string;
  readonly #namespaces: Json[];
  readonly #datasets = new Map<string, Json>();
  readonly #flow = {
    connections: new Map<string, Json>(),
    sourceConnections: new Map<string, Json>(),
    targetConnections: new Map<string, Json>(),
    flows: new Map<string, Json>(),
  };

  constructor(ctx: EmulatorContext, inletUrl: (id: string) => string) {
    this.#ctx = ctx;
    this.#inletUrl = inletUrl;
    this.#namespaces = STANDARD_NAMESPACES.map(([id, code, name, idType]) => {
      return { id, code, name, idType, status: 'ACTIVE', custom: false };
    });
    this.registry = new SchemaRegistry(ctx.tenant, ctx.defaultOrgId, (code) => this.#namespace(code) !== undefined);
  }

  /** Whether `path` is one of the setup APIs (so the server routes it here). */
  static handles(path: string): boolean {
    return path.startsWith(`${REGISTRY}/`) || path === NAMESPACES || DATASETS.test(path) || FLOW.test(path);
  }

  /** How many objects of each kind exist (tests: a second provisioning creates none). */
  counts(): SetupCounts {
    return {
      fieldGroups: this.registry.fieldGroups.size,
      schemas: this.registry.schemas.size,
      descriptors: this.registry.descriptors.length,
      namespaces: this.#namespaces.filter((n) => n.custom === true).length,
      datasets: this.#datasets.size,
      connections: this.#flow.connections.size,
      sourceConnections: this.#flow.sourceConnections.size,
      targetConnections: this.#flow.targetConnections.size,
      flows: this.#flow.flows.size,
    };
  }

  /** The registry's verdict on a record of a dataset created here; undefined for datasets configured at start. */
  checkRecord(record: Record<string, unknown>, datasetId: string | undefined): XdmProblem[] {
    if (datasetId === undefined || !this.#datasets.has(datasetId)) return [];
    return this.registry.checkRecord(record, this.#ctx.datasets.get(datasetId) ?? '') ?? [];
  }

  async serve(ex: Exchange): Promise<RegistryAnswer> {
    const { path, method } = ex;
    let answer: RegistryAnswer | undefined;
    if (path.startsWith(`${REGISTRY}/`)) answer = await this.registry.serve(ex, path.slice(REGISTRY.length));
    else if (path === NAMESPACES) answer = await this.#namespacesApi(ex);
    else {
      const ds = DATASETS.exec(path);
      const fl = FLOW.exec(path);
      if (ds !== null) answer = await this.#datasetsApi(ex, ds[1]);
      else if (fl !== null) answer = await this.#flowApi(ex, fl[1] as FlowKind, fl[2]);
    }
    return answer ?? problem(405, 'Method Not Allowed', `${method} ${path} is not emulated`);
  }

  #namespace(code: string): Json | undefined {
    return this.#namespaces.find((n) => String(n.code).toLowerCase() === code.toLowerCase());
  }

  /** GET lists every namespace; POST creates one, 409 when the code exists (identity-service.yaml). */
  async #namespacesApi(ex: Exchange): Promise<RegistryAnswer | undefined> {
    if (ex.method === 'GET') return { status: 200, body: this.#namespaces };
    if (ex.method !== 'POST') return undefined;
    const read = await readJson(ex);
    if ('error' in read) return problem(400, 'Namespace validation', read.error);
    const ns = asObject(read.value);
    const problems: string[] = [];
    if (typeof ns.name !== 'string' || ns.name === '') problems.push('name is required');
    if (typeof ns.code !== 'string' || !/^[A-Za-z0-9]+$/.test(ns.code)) {
      problems.push('code is required and may contain only letters and numbers');
    }
    if (!ID_TYPES.has(String(ns.idType))) {
      problems.push(`Please provide a valid value of idType. Valid values are: [${[...ID_TYPES].join(', ')}]`);
    }
    if (problems.length > 0) {
      return problem(400, 'Namespace validation', problems.join('; '), { code: 'INVALID_REQUEST_PARAMS' });
    }
    if (this.#namespace(String(ns.code)) !== undefined) {
      const detail = 'Namespace code already exists. Please use a different code';
      return problem(409, 'NAMESPACE_CODE_CONFLICT', detail, { code: 'INTEGRATION_CODE_EXISTS' });
    }
    const id = 10_000_000 + this.#namespaces.length;
    const created = { ...ns, id, status: 'ACTIVE', custom: true, createTime: Date.now() };
    this.#namespaces.push(created);
    return { status: 200, body: created };
  }

  /** GET (filtered by `name`), POST (201 `["@/dataSets/{id}"]`), PATCH tags (catalog.yaml). */
  async #datasetsApi(ex: Exchange, id: string | undefined): Promise<RegistryAnswer | undefined> {
    if (ex.method === 'GET' && id === undefined) {
      const name = ex.query.get('name');
      const out: Json = {};
      for (const [dsId, ds] of this.#datasets) if (name === null || ds.name === name) out[dsId] = ds;
      return { status: 200, body: out };
    }
    if (ex.method === 'GET' && id !== undefined) {
      const ds = this.#datasets.get(id);
      if (ds === undefined) return problem(404, 'Not Found', `Dataset ${id} not found`);
      return { status: 200, body: { [id]: ds } };
    }
    const read = await readJson(ex);
    if ('error' in read) return problem(400, 'Bad Request', read.error);
    const body = asObject(read.value);
    if (ex.method === 'PATCH' && id !== undefined) {
      const ds = this.#datasets.get(id);
      if (ds === undefined) return problem(404, 'Not Found', `Dataset ${id} not found`);
      const tags = { ...asObject(ds.tags), ...asObject(body.tags) };
      const refused = this.#profileProblem(tags, String(asObject(ds.schemaRef).id));
      if (refused !== undefined) return refused;
      this.#datasets.set(id, { ...ds, ...body, tags });
      this.#noteProfile(id, tags);
      return { status: 200, body: [`@/dataSets/${id}`] };
    }
    if (ex.method !== 'POST' || id !== undefined) return undefined;
    const schemaRef = asObject(body.schemaRef);
    const problems: string[] = [];
    if (typeof body.name !== 'string' || body.name === '') problems.push('name is required');
    if (this.registry.schemas.get(String(schemaRef.id)) === undefined) {
      problems.push(`schemaRef.id ${String(schemaRef.id)} is not a schema of this sandbox`);
    }
    if (typeof schemaRef.contentType !== 'string' || !schemaRef.contentType.startsWith('application/vnd.adobe.xed')) {
      problems.push('schemaRef.contentType must be an application/vnd.adobe.xed…+json; version=1 type');
    }
    if (problems.length > 0) return problem(400, 'Bad Request', problems.join('; '));
    const refused = this.#profileProblem(asObject(body.tags), String(schemaRef.id));
    if (refused !== undefined) return refused;
    const newId = randomBytes(12).toString('hex');
    this.#datasets.set(newId, { ...body, imsOrg: this.#ctx.defaultOrgId, created: Date.now(), version: '1.0.0' });
    this.#ctx.datasets.set(newId, String(schemaRef.id));
    this.#noteProfile(newId, asObject(body.tags));
    return { status: 201, body: [`@/dataSets/${newId}`] };
  }

  /** Streaming applies Profile's limits to datasets tagged `unifiedProfile: ["enabled:true"]`. */
  #noteProfile(id: string, tags: Json): void {
    const profileTags = Array.isArray(tags.unifiedProfile) ? tags.unifiedProfile : [];
    if (profileTags.some((t) => String(t).replace(/\s/g, '') === 'enabled:true')) this.#ctx.profileDatasets.add(id);
    else this.#ctx.profileDatasets.delete(id);
  }

  /** A dataset can be enabled for Profile only when its schema is (help/profile/tutorials/dataset-configuration.md). */
  #profileProblem(tags: Json, schemaId: string): RegistryAnswer | undefined {
    const profileTags = Array.isArray(tags.unifiedProfile) ? tags.unifiedProfile : [];
    const wantsProfile = profileTags.some((t) => String(t).replace(/\s/g, '') === 'enabled:true');
    const immutableTags = this.registry.schemas.get(schemaId)?.['meta:immutableTags'];
    const unionTagged = Array.isArray(immutableTags) && immutableTags.includes('union');
    if (!wantsProfile || unionTagged) return undefined;
    const why = `schema ${schemaId} is not enabled for Profile (meta:immutableTags ["union"]), so the dataset cannot be`;
    return problem(400, 'Bad Request', why);
  }

  /** Flow Service objects: list (`property=name==…`), look up, create with the references checked. */
  async #flowApi(ex: Exchange, kind: FlowKind, id: string | undefined): Promise<RegistryAnswer | undefined> {
    const store = this.#flow[kind];
    if (ex.method === 'GET') {
      if (id === undefined) {
        return { status: 200, body: { items: filter([...store.values()], ex.query.get('property')) } };
      }
      const item = store.get(id);
      if (item === undefined) return problem(404, 'Not Found', `No ${kind} ${id}`);
      return { status: 200, body: { items: [item] } };
    }
    if (ex.method !== 'POST' || id !== undefined) return undefined;
    const read = await readJson(ex);
    if ('error' in read) return problem(400, 'Bad Request', read.error);
    const body = asObject(read.value);
    const issue = this.#flowProblem(kind, body);
    if (issue !== undefined) return problem(400, 'Bad Request', issue);
    const newId = randomUUID();
    const etag = `"${randomUUID()}"`;
    let stored: Json = { ...body, id: newId, etag, state: 'enabled', createdAt: Date.now() };
    if (kind === 'connections') {
      // The inlet comes with the connection (http.md, "Get streaming endpoint URL").
      const params = asObject(asObject(body.auth).params);
      const inletId = randomBytes(32).toString('hex');
      const authenticated = params.authenticationRequired === true;
      this.#ctx.connections.set(inletId, { authenticated });
      const inlet = { inletId, inletUrl: this.#inletUrl(inletId), authenticationRequired: authenticated };
      stored = { ...stored, auth: { ...asObject(body.auth), params: { ...params, ...inlet } } };
    }
    store.set(newId, stored);
    if (kind === 'flows') this.#registerDataflow(newId, body);
    return { status: 201, body: { id: newId, etag } };
  }

  /** A dataflow makes its inlet write to its dataset: DCS then accepts messages whose `header.flowId` names it. */
  #registerDataflow(flowId: string, body: Json): void {
    const source = asObject(this.#flow.sourceConnections.get(String((body.sourceConnectionIds as unknown[])[0])));
    const target = asObject(this.#flow.targetConnections.get(String((body.targetConnectionIds as unknown[])[0])));
    const base = asObject(this.#flow.connections.get(String(source.baseConnectionId)));
    const connectionId = String(asObject(asObject(base.auth).params).inletId ?? '');
    const datasetId = String(asObject(target.params).dataSetId ?? '');
    this.#ctx.flows.set(flowId, { connectionId, datasetId });
  }

  #flowProblem(kind: FlowKind, body: Json): string | undefined {
    if (typeof body.name !== 'string' || body.name === '') return 'name is required';
    const spec = String(asObject(body.connectionSpec).id ?? '');
    switch (kind) {
      case 'connections': {
        const auth = asObject(body.auth);
        if (spec !== HTTP_API_SPEC) return `connectionSpec.id must be the HTTP API spec ${HTTP_API_SPEC}`;
        if (auth.specName !== 'Streaming Connection') return 'auth.specName must be "Streaming Connection"';
        return asObject(auth.params).dataType === 'xdm' ? undefined : 'auth.params.dataType must be xdm';
      }
      case 'sourceConnections':
        if (spec !== HTTP_API_SPEC) return `connectionSpec.id must be the HTTP API spec ${HTTP_API_SPEC}`;
        if (this.#flow.connections.has(String(body.baseConnectionId))) return undefined;
        return `baseConnectionId ${String(body.baseConnectionId)} does not exist`;
      case 'targetConnections': {
        if (spec !== DATA_LAKE_SPEC) return `connectionSpec.id must be the data lake spec ${DATA_LAKE_SPEC}`;
        const datasetId = String(asObject(body.params).dataSetId);
        const schemaId = String(asObject(asObject(body.data).schema).id);
        if (!this.#ctx.datasets.has(datasetId)) return `params.dataSetId ${datasetId} does not exist`;
        if (this.#ctx.datasets.get(datasetId) === schemaId) return undefined;
        return `data.schema.id ${schemaId} is not the schema of dataset ${datasetId}`;
      }
      case 'flows': {
        if (!HTTP_API_FLOW_SPECS.has(String(asObject(body.flowSpec).id))) {
          return 'flowSpec.id must be an HTTP API streaming flow spec';
        }
        const sources = Array.isArray(body.sourceConnectionIds) ? body.sourceConnectionIds.map(String) : [];
        const targets = Array.isArray(body.targetConnectionIds) ? body.targetConnectionIds.map(String) : [];
        if (sources.length !== 1 || !this.#flow.sourceConnections.has(sources[0] as string)) {
          return 'sourceConnectionIds must name one source connection';
        }
        if (targets.length !== 1 || !this.#flow.targetConnections.has(targets[0] as string)) {
          return 'targetConnectionIds must name one target connection';
        }
        return undefined;
      }
    }
  }
}

/** The services' error shape `{"type","status","title","detail","report"}` (identity-service.yaml 400/409 examples). */
function problem(status: number, title: string, detail: string, report?: Json): RegistryAnswer {
  const type = 'http://ns.adobe.com/adobecloud/problem/emulated';
  return { status, body: { type, status, title, detail, ...(report ? { report } : {}) } };
}
