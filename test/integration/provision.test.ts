/**
 * `provision` against an empty AEP emulator: the objects it creates, that a second run creates none, a changed
 * mapping (field group extended, or refused when a type changes), a dataflow that already exists, a 403, and that
 * records the mapper writes are accepted by the schema it provisioned.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { platformHeaders } from '#aep/headers';
import { ImsTokenProvider } from '#aep/ims';
import { StreamingSink } from '#aep/streaming';
import { Buffered } from '#cli/io';
import { runCli } from '#cli/main';
import { compileMapper } from '#mapping/mapper';
import { presetConfig } from '#mapping/config';
import { type AepEmulator, startAepEmulator } from '#emulators/aep/server';

const CREDS = { clientId: 'client-prov', clientSecret: 'secret-prov-123', orgId: 'ORGPROV@AdobeOrg' };
const PLAN_FIELD = { from: 'properties.plan', to: '_acme.mixpanel.plan', type: 'string' as const };

let aep: AepEmulator;
let dir: string;
let env: Record<string, string>;

beforeEach(async () => {
  aep = await startAepEmulator({ clients: [CREDS], tenant: 'acme', sandbox: 'dev', datasets: [], connections: [] });
  dir = await mkdtemp(path.join(tmpdir(), 'provision-'));
  env = {
    AEP_CLIENT_ID: CREDS.clientId,
    AEP_CLIENT_SECRET: CREDS.clientSecret,
    AEP_ORG_ID: CREDS.orgId,
    AEP_IMS_URL: aep.imsTokenUrl,
    AEP_PLATFORM_URL: aep.platformUrl,
    AEP_SANDBOX: 'dev',
    AEP_SINK: 'streaming',
    MAPPING: 'default',
  };
});

afterEach(async () => {
  await aep.close();
  await rm(dir, { recursive: true, force: true });
});

async function provision(args: string[] = [], extra: Record<string, string> = {}) {
  const io = { stdout: new Buffered(), stderr: new Buffered() };
  const code = await runCli(['provision', ...args], { ...env, ...extra }, io, { cwd: dir, sleep: async () => {} });
  return { code, out: io.stdout.text, err: io.stderr.text };
}

function values(out: string): Record<string, string> {
  const pairs = [...out.matchAll(/^ {2}(AEP_[A-Z_]+)=(.*)$/gm)].map((m) => [m[1] as string, m[2] as string]);
  return Object.fromEntries(pairs);
}

/** Maps two Mixpanel events with `mapping` and streams them to the provisioned inlet; returns the accepted ids. */
async function streamMapped(
  v: Record<string, string>,
  mapping = presetConfig('default'),
  properties: Record<string, unknown> = {},
) {
  const tenant = v.AEP_TENANT_ID as string;
  const mapper = compileMapper(mapping, { projectId: '42', tenant, projectTimezone: 'UTC', legacyLocalTime: false });
  const records = ['a', 'b'].map((u) => {
    const props = { time: 1_700_000_000, distinct_id: `u-${u}`, $insert_id: `i-${u}`, $browser: 'Chrome' };
    const raw = { event: 'Signed Up', properties: { ...props, ...properties } };
    const outcome = mapper(raw);
    if (!outcome.ok) throw new Error(`mapping failed: ${JSON.stringify(outcome)}`);
    return { id: outcome.id, json: outcome.json };
  });
  const tokens = new ImsTokenProvider({ imsUrl: aep.imsTokenUrl, credentials: async () => CREDS });
  const sink = new StreamingSink({
    target: {
      inletUrl: v.AEP_INLET_URL as string,
      datasetId: v.AEP_DATASET_ID as string,
      schemaId: v.AEP_SCHEMA_ID as string,
      sandbox: 'dev',
      flowId: v.AEP_FLOW_ID as string,
    },
    tokens,
    sleep: async () => {},
  });
  return sink.send(records);
}

describe('provision', () => {
  it('should create every object from an empty sandbox, and the schema accepts what the mapper writes', async () => {
    // Act
    const run = await provision();

    // Assess: exit code, values, objects, and ingestion against the provisioned schema
    expect(run.err).toBe('');
    expect(run.code).toBe(0);
    const v = values(run.out);
    expect(v.AEP_TENANT_ID).toBe('acme');
    expect(v.AEP_SCHEMA_ID).toMatch(/^https:\/\/ns\.adobe\.com\/acme\/schemas\/[0-9a-f]+$/);
    expect(v.AEP_DATASET_ID).toMatch(/^[0-9a-f]+$/);
    expect(v.AEP_INLET_URL).toMatch(new RegExp(`^${aep.url}/collection/[0-9a-f]+$`));
    expect(v.AEP_FLOW_ID).toMatch(/^[0-9a-f-]{36}$/);
    expect(v.AEP_PROFILE_ENABLED).toBe('false');
    expect(aep.setupCounts()).toEqual({
      fieldGroups: 1,
      schemas: 1,
      descriptors: 1,
      namespaces: 3,
      datasets: 1,
      connections: 1,
      sourceConnections: 1,
      targetConnections: 1,
      flows: 1,
    });
    const result = await streamMapped(v);
    expect(result.accepted).toHaveLength(2);
    expect(aep.acceptedIds(v.AEP_DATASET_ID)).toHaveLength(2);
  });

  it('should create nothing on a second run and print the same values', async () => {
    // Prepare
    const first = await provision();
    const counts = aep.setupCounts();

    // Act
    const second = await provision();

    // Assess
    expect(second.code).toBe(0);
    expect(aep.setupCounts()).toEqual(counts);
    expect(values(second.out)).toEqual(values(first.out));
    expect(second.out).not.toMatch(/ created /);
    expect(second.out).toMatch(/=\s+dataflow\s+found/);
  });

  it('should extend the field group when the mapping adds a field, and the new field is then accepted', async () => {
    // Prepare: provisioned with the default preset
    await provision();
    const mapping = { ...presetConfig('default'), fields: [PLAN_FIELD] };
    const file = path.join(dir, 'mapping.json');
    await writeFile(file, JSON.stringify(mapping));

    // Act
    const run = await provision([], { MAPPING: file });

    // Assess: extended in place (no new field group or schema), and records with the new field are accepted
    expect(run.err).toBe('');
    expect(run.code).toBe(0);
    expect(run.out).toMatch(/~\s+field group\s+extended .*adds \/_acme\/mixpanel\/plan/);
    expect(aep.setupCounts().fieldGroups).toBe(1);
    expect(aep.setupCounts().schemas).toBe(1);
    const result = await streamMapped(values(run.out), mapping, { plan: 'pro' });
    expect(result.accepted).toHaveLength(2);
  });

  it('should refuse a mapping that changes the type of a field, saying which field and what to do', async () => {
    // Prepare
    await provision();
    const mapping = { ...presetConfig('default'), fields: [PLAN_FIELD] };
    const file = path.join(dir, 'mapping.json');
    await writeFile(file, JSON.stringify(mapping));
    await provision([], { MAPPING: file });
    await writeFile(file, JSON.stringify({ ...mapping, fields: [{ ...mapping.fields[0], type: 'integer' }] }));

    // Act
    const run = await provision([], { MAPPING: file });

    // Assess
    expect(run.code).toBe(1);
    expect(run.err).toMatch(/\/_acme\/mixpanel\/plan: the field group has string, the mapping writes integer/);
    expect(run.err).toMatch(/only additive changes/);
  });

  it('should reuse a dataflow that already exists between the connections, whatever its name', async () => {
    // Prepare: schema and dataset provisioned for the batch sink, then a streaming dataflow made by hand
    const batch = await provision([], { AEP_SINK: 'batch' });
    const v = values(batch.out);
    expect(v.AEP_INLET_URL).toBeUndefined();
    const handMade = await createDataflowByHand(v.AEP_SCHEMA_ID as string, v.AEP_DATASET_ID as string);

    // Act
    const run = await provision();

    // Assess: the hand-made dataflow is the one printed, and no second one exists
    expect(run.code).toBe(0);
    expect(values(run.out).AEP_FLOW_ID).toBe(handMade);
    expect(run.out).toMatch(/=\s+dataflow\s+found\s+My own dataflow/);
    expect(aep.setupCounts().flows).toBe(1);
  });

  it('should fail on a 403 with the permission and the sandbox to fix, and create nothing', async () => {
    // Prepare: Platform refuses the first setup call twice (the client renews its token once)
    const body = { error_code: '403027', message: 'User region is missing' };
    aep.injectFault({ kind: 'status', target: 'provision', status: 403, body });
    aep.injectFault({ kind: 'status', target: 'provision', status: 403, body });

    // Act
    const run = await provision();

    // Assess
    expect(run.code).toBe(1);
    expect(run.err).toMatch(/HTTP 403 403027: User region is missing/);
    expect(run.err).toMatch(/permission "Manage Schemas" on sandbox "dev"/);
    expect(run.err).toMatch(/docs\/deploy\.md/);
    expect(run.err).not.toContain(CREDS.clientSecret);
    expect(aep.setupCounts().schemas).toBe(0);
  });

  it('should retry a 503 with Retry-After like the ingestion clients, and finish', async () => {
    // Prepare
    aep.injectFault({ kind: 'status', target: 'provision', status: 503, retryAfterSeconds: 2 });
    const waits: number[] = [];
    const io = { stdout: new Buffered(), stderr: new Buffered() };

    // Act
    const code = await runCli(['provision'], env, io, { cwd: dir, sleep: async (ms) => void waits.push(ms) });

    // Assess
    expect(code).toBe(0);
    expect(waits).toEqual([2000]);
    expect(aep.setupCounts().flows).toBe(1);
  });

  it('should list every call and change nothing with --dry-run', async () => {
    // Act
    const run = await provision(['--dry-run']);

    // Assess
    expect(run.code).toBe(0);
    expect(Object.values(aep.setupCounts()).every((n) => n === 0)).toBe(true);
    for (const call of [
      'POST /data/foundation/schemaregistry/tenant/fieldgroups',
      'POST /data/foundation/schemaregistry/tenant/schemas',
      'POST /data/core/idnamespace/identities',
      'POST /data/foundation/schemaregistry/tenant/descriptors',
      'POST /data/foundation/catalog/dataSets',
      'POST /data/foundation/flowservice/connections',
      'POST /data/foundation/flowservice/sourceConnections',
      'POST /data/foundation/flowservice/targetConnections',
      'POST /data/foundation/flowservice/flows',
    ]) {
      expect(run.out).toContain(call);
    }
    expect(run.out).toMatch(/Calls that would be made \(11\)/);
  });

  it('should write the values into connector.config.json with --write-config', async () => {
    // Prepare
    const file = path.join(dir, 'connector.config.json');
    const config = { projects: [], aep: { secret: { name: 'mixpanel-aep/aep' }, sandbox: 'dev' } };
    await writeFile(file, JSON.stringify(config));

    // Act
    const run = await provision(['--write-config', 'connector.config.json', '--profile']);

    // Assess
    expect(run.code).toBe(0);
    const written = JSON.parse(await readFile(file, 'utf8')) as { aep: Record<string, string> };
    const v = values(run.out);
    expect(written.aep).toMatchObject({
      secret: { name: 'mixpanel-aep/aep' },
      sandbox: 'dev',
      tenantId: 'acme',
      schemaId: v.AEP_SCHEMA_ID,
      datasetId: v.AEP_DATASET_ID,
      inletUrl: v.AEP_INLET_URL,
      flowId: v.AEP_FLOW_ID,
      profileEnabled: true,
    });
    expect(v.AEP_PROFILE_ENABLED).toBe('true');
    expect(run.out).toMatch(/enabled for Profile/);
  });
});

/** Creates the streaming connection, source, target and a dataflow named "My own dataflow" straight on the API. */
async function createDataflowByHand(schemaId: string, datasetId: string): Promise<string> {
  const tokens = new ImsTokenProvider({ imsUrl: aep.imsTokenUrl, credentials: async () => CREDS });
  const headers = {
    ...platformHeaders((await tokens.auth()).accessToken, CREDS, 'dev'),
    'content-type': 'application/json',
  };
  const post = async (kind: string, body: unknown): Promise<string> => {
    const url = `${aep.platformUrl}/data/foundation/flowservice/${kind}`;
    const response = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) });
    expect(response.status).toBe(201);
    return ((await response.json()) as { id: string }).id;
  };
  const http = { id: 'bc7b00d6-623a-4dfc-9fdb-f1240aeadaeb', version: '1.0' };
  const base = 'Mixpanel events streaming';
  const connection = await post('connections', {
    name: `${base} connection`,
    connectionSpec: http,
    auth: { specName: 'Streaming Connection', params: { dataType: 'xdm', authenticationRequired: true } },
  });
  const source = await post('sourceConnections', {
    name: `${base} source`,
    baseConnectionId: connection,
    connectionSpec: http,
  });
  const target = await post('targetConnections', {
    name: `${base} target`,
    connectionSpec: { id: 'c604ff05-7f1a-43c0-8e18-33bf874cb11c', version: '1.0' },
    data: { schema: { id: schemaId, version: 'application/vnd.adobe.xed-full+json;version=1' } },
    params: { dataSetId: datasetId },
  });
  return post('flows', {
    name: 'My own dataflow',
    flowSpec: { id: 'd8a6f005-7eaf-4153-983e-e8574508b877', version: '1.0' },
    sourceConnectionIds: [source],
    targetConnectionIds: [target],
  });
}
