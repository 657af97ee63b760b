/**
 * The AEP emulator as strict as Adobe's docs: DCS request and envelope checks, asynchronous XDM validation into
 * failed streaming batches (Catalog + Data Access API), the batch promotion lifecycle, error 106, error diagnostics,
 * IMS scope.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { type AepEmulator, type AepEmulatorOptions, startAepEmulator } from '../../emulators/aep/server.ts';

const ORG = 'ORG1@AdobeOrg';
const SCHEMA = 'https://ns.adobe.com/acme/schemas/0123456789abcdef';
const DS = 'ds-events';
const OTHER_DS = 'ds-other';
const INLET = 'inlet-1';

let aep: AepEmulator | undefined;
let seq = 0;

afterEach(async () => {
  await aep?.close();
  aep = undefined;
});

async function start(extra: Partial<AepEmulatorOptions> = {}): Promise<AepEmulator> {
  aep = await startAepEmulator({
    clients: [{ clientId: 'connector', clientSecret: 's3cret', orgId: ORG }],
    tenant: 'acme',
    datasets: [
      { id: DS, schemaId: SCHEMA },
      { id: OTHER_DS, schemaId: SCHEMA, schemaVersion: '1.2' },
    ],
    connections: [
      { id: INLET, authenticated: true },
      { id: 'inlet-2', authenticated: true },
    ],
    flows: [
      { id: 'flow-1', connectionId: INLET, datasetId: DS },
      { id: 'flow-other', connectionId: INLET, datasetId: OTHER_DS },
      { id: 'flow-2', connectionId: 'inlet-2', datasetId: DS },
    ],
    ...extra,
  });
  return aep;
}

function emu(): AepEmulator {
  if (aep === undefined) throw new Error('emulator not started');
  return aep;
}

async function token(scope: string | null = 'openid,AdobeID'): Promise<Response> {
  const form: Record<string, string> = {
    grant_type: 'client_credentials',
    client_id: 'connector',
    client_secret: 's3cret',
  };
  if (scope !== null) form.scope = scope;
  return fetch(emu().imsTokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  });
}

async function headers(): Promise<Record<string, string>> {
  const { access_token: t } = (await (await token()).json()) as { access_token: string };
  return { authorization: `Bearer ${t}`, 'x-api-key': 'connector', 'x-gw-ims-org-id': ORG, 'x-sandbox-name': 'prod' };
}

function entity(extra: Record<string, unknown> = {}): Record<string, unknown> {
  seq += 1;
  return { _id: `e-${seq}`, timestamp: '2024-05-17T22:05:48Z', _acme: { n: seq }, ...extra };
}

function msg(xdmEntity: unknown, header: Record<string, unknown> = {}, version = '1.0'): Record<string, unknown> {
  const schemaRef = { id: SCHEMA, contentType: `application/vnd.adobe.xed-full+json;version=${version}` };
  return {
    header: { schemaRef, imsOrgId: ORG, datasetId: DS, flowId: 'flow-1', source: { name: 'src' }, ...header },
    body: { xdmMeta: { schemaRef }, xdmEntity },
  };
}

interface Dcs {
  status: number;
  body: {
    responses?: Array<{ xactionId?: string; statusCode?: number; message?: string }>;
    report?: { message: string };
  };
}

async function dcs(
  body: unknown,
  opts: { headers?: Record<string, string | undefined>; path?: string } = {},
): Promise<Dcs> {
  const h: Record<string, string> = {};
  for (const [k, v] of Object.entries({ ...(await headers()), 'content-type': 'application/json', ...opts.headers })) {
    if (v !== undefined) h[k] = v;
  }
  const res = await fetch(`${emu().url}${opts.path ?? `/collection/batch/${INLET}`}`, {
    method: 'POST',
    headers: h,
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Dcs['body'] };
}

async function platform(path: string, init: RequestInit = {}): Promise<Response> {
  return fetch(`${emu().platformUrl}${path}`, {
    ...init,
    headers: { ...(await headers()), ...(init.headers as Record<string, string>) },
  });
}

type Batches = Record<
  string,
  {
    status: string;
    relatedObjects: Array<{ id: string }>;
    created: number;
    errors?: Array<{ code: string }>;
    recordCount?: number;
  }
>;

async function listBatches(query: string): Promise<Batches> {
  const res = await platform(`/data/foundation/catalog/batches?${query}`);
  expect(res.status).toBe(200);
  return (await res.json()) as Batches;
}

async function batchStatus(
  id: string,
): Promise<{ status: string; errors?: Array<{ code: string; description: string }> }> {
  return (
    (await (await platform(`/data/foundation/catalog/batches/${id}`)).json()) as Record<string, { status: string }>
  )[id] as {
    status: string;
  };
}

/** Creates, fills and completes an ingestion batch; answers its id. */
async function ingest(files: Record<string, string>, create: Record<string, unknown> = {}): Promise<string> {
  const created = await platform('/data/foundation/import/batches', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ datasetId: DS, inputFormat: { format: 'json' }, ...create }),
  });
  const { id } = (await created.json()) as { id: string };
  for (const [name, text] of Object.entries(files)) {
    const put = await platform(`/data/foundation/import/batches/${id}/datasets/${DS}/files/${name}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream' },
      body: text,
    });
    expect(put.status).toBe(200);
  }
  expect((await platform(`/data/foundation/import/batches/${id}?action=COMPLETE`, { method: 'POST' })).status).toBe(
    200,
  );
  return id;
}

const lines = (records: unknown[]): string => `${records.map((r) => JSON.stringify(r)).join('\n')}\n`;

describe('AEP emulator (strict): DCS request checks', () => {
  it('should refuse a request without x-sandbox-name, with another sandbox, or without a JSON content type', async () => {
    // Prepare
    await start();
    const body = { messages: [msg(entity())] };

    // Act
    const noSandbox = await dcs(body, { headers: { 'x-sandbox-name': undefined } });
    const otherSandbox = await dcs(body, { headers: { 'x-sandbox-name': 'dev' } });
    const noType = await dcs(body, { headers: { 'content-type': 'text/plain' } });
    const smile = await dcs(body, { headers: { 'content-type': 'application/x-jackson-smile' } });

    // Assess
    expect([noSandbox.status, otherSandbox.status, noType.status, smile.status]).toEqual([400, 403, 400, 501]);
    expect(noSandbox.body.report?.message).toContain('Missing header: x-sandbox-name');
    expect(noType.body.report?.message).toContain('A valid content-type must be specified');
    expect(emu().acceptedIds()).toEqual([]);
  });

  it('should refuse syncValidation on the batch endpoint and a value other than true or false', async () => {
    // Prepare
    await start();

    // Act
    const onBatch = await dcs(
      { messages: [msg(entity())] },
      { path: `/collection/batch/${INLET}?syncValidation=true` },
    );
    const notBoolean = await dcs(msg(entity()), { path: `/collection/${INLET}?syncValidation=yes` });

    // Assess
    expect(onBatch.status).toBe(400);
    expect(onBatch.body.report?.message).toContain('only available for the single message endpoint');
    expect(notBoolean.status).toBe(400);
  });

  it('should refuse a message without flowId, with an unknown flow, or with a flow of another connection or dataset', async () => {
    // Prepare
    await start();
    const messages = [
      msg(entity(), { flowId: undefined }),
      msg(entity(), { flowId: 'no-such-flow' }),
      msg(entity(), { flowId: 'flow-2' }),
      msg(entity(), { flowId: 'flow-other' }),
      msg(entity()),
    ];

    // Act
    const { body } = await dcs({ messages });

    // Assess
    const reasons = body.responses?.map(
      (r) => r.message?.replace(/^inletId: \[[^\]]*\] imsOrgId: \[[^\]]*\] /, '') ?? 'ok',
    );
    expect(reasons).toEqual([
      'Message has unknown xdm format: header.flowId is missing',
      'Message has an unknown flowId [no-such-flow]: no such dataflow',
      `Message has a wrong flowId [flow-2]: the dataflow does not write from this connection to dataset [${DS}]`,
      `Message has a wrong flowId [flow-other]: the dataflow does not write from this connection to dataset [${DS}]`,
      'ok',
    ]);
    expect(emu().acceptedIds()).toHaveLength(1);
  });

  it('should require the dataset schema version in schemaRef.contentType', async () => {
    // Prepare
    await start();
    const header = { datasetId: OTHER_DS, flowId: 'flow-other' };

    // Act
    const { body } = await dcs({ messages: [msg(entity(), header, '1.0'), msg(entity(), header, '1.2')] });

    // Assess
    expect(body.responses?.[0]?.message).toContain(
      'header.schemaRef.contentType must be application/vnd.adobe.xed-full+json;version=1.2',
    );
    expect(body.responses?.[1]).toEqual({ xactionId: expect.any(String) });
    expect(emu().acceptedIds(OTHER_DS)).toHaveLength(1);
  });
});

describe('AEP emulator (strict): asynchronous validation', () => {
  it('should accept an invalid record and put it, after the slice settles, in a failed batch with downloadable records', async () => {
    // Prepare
    await start();
    const before = Date.now() - 1;
    const good = entity();
    const bad = entity({ timestamp: '2024-00-10T22:07:56Z' });
    const unnamed = entity();

    // Act
    const { status, body } = await dcs({ messages: [msg(good), msg(bad), msg(unnamed, { source: {} })] });
    const beforeSettle = await listBatches(`dataSet=${DS}`);
    emu().settle();
    const failed = Object.entries(await listBatches(`dataSet=${DS}&status=failed&createdAfter=${before}`));
    const succeeded = Object.values(await listBatches(`dataSet=${DS}&status=success`));
    const failedId = failed[0]?.[0] as string;
    const listing = (await (await platform(`/data/foundation/export/batches/${failedId}/failed`)).json()) as {
      data: Array<{ name: string; length: string; _links: { self: { href: string } } }>;
      _page: { count: number };
    };
    const part = listing.data.find((f) => f.name.startsWith('part-')) as { name: string };
    const file = await platform(
      `/data/foundation/export/batches/${failedId}/failed?path=${encodeURIComponent(part.name)}`,
    );
    const rows = (await file.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);

    // Assess
    expect(status).toBe(207);
    expect(body.responses?.every((r) => r.xactionId !== undefined)).toBe(true);
    expect(beforeSettle).toEqual({});
    expect(emu().acceptedIds()).toEqual([good._id]);
    expect(failed).toHaveLength(1);
    expect(failed[0]?.[1]).toMatchObject({
      status: 'failed',
      relatedObjects: [{ type: 'dataSet', id: DS }],
      recordCount: 2,
    });
    expect(succeeded).toEqual([expect.objectContaining({ status: 'success', recordCount: 1 })]);
    expect(listing.data.map((f) => f.name)).toEqual(['_SUCCESS', part.name]);
    expect(listing._page.count).toBe(2);
    expect(rows.map((r) => r._id)).toEqual([bad._id, unnamed._id]);
    expect(rows[0]?._validationErrors).toEqual([
      expect.objectContaining({
        keyword: 'format',
        pointerToViolation: '#/timestamp',
        message: expect.stringContaining('is not a valid date-time'),
      }),
    ]);
    expect(rows[1]?._errors).toEqual({
      _streamingValidation: [{ message: 'Payload header is missing Source Name' }],
    });
    expect(emu().stats).toMatchObject({ messagesAccepted: 3, messagesRejected: 0, recordsFailedValidation: 2 });
  });

  it('should fail an ExperienceEvent over 10 KB of a Profile-enabled dataset asynchronously, and only there', async () => {
    // Prepare: DS is enabled for Profile, OTHER_DS is not; each gets a small and an 11 KB record
    await start({
      datasets: [
        { id: DS, schemaId: SCHEMA, profile: true },
        { id: OTHER_DS, schemaId: SCHEMA, schemaVersion: '1.2' },
      ],
    });
    const before = Date.now() - 1;
    const small = entity();
    const large = entity({ _acme: { blob: 'x'.repeat(11_000) } });
    const elsewhere = entity({ _acme: { blob: 'x'.repeat(11_000) } });
    const other = { datasetId: OTHER_DS, flowId: 'flow-other' };

    // Act
    const { status, body } = await dcs({ messages: [msg(small), msg(large), msg(elsewhere, other, '1.2')] });
    emu().settle();
    const failed = Object.entries(await listBatches(`dataSet=${DS}&status=failed&createdAfter=${before}`));
    const failedId = failed[0]?.[0] as string;
    const listing = (await (await platform(`/data/foundation/export/batches/${failedId}/failed`)).json()) as {
      data: Array<{ name: string }>;
    };
    const part = listing.data.find((f) => f.name.startsWith('part-')) as { name: string };
    const file = await platform(
      `/data/foundation/export/batches/${failedId}/failed?path=${encodeURIComponent(part.name)}`,
    );
    const rows = (await file.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);

    // Assess: DCS took all three; the large record of the Profile dataset alone failed, with the reason
    expect(status).toBe(207);
    expect(body.responses?.every((r) => r.xactionId !== undefined)).toBe(true);
    expect(emu().acceptedIds().sort()).toEqual([small._id, elsewhere._id].sort());
    expect(failed).toHaveLength(1);
    expect(rows.map((r) => r._id)).toEqual([large._id]);
    expect(JSON.stringify(rows[0]?._errors)).toMatch(/over the 10000-byte Profile limit/);
  });

  it('should show a slice in Catalog once its time has passed, without a settle call', async () => {
    // Prepare
    await start({ streamingSliceMs: 100 });
    await dcs({ messages: [msg(entity({ _id: undefined }))] });

    // Act
    await new Promise((resolve) => setTimeout(resolve, 250));
    const listed = Object.values(await listBatches('status=failed'));

    // Assess
    expect(listed).toEqual([expect.objectContaining({ status: 'failed', recordCount: 1 })]);
  });

  it('should validate synchronously on the single-message endpoint only with syncValidation=true', async () => {
    // Prepare
    await start();
    const invalid = msg(entity({ timestamp: 'yesterday' }));

    // Act
    const asynchronous = await dcs(invalid, { path: `/collection/${INLET}` });
    const synchronous = await dcs(invalid, { path: `/collection/${INLET}?syncValidation=true` });

    // Assess
    expect(asynchronous.status).toBe(200);
    expect(asynchronous.body).toMatchObject({ syncValidation: { skipped: true } });
    expect(synchronous.status).toBe(400);
    expect(synchronous.body.report?.message).toContain('Message is invalid');
    expect(emu().stats).toMatchObject({ recordsFailedValidation: 1, messagesRejected: 1 });
  });
});

describe('AEP emulator (strict): Catalog batch list', () => {
  it('should filter exclusively by createdAfter, order, page, pick properties and refuse what it does not know', async () => {
    // Prepare
    await start();
    const first = await ingest({ 'a.json': lines([entity()]) });
    await new Promise((resolve) => setTimeout(resolve, 5));
    const second = await ingest({ 'b.json': lines([entity()]) });
    const firstCreated = (await listBatches(`batch=${first}`))[first]?.created as number;

    // Act
    const after = Object.keys(await listBatches(`createdAfter=${firstCreated}`));
    const newestFirst = Object.keys(await listBatches('orderBy=desc:created'));
    const paged = Object.keys(await listBatches('orderBy=asc:created&limit=1&start=1'));
    const picked = await listBatches(`batch=${second}&properties=status`);
    const tooMany = await platform('/data/foundation/catalog/batches?limit=101');
    const unknown = await platform('/data/foundation/catalog/batches?colour=red');

    // Assess
    expect(after).toEqual([second]);
    expect(newestFirst).toEqual([second, first]);
    expect(paged).toEqual([second]);
    expect(picked).toEqual({ [second]: { status: 'success' } });
    expect(tooMany.status).toBe(400);
    expect(unknown.status).toBe(400);
  });
});

describe('AEP emulator (strict): batch ingestion lifecycle', () => {
  it('should be staging after COMPLETE and success only once promoted, accepting the records then', async () => {
    // Prepare
    await start({ batchSettleDelayMs: 60_000 });
    const record = entity();

    // Act
    const id = await ingest({ 'a.json': lines([record]) });
    const staging = await batchStatus(id);
    const acceptedWhileStaging = emu().acceptedIds();
    const abort = await platform(`/data/foundation/import/batches/${id}?action=ABORT`, { method: 'POST' });
    emu().settle();
    const settled = await batchStatus(id);

    // Assess
    expect(staging.status).toBe('staging');
    expect(acceptedWhileStaging).toEqual([]);
    expect(abort.status).toBe(400);
    expect(settled.status).toBe('success');
    expect(emu().acceptedIds()).toEqual([record._id]);
  });

  it('should fail the whole batch with error 106 when one of its files is empty', async () => {
    // Prepare
    await start();

    // Act
    const id = await ingest({ 'a.json': lines([entity()]), 'b.json': '\n' });
    const batch = await batchStatus(id);

    // Assess
    expect(batch.status).toBe('failed');
    expect(batch.errors).toContainEqual({
      code: '106',
      description: 'Dataset file is empty. Please upload file with data.',
      rows: [],
    });
    expect(emu().acceptedIds()).toEqual([]);
  });

  it('should ingest within partialIngestionPercent and serve the failed rows as error diagnostics', async () => {
    // Prepare
    await start();
    const good = Array.from({ length: 9 }, () => entity());
    const bad = entity({ timestamp: undefined });
    const text = `${lines([...good, bad])}{not json\n`;

    // Act
    const id = await ingest({ 'a.json': text }, { enableErrorDiagnostics: true, partialIngestionPercent: 20 });
    const batch = await batchStatus(id);
    const listing = (await (await platform(`/data/foundation/export/batches/${id}/meta?path=row_errors`)).json()) as {
      data: Array<{ name: string }>;
    };
    const conversion = await platform(
      `/data/foundation/export/batches/${id}/meta?path=row_errors/conversion_errors_0.json`,
    );
    const parsing = await platform(`/data/foundation/export/batches/${id}/meta?path=row_errors/parsing_errors_0.json`);

    // Assess
    expect(batch.status).toBe('success');
    expect(batch.errors?.map((e) => e.code)).toEqual(['INGEST-1212-400', 'INGEST-1401-400', 'INGEST-1555-400']);
    expect(listing.data.map((f) => f.name)).toEqual(['parsing_errors_0.json', 'conversion_errors_0.json']);
    expect(JSON.parse(await conversion.text())).toMatchObject({
      _id: bad._id,
      _errors: [{ code: '1555' }],
      _filename: 'conversion_errors_0.json',
    });
    expect(JSON.parse(await parsing.text())).toMatchObject({
      _corrupt_record: '{not json',
      _errors: [{ code: '1401' }],
    });
    expect(emu().acceptedIds()).toEqual(good.map((e) => e._id));
  });

  it('should walk the states of a promotion fault and accept nothing when it ends stalled', async () => {
    // Prepare
    await start({ batchSettleDelayMs: 60_000 });
    emu().injectFault({ kind: 'promotion', states: ['retrying', 'stalled'] });

    // Act
    const id = await ingest({ 'a.json': lines([entity()]) });
    const first = await batchStatus(id);
    emu().settle();
    const last = await batchStatus(id);

    // Assess
    expect([first.status, last.status]).toEqual(['retrying', 'stalled']);
    expect(emu().acceptedIds()).toEqual([]);
  });
});

describe('AEP emulator (strict): IMS', () => {
  it('should refuse a token request without scope with invalid_scope', async () => {
    // Prepare
    await start();

    // Act
    const res = await token(null);

    // Assess
    expect(res.status).toBe(400);
    expect(await res.json()).toEqual({ error: 'invalid_scope', error_description: 'missing scope parameter' });
    expect(emu().stats.tokensIssued).toBe(0);
  });

  it('should answer 401 401013 on Platform once a token has expired', async () => {
    // Prepare
    await start({ tokenTtlSeconds: 1 });
    const h = await headers();

    // Act
    await new Promise((resolve) => setTimeout(resolve, 1_100));
    const res = await fetch(`${emu().platformUrl}/data/foundation/catalog/batches`, { headers: h });

    // Assess
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ error_code: '401013', message: 'Oauth token is not valid' });
  });
});
