/**
 * The AEP emulator's setup APIs (Schema Registry, Identity Service, Catalog datasets, Flow Service): documented
 * shapes, the refusals Platform gives (400 on bad bodies, 409 on duplicates), and ingestion validated against the
 * schema created through them.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ImsTokenProvider } from '#aep/ims';
import { type AepEmulator, startAepEmulator } from '#emulators/aep/server';

const CREDS = { clientId: 'client-setup', clientSecret: 'secret-setup-1', orgId: 'ORGSETUP@AdobeOrg' };
const SR = '/data/foundation/schemaregistry';
const XED = 'application/vnd.adobe.xed+json; version=1';
const EE = 'https://ns.adobe.com/xdm/context/experienceevent';

let aep: AepEmulator;
let token: string;

beforeEach(async () => {
  aep = await startAepEmulator({ clients: [CREDS], tenant: 'acme', datasets: [], connections: [] });
  token = (await new ImsTokenProvider({ imsUrl: aep.imsTokenUrl, credentials: async () => CREDS }).auth()).accessToken;
});

afterEach(async () => {
  await aep.close();
});

type Answer = { status: number; body: any };

async function call(method: string, path: string, body?: unknown, accept = 'application/json'): Promise<Answer> {
  const response = await fetch(`${aep.platformUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${token}`,
      'x-api-key': CREDS.clientId,
      'x-gw-ims-org-id': CREDS.orgId,
      'x-sandbox-name': 'prod',
      accept,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? undefined : JSON.parse(text) };
}

function fieldGroup(title: string, fields: Record<string, unknown>): unknown {
  return {
    type: 'object',
    title,
    'meta:intendedToExtend': [EE],
    definitions: { custom: { properties: fields } },
    allOf: [{ $ref: '#/definitions/custom' }],
  };
}

const TENANT_PROPERTIES = { userId: { type: 'string' }, plan: { type: 'string' } };
const TENANT_FIELDS = { _acme: { type: 'object', properties: TENANT_PROPERTIES } };

/** A field group, a schema with it and Web Details, and a dataset; returns their ids. */
async function provisionSchema(): Promise<{ fieldGroup: any; schema: any; datasetId: string }> {
  const fg = await call('POST', `${SR}/tenant/fieldgroups`, fieldGroup('Events', TENANT_FIELDS), XED);
  const schema = await call(
    'POST',
    `${SR}/tenant/schemas`,
    {
      type: 'object',
      title: 'Events',
      description: 'd',
      allOf: [{ $ref: EE }, { $ref: 'https://ns.adobe.com/xdm/context/experienceevent-web' }, { $ref: fg.body.$id }],
    },
    XED,
  );
  const dataset = await call('POST', '/data/foundation/catalog/dataSets', {
    name: 'Events',
    schemaRef: { id: schema.body.$id, contentType: 'application/vnd.adobe.xed-full+json;version=1' },
  });
  return { fieldGroup: fg.body, schema: schema.body, datasetId: String(dataset.body[0]).replace('@/dataSets/', '') };
}

describe('AEP emulator: Schema Registry', () => {
  it('should answer /stats with the tenant id and refuse a listing without the xed Accept header', async () => {
    // Act
    const stats = await call('GET', `${SR}/stats`);
    const listing = await call('GET', `${SR}/tenant/fieldgroups`);

    // Assess
    expect(stats.status).toBe(200);
    expect(stats.body).toMatchObject({ tenantId: 'acme', imsOrg: CREDS.orgId });
    expect(listing.status).toBe(400);
    expect(listing.body.detail).toMatch(/Accept must be application\/vnd\.adobe\.xed-id\+json/);
  });

  it('should refuse a field group with fields outside the tenant object, and a duplicate title', async () => {
    // Act
    const bad = fieldGroup('Bad', { plan: { type: 'string' } });
    const outside = await call('POST', `${SR}/tenant/fieldgroups`, bad, XED);
    const created = await call('POST', `${SR}/tenant/fieldgroups`, fieldGroup('Events', TENANT_FIELDS), XED);
    const again = await call('POST', `${SR}/tenant/fieldgroups`, fieldGroup('Events', TENANT_FIELDS), XED);

    // Assess
    expect(outside.status).toBe(400);
    expect(outside.body.detail).toMatch(/field "plan" must be nested under _acme/);
    expect(created.status).toBe(201);
    expect(created.body.$id).toMatch(/^https:\/\/ns\.adobe\.com\/acme\/mixins\/[0-9a-f]+$/);
    expect(created.body['meta:altId']).toMatch(/^_acme\.mixins\.[0-9a-f]+$/);
    expect(again.status).toBe(409);
  });

  it('should take an additive PUT of a field group and refuse one that removes or retypes a field', async () => {
    // Prepare
    const { fieldGroup: fg } = await provisionSchema();
    const id = encodeURIComponent(fg['meta:altId']);
    const fields = (extra: Record<string, unknown>) => ({ _acme: { type: 'object', properties: extra } });

    // Act
    const put = (extra: Record<string, unknown>) =>
      call('PUT', `${SR}/tenant/fieldgroups/${id}`, fieldGroup('Events', fields(extra)), XED);
    const removed = await put({ userId: { type: 'string' } });
    const retyped = await put({ userId: { type: 'integer' }, plan: { type: 'string' } });
    const added = await put({ ...TENANT_PROPERTIES, seats: { type: 'integer' } });

    // Assess
    expect(removed.status).toBe(400);
    expect(removed.body.detail).toMatch(/\/_acme\/plan was removed/);
    expect(retyped.status).toBe(400);
    expect(retyped.body.detail).toMatch(/\/_acme\/userId changed from string to integer/);
    expect(added.status).toBe(200);
    expect(added.body.version).toBe('1.1');
  });

  it('should refuse a schema that references a field group the sandbox does not have', async () => {
    // Act
    const answer = await call(
      'POST',
      `${SR}/tenant/schemas`,
      {
        type: 'object',
        title: 'S',
        description: 'd',
        allOf: [{ $ref: EE }, { $ref: 'https://ns.adobe.com/acme/mixins/nope' }],
      },
      XED,
    );

    // Assess
    expect(answer.status).toBe(400);
    expect(answer.body.detail).toMatch(/mixins\/nope is not a field group/);
  });

  it('should validate identity descriptors: string field of the schema, known namespace, one primary', async () => {
    // Prepare
    const { schema } = await provisionSchema();
    await call('POST', '/data/core/idnamespace/identities', { name: 'User', code: 'AcmeUser', idType: 'Cross_device' });
    const descriptor = (extra: Record<string, unknown>) => ({
      '@type': 'xdm:descriptorIdentity',
      'xdm:sourceSchema': schema.$id,
      'xdm:sourceVersion': 1,
      'xdm:sourceProperty': '/_acme/userId',
      'xdm:namespace': 'AcmeUser',
      'xdm:property': 'xdm:code',
      'xdm:isPrimary': true,
      ...extra,
    });
    const xdm = 'application/vnd.adobe.xdm+json';

    // Act
    const post = (extra: Record<string, unknown>) => call('POST', `${SR}/tenant/descriptors`, descriptor(extra), xdm);
    const noField = await post({ 'xdm:sourceProperty': '/_acme/nope' });
    const noNamespace = await post({ 'xdm:namespace': 'Nope' });
    const created = await post({});
    const second = await post({ 'xdm:sourceProperty': '/_acme/plan' });
    const filter = encodeURIComponent(`xdm:sourceSchema==${schema.$id}`);
    const listed = await call('GET', `${SR}/tenant/descriptors?property=${filter}`, undefined, xdm);

    // Assess
    expect(noField.status).toBe(400);
    expect(noField.body.detail).toMatch(/\/_acme\/nope is not a string field/);
    expect(noNamespace.status).toBe(400);
    expect(noNamespace.body.detail).toMatch(/Nope is not an identity namespace/);
    expect(created.status).toBe(201);
    expect(second.status).toBe(409);
    expect(listed.body['xdm:descriptorIdentity']).toHaveLength(1);
  });
});

describe('AEP emulator: Identity Service, Catalog and Flow Service', () => {
  it('should answer 409 NAMESPACE_CODE_CONFLICT for a code that exists, and 400 for a bad idType', async () => {
    // Act
    const namespaces = '/data/core/idnamespace/identities';
    const standard = await call('POST', namespaces, { name: 'E', code: 'email', idType: 'Email' });
    const badType = await call('POST', namespaces, { name: 'X', code: 'Acme', idType: 'Person' });

    // Assess
    expect(standard.status).toBe(409);
    expect(standard.body).toMatchObject({
      title: 'NAMESPACE_CODE_CONFLICT',
      report: { code: 'INTEGRATION_CODE_EXISTS' },
    });
    expect(badType.status).toBe(400);
    expect(badType.body.detail).toMatch(/valid value of idType/);
  });

  it('should refuse a Profile dataset whose schema is not enabled for Profile', async () => {
    // Prepare
    const { schema } = await provisionSchema();

    // Act
    const answer = await call('POST', '/data/foundation/catalog/dataSets', {
      name: 'P',
      schemaRef: { id: schema.$id, contentType: 'application/vnd.adobe.xed-full+json;version=1' },
      tags: { unifiedProfile: ['enabled:true'] },
    });

    // Assess
    expect(answer.status).toBe(400);
    expect(answer.body.detail).toMatch(/not enabled for Profile/);
  });

  it('should refuse a target connection whose schema is not the dataset schema', async () => {
    // Prepare
    const { datasetId } = await provisionSchema();

    // Act
    const answer = await call('POST', '/data/foundation/flowservice/targetConnections', {
      name: 't',
      connectionSpec: { id: 'c604ff05-7f1a-43c0-8e18-33bf874cb11c', version: '1.0' },
      data: { schema: { id: 'https://ns.adobe.com/acme/schemas/other' } },
      params: { dataSetId: datasetId },
    });

    // Assess
    expect(answer.status).toBe(400);
    expect(answer.body.detail).toMatch(/is not the schema of dataset/);
  });
});

describe('AEP emulator: ingestion against a provisioned schema', () => {
  beforeEach(async () => {
    // Validation answered in the request (the batch endpoint takes no ?syncValidation), so refusals are visible here
    await aep.close();
    aep = await startAepEmulator({
      clients: [CREDS],
      tenant: 'acme',
      datasets: [],
      connections: [],
      syncValidationForTests: true,
    });
    token = (await new ImsTokenProvider({ imsUrl: aep.imsTokenUrl, credentials: async () => CREDS }).auth())
      .accessToken;
  });

  it('should accept what the schema defines, refuse unknown fields, wrong types and missing groups', async () => {
    // Prepare: a streaming connection, source, target and dataflow created through the Flow Service, and four records
    const { schema, datasetId } = await provisionSchema();
    const http = { id: 'bc7b00d6-623a-4dfc-9fdb-f1240aeadaeb', version: '1.0' };
    const created = await call('POST', '/data/foundation/flowservice/connections', {
      name: 'c',
      connectionSpec: http,
      auth: { specName: 'Streaming Connection', params: { dataType: 'xdm', authenticationRequired: false } },
    });
    const connection = await call('GET', `/data/foundation/flowservice/connections/${created.body.id}`);
    const inletUrl: string = connection.body.items[0].auth.params.inletUrl;
    const source = await call('POST', '/data/foundation/flowservice/sourceConnections', {
      name: 's',
      baseConnectionId: created.body.id,
      connectionSpec: http,
    });
    const target = await call('POST', '/data/foundation/flowservice/targetConnections', {
      name: 't',
      connectionSpec: { id: 'c604ff05-7f1a-43c0-8e18-33bf874cb11c', version: '1.0' },
      data: { schema: { id: schema.$id, version: 'application/vnd.adobe.xed-full+json;version=1' } },
      params: { dataSetId: datasetId },
    });
    const flow = await call('POST', '/data/foundation/flowservice/flows', {
      name: 'f',
      flowSpec: { id: 'd8a6f005-7eaf-4153-983e-e8574508b877', version: '1.0' },
      sourceConnectionIds: [source.body.id],
      targetConnectionIds: [target.body.id],
    });
    expect([source.status, target.status, flow.status]).toEqual([201, 201, 201]);
    const base = { timestamp: '2024-03-01T12:00:00Z' };
    const records = [
      { _id: 'ok', ...base, web: { webPageDetails: { name: 'home' } }, _acme: { userId: 'u1', plan: 'pro' } },
      { _id: 'unknown-field', ...base, _acme: { userId: 'u1', seats: 3 } },
      { _id: 'wrong-type', ...base, _acme: { userId: 42 } },
      { _id: 'no-field-group', ...base, device: { model: 'x' } },
    ];
    const ref = { id: schema.$id, contentType: 'application/vnd.adobe.xed-full+json;version=1.0' };
    const message = (r: unknown) => ({
      header: { schemaRef: ref, imsOrgId: CREDS.orgId, datasetId, flowId: flow.body.id, source: { name: 't' } },
      body: { xdmMeta: { schemaRef: ref }, xdmEntity: r },
    });

    // Act
    const response = await fetch(`${inletUrl.replace('/collection/', '/collection/batch/')}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-sandbox-name': 'prod' },
      body: JSON.stringify({ messages: records.map(message) }),
    });
    const answer = (await response.json()) as { responses: Array<{ xactionId?: string; message?: string }> };

    // Assess
    expect(response.status).toBe(207);
    expect(answer.responses[0]?.xactionId).toBeDefined();
    expect(answer.responses[1]?.message).toMatch(/#\/_acme: extraneous key \[seats\]/);
    expect(answer.responses[2]?.message).toMatch(/#\/_acme\/userId: expected type: String/);
    expect(answer.responses[3]?.message).toMatch(/extraneous key \[device\] is not permitted by schema/);
    expect(aep.acceptedIds(datasetId)).toEqual(['ok']);
  });
});
