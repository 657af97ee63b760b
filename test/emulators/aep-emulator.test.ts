import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MAX_BATCH_BYTES, MAX_FILES_PER_BATCH, guardrailFailure } from '../../emulators/aep/batch.ts';
import { type AepEmulator, type AepEmulatorOptions, startAepEmulator } from '../../emulators/aep/server.ts';

const ORG = 'ORG1@AdobeOrg';
const OTHER_ORG = 'ORG2@AdobeOrg';
const SCHEMA = 'https://ns.adobe.com/acme/schemas/0123456789abcdef';
const DATASET = 'ds-events';
const CONTENT_TYPE = 'application/vnd.adobe.xed-full+json;version=1.0';
const AUTH_INLET = 'auth-inlet';
const OPEN_INLET = 'open-inlet';

const FLOW = 'flow-1';
const OPEN_FLOW = 'flow-open';

let emulator: AepEmulator;

const OPTIONS: AepEmulatorOptions = {
  clients: [
    { clientId: 'connector', clientSecret: 's3cret', orgId: ORG },
    { clientId: 'other-app', clientSecret: 'other-secret', orgId: OTHER_ORG },
  ],
  tenant: 'acme',
  datasets: [{ id: DATASET, schemaId: SCHEMA }],
  connections: [
    { id: AUTH_INLET, authenticated: true },
    { id: OPEN_INLET, authenticated: false },
  ],
  flows: [
    { id: FLOW, connectionId: AUTH_INLET, datasetId: DATASET },
    { id: OPEN_FLOW, connectionId: OPEN_INLET, datasetId: DATASET },
  ],
};

beforeEach(async () => {
  emulator = await startAepEmulator(OPTIONS);
});

/** Replaces the emulator with one started with `extra` options. */
async function restart(extra: Partial<AepEmulatorOptions>): Promise<void> {
  await emulator.close();
  emulator = await startAepEmulator({ ...OPTIONS, ...extra });
}

afterEach(async () => {
  await emulator.close();
});

// ------------------------------------------------------------------------------------------------------------
// helpers: what a connector sends

async function requestToken(clientId = 'connector', clientSecret = 's3cret'): Promise<Response> {
  return fetch(emulator.imsTokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: clientId,
      client_secret: clientSecret,
      scope: 'openid,AdobeID,read_organizations',
    }),
  });
}

async function token(clientId = 'connector', clientSecret = 's3cret'): Promise<string> {
  const res = await requestToken(clientId, clientSecret);
  return ((await res.json()) as { access_token: string }).access_token;
}

function platformHeaders(accessToken: string, clientId = 'connector', org = ORG): Record<string, string> {
  return {
    authorization: `Bearer ${accessToken}`,
    'x-api-key': clientId,
    'x-gw-ims-org-id': org,
    'x-sandbox-name': 'prod',
  };
}

let sequence = 0;
function event(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  sequence += 1;
  return {
    _id: `evt-${sequence}`,
    timestamp: '2024-05-17T22:05:48.000Z',
    eventType: 'mixpanel.event',
    identityMap: { MixpanelDistinctId: [{ id: 'test@test.com', primary: true }] },
    _acme: { mixpanel: { eventName: 'Items purchased', insertId: '935d87b1', properties: { item_price: '800.00' } } },
    ...overrides,
  };
}

function message(entity: unknown, header: Record<string, unknown> = {}): Record<string, unknown> {
  const schemaRef = { id: SCHEMA, contentType: CONTENT_TYPE };
  return {
    header: {
      schemaRef,
      imsOrgId: ORG,
      datasetId: DATASET,
      flowId: FLOW,
      source: { name: 'mixpanel-aep-connector' },
      ...header,
    },
    body: { xdmMeta: { schemaRef }, xdmEntity: entity },
  };
}

interface BatchResponse {
  inletId: string;
  batchId: string;
  receivedTimeMs: number;
  responses: Array<{ xactionId?: string; statusCode?: number; message?: string }>;
}

async function postBatch(messages: unknown[], accessToken?: string, inlet = AUTH_INLET): Promise<Response> {
  return fetch(`${emulator.inletUrl(inlet).replace('/collection/', '/collection/batch/')}`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-sandbox-name': 'prod',
      ...(accessToken === undefined ? {} : platformHeaders(accessToken)),
    },
    body: JSON.stringify({ messages }),
  });
}

function jsonl(records: unknown[]): string {
  return `${records.map((r) => JSON.stringify(r)).join('\n')}\n`;
}

async function createBatch(accessToken: string, extra: Record<string, unknown> = {}): Promise<Response> {
  return fetch(`${emulator.platformUrl}/data/foundation/import/batches`, {
    method: 'POST',
    headers: { ...platformHeaders(accessToken), 'content-type': 'application/json' },
    body: JSON.stringify({ datasetId: DATASET, inputFormat: { format: 'json' }, ...extra }),
  });
}

async function newBatchId(accessToken: string, extra: Record<string, unknown> = {}): Promise<string> {
  return ((await (await createBatch(accessToken, extra)).json()) as { id: string }).id;
}

async function upload(
  accessToken: string,
  batchId: string,
  name: string,
  body: string | ReadableStream<Uint8Array>,
  contentType = 'application/octet-stream',
): Promise<Response> {
  return fetch(`${emulator.platformUrl}/data/foundation/import/batches/${batchId}/datasets/${DATASET}/files/${name}`, {
    method: 'PUT',
    headers: { ...platformHeaders(accessToken), 'content-type': contentType },
    body,
    ...(typeof body === 'string' ? {} : { duplex: 'half' }),
  } as RequestInit);
}

async function complete(accessToken: string, batchId: string): Promise<Response> {
  return fetch(`${emulator.platformUrl}/data/foundation/import/batches/${batchId}?action=COMPLETE`, {
    method: 'POST',
    headers: platformHeaders(accessToken),
  });
}

interface CatalogBatch {
  status: string;
  metrics?: { inputRecordCount: number; outputRecordCount: number; failedRecordCount: number; inputFileCount: number };
  errors?: Array<{
    code: string;
    description: string;
    recordCount?: number;
    samples?: Array<{ file: string; row: number; message: string }>;
  }>;
}

async function catalog(accessToken: string, batchId: string): Promise<CatalogBatch> {
  const res = await fetch(`${emulator.platformUrl}/data/foundation/catalog/batches/${batchId}`, {
    headers: platformHeaders(accessToken),
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as Record<string, CatalogBatch>;
  return body[batchId] as CatalogBatch;
}

// ------------------------------------------------------------------------------------------------------------

describe('AEP emulator: IMS', () => {
  it('should issue a bearer token to a known client', async () => {
    // Prepare
    // (emulator started with client "connector")

    // Act
    const res = await requestToken();
    const body = (await res.json()) as Record<string, unknown>;

    // Assess
    expect(res.status).toBe(200);
    expect(body).toEqual({ access_token: expect.any(String), token_type: 'bearer', expires_in: 86_399 });
    expect(emulator.stats.tokensIssued).toBe(1);
  });

  it('should refuse an unknown client with 400 and a wrong secret with 401, both invalid_client', async () => {
    // Prepare
    // (no token issued yet)

    // Act
    const unknown = await requestToken('nobody', 's3cret');
    const wrongSecret = await requestToken('connector', 'guess');

    // Assess
    expect(unknown.status).toBe(400);
    expect(await unknown.json()).toMatchObject({ error: 'invalid_client', error_description: expect.any(String) });
    expect(wrongSecret.status).toBe(401);
    expect(await wrongSecret.json()).toMatchObject({ error: 'invalid_client' });
    expect(emulator.stats.tokensIssued).toBe(0);
  });
});

describe('AEP emulator: gateway headers on Platform APIs', () => {
  const cases: Array<[string, (h: Record<string, string>) => void, number, Record<string, unknown>]> = [
    [
      'no Authorization',
      (h) => delete h.authorization,
      403,
      { error_code: '403010', message: 'Oauth token is missing.' },
    ],
    [
      'an unknown token',
      (h) => (h.authorization = 'Bearer not-a-token'),
      401,
      { error_code: '401013', message: 'Oauth token is not valid' },
    ],
    ['no x-api-key', (h) => delete h['x-api-key'], 403, { error_code: '403000', message: 'Api Key is required' }],
    [
      'another client as x-api-key',
      (h) => (h['x-api-key'] = 'other-app'),
      403,
      { error_code: '403003', message: 'Api Key is invalid' },
    ],
    [
      'no x-gw-ims-org-id',
      (h) => delete h['x-gw-ims-org-id'],
      400,
      { error_code: '400003', message: 'Missing header' },
    ],
    [
      'another org',
      (h) => (h['x-gw-ims-org-id'] = OTHER_ORG),
      403,
      { error_code: '403025', message: 'Profile is not valid' },
    ],
    ['no x-sandbox-name', (h) => delete h['x-sandbox-name'], 400, { error_code: '400003' }],
    ['another sandbox', (h) => (h['x-sandbox-name'] = 'dev'), 403, { title: 'Forbidden' }],
  ];

  it.each(cases)('should refuse a call with %s', async (_label, mutate, status, body) => {
    // Prepare
    const headers = { ...platformHeaders(await token()), 'content-type': 'application/json' };
    mutate(headers);

    // Act
    const res = await fetch(`${emulator.platformUrl}/data/foundation/import/batches`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ datasetId: DATASET, inputFormat: { format: 'json' } }),
    });

    // Assess
    expect(res.status).toBe(status);
    expect(await res.json()).toMatchObject(body);
    expect(Object.keys(emulator.stats.batches)).toEqual([]);
  });
});

describe('AEP emulator: DCS streaming', () => {
  it('should accept a batch of valid messages with 207, one xactionId each, and keep the records in order', async () => {
    // Prepare
    const entities = [event(), event(), event()];

    // Act
    const res = await postBatch(
      entities.map((e) => message(e)),
      await token(),
    );
    const body = (await res.json()) as BatchResponse;

    // Assess
    expect(res.status).toBe(207);
    expect(body.inletId).toBe(AUTH_INLET);
    expect(body.responses).toEqual([
      { xactionId: `${body.batchId}:0` },
      { xactionId: `${body.batchId}:1` },
      { xactionId: `${body.batchId}:2` },
    ]);
    expect(emulator.acceptedIds(DATASET)).toEqual(entities.map((e) => e._id));
    expect(emulator.acceptedRecords()).toEqual(entities);
    expect(emulator.stats).toMatchObject({ messagesAccepted: 3, messagesRejected: 0 });
  });

  it('should answer 207 with a 400 naming the path for each invalid message when validating synchronously (test convenience)', async () => {
    // Prepare
    await restart({ syncValidationForTests: true });
    const future = new Date(Date.now() + 60 * 60_000).toISOString();
    const valid = [event(), event()];
    const invalid = [
      event({ _acme: { mixpanel: { plan: null } } }),
      event({ _mixpanel: { plan: 'pro' } }),
      event({ timestamp: '2024-02-30T10:00:00Z' }),
      event({ timestamp: future }),
      event({ identityMap: { MixpanelDistinctId: [] } }),
      event({ identityMap: { A: [{ id: 'a', primary: true }], B: [{ id: 'b', primary: true }] } }),
    ];
    const messages = [valid[0], ...invalid, valid[1]].map((e) => message(e));

    // Act
    const res = await postBatch(messages, await token());
    const body = (await res.json()) as BatchResponse;

    // Assess
    expect(res.status).toBe(207);
    expect(body.responses.map((r) => r.statusCode ?? 'ok')).toEqual(['ok', 400, 400, 400, 400, 400, 400, 'ok']);
    const texts = body.responses.slice(1, 7).map((r) => r.message);
    expect(texts[0]).toContain('#/_acme/mixpanel/plan: null value is not permitted');
    expect(texts[1]).toContain('extraneous key [_mixpanel] is not permitted (custom fields belong under _acme)');
    expect(texts[2]).toContain('#/timestamp: [2024-02-30T10:00:00Z] is not a valid date-time');
    expect(texts[3]).toContain(`#/timestamp: [${future}] is in the future`);
    expect(texts[4]).toContain('#/identityMap/MixpanelDistinctId: expected minimum item count: 1');
    expect(texts[5]).toContain('#/identityMap: 2 identities are marked primary');
    for (const text of texts)
      expect(text).toMatch(/^inletId: \[auth-inlet\] imsOrgId: \[ORG1@AdobeOrg\] Message is invalid/);
    expect(emulator.acceptedIds()).toEqual(valid.map((e) => e._id));
    expect(emulator.stats).toMatchObject({ messagesAccepted: 2, messagesRejected: 6 });
  });

  it('should refuse envelope mistakes per message with the DCS wording', async () => {
    // Prepare
    const messages = [
      message(event(), { imsOrgId: OTHER_ORG }),
      message(event(), { datasetId: 'unknown-dataset' }),
      message(event(), { schemaRef: { id: SCHEMA, contentType: 'application/json' } }),
    ];
    const noEntity = {
      header: (message(event()) as { header: unknown }).header,
      body: { xdmMeta: { schemaRef: { id: SCHEMA, contentType: CONTENT_TYPE } } },
    };

    // Act
    const body = (await (await postBatch(messages, await token())).json()) as BatchResponse;
    await restart({ syncValidationForTests: true });
    const sync = (await (await postBatch([noEntity], await token())).json()) as BatchResponse;

    // Assess
    const reasons = [...body.responses, ...sync.responses].map(
      (r) => r.message?.replace(/^inletId: \[[^\]]*\] imsOrgId: \[[^\]]*\] /, '').split(':')[0],
    );
    expect(reasons).toEqual([
      'Message has an absent or wrong ims org in the header',
      'Dataset [unknown-dataset] does not exist',
      'Message has unknown xdm format',
      'Payload body is missing xdmEntity',
    ]);
    expect(emulator.acceptedIds()).toEqual([]);
  });

  it('should accept a request of exactly 1,000,000 bytes and refuse one byte more with 413', async () => {
    // Prepare
    const accessToken = await token();
    const sized = (bytes: number, id: string): string => {
      const base = JSON.stringify({ messages: [message(event({ _id: id, _acme: { pad: 'x' } }))] });
      return base.replace('"pad":"x"', `"pad":"${'x'.repeat(bytes - base.length + 1)}"`);
    };
    const post = (body: string) =>
      fetch(emulator.inletUrl(AUTH_INLET).replace('/collection/', '/collection/batch/'), {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...platformHeaders(accessToken) },
        body,
      });
    const atLimit = sized(1_000_000, 'at-limit');
    const overLimit = sized(1_000_001, 'over-limit');

    // Act
    const accepted = await post(atLimit);
    const refused = await post(overLimit);

    // Assess
    expect(Buffer.byteLength(atLimit)).toBe(1_000_000);
    expect(accepted.status).toBe(207);
    expect(refused.status).toBe(413);
    expect(await refused.json()).toMatchObject({ status: 413, title: 'Payload Too Large' });
    expect(emulator.acceptedIds()).toEqual(['at-limit']);
    expect(emulator.stats.maxRequestBytes).toBe(1_000_001);
  });

  it('should answer 401 to an authenticated connection without a token, and accept on an unauthenticated one', async () => {
    // Prepare
    const entity = event();

    // Act
    const refused = await postBatch([message(entity)], undefined, AUTH_INLET);
    const accepted = await postBatch([message(entity, { flowId: OPEN_FLOW })], undefined, OPEN_INLET);
    const badToken = await postBatch([message(entity, { flowId: OPEN_FLOW })], 'forged-token', OPEN_INLET);

    // Assess
    expect(refused.status).toBe(401);
    expect(await refused.json()).toEqual({
      type: 'https://ns.adobe.com/adobecloud/problem/data-collection-service-authorization',
      status: '401',
      title: 'Authorization',
      report: { message: '[auth-inlet] Ims service token is empty' },
    });
    expect(accepted.status).toBe(207);
    expect(badToken.status).toBe(401);
    expect(emulator.acceptedIds()).toEqual([entity._id]);
  });

  it('should answer 404 for an unknown connection and 400 for a body that is not JSON', async () => {
    // Prepare
    const accessToken = await token();

    // Act
    const unknown = await postBatch([message(event())], accessToken, 'no-such-inlet');
    const malformed = await fetch(emulator.inletUrl(AUTH_INLET).replace('/collection/', '/collection/batch/'), {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...platformHeaders(accessToken) },
      body: '{"messages": [',
    });

    // Assess
    expect(unknown.status).toBe(404);
    expect(malformed.status).toBe(400);
    expect(await malformed.json()).toMatchObject({ title: 'Invalid XDM Message Format' });
  });

  it('should answer the single-message endpoint with 200 and an xactionId, or 400 with the violations', async () => {
    // Prepare
    const accessToken = await token();
    const post = (body: unknown, query = '') =>
      fetch(emulator.inletUrl(AUTH_INLET) + query, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...platformHeaders(accessToken) },
        body: JSON.stringify(body),
      });
    const good = event();

    // Act
    const ok = await post(message(good));
    const bad = await post(message(event({ web: { webPageDetails: { URL: '' } } })), '?syncValidation=true');

    // Assess
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({
      inletId: AUTH_INLET,
      xactionId: expect.any(String),
      receivedTimeMs: expect.any(Number),
      syncValidation: { skipped: true },
    });
    expect(bad.status).toBe(400);
    const problem = (await bad.json()) as {
      report: { cause: { _streamingValidation: Array<{ causingExceptions: Array<{ pointerToViolation: string }> }> } };
    };
    expect(problem.report.cause._streamingValidation[0]?.causingExceptions.map((c) => c.pointerToViolation)).toEqual([
      '#/web/webPageDetails/URL',
    ]);
    expect(emulator.acceptedIds()).toEqual([good._id]);
  });

  it('should keep repeats in acceptedIds when the same record is delivered twice', async () => {
    // Prepare
    const accessToken = await token();
    const entity = event();

    // Act
    await postBatch([message(entity)], accessToken);
    await postBatch([message(entity), message(event())], accessToken);
    const state = (await (await fetch(`${emulator.url}/__emulator/state`)).json()) as {
      accepted: Record<string, { accepted: number; unique: number; duplicates: number }>;
      duplicatesTotal: number;
    };

    // Assess
    expect(emulator.acceptedIds().filter((id) => id === entity._id)).toHaveLength(2);
    expect(state.accepted[DATASET]).toEqual({ accepted: 3, unique: 2, duplicates: 1 });
    expect(state.duplicatesTotal).toBe(1);
  });
});

describe('AEP emulator: token expiry', () => {
  it('should answer 401013 on Platform and 401 on DCS after expireTokens, and serve a fresh token', async () => {
    // Prepare
    const stale = await token();
    emulator.expireTokens();

    // Act
    const platform = await createBatch(stale);
    const dcs = await postBatch([message(event())], stale);
    const retried = await createBatch(await token());

    // Assess
    expect(platform.status).toBe(401);
    expect(await platform.json()).toEqual({ error_code: '401013', message: 'Oauth token is not valid' });
    expect(dcs.status).toBe(401);
    expect(retried.status).toBe(201);
  });
});

describe('AEP emulator: faults', () => {
  it('should answer a status fault with its Retry-After once, process nothing, then serve the retry', async () => {
    // Prepare
    const accessToken = await token();
    const entity = event();
    emulator.injectFault({ kind: 'status', target: 'dcs', status: 503, retryAfterSeconds: 7 });

    // Act
    const faulted = await postBatch([message(entity)], accessToken);
    const retried = await postBatch([message(entity)], accessToken);

    // Assess
    expect(faulted.status).toBe(503);
    expect(faulted.headers.get('retry-after')).toBe('7');
    expect(retried.status).toBe(207);
    expect(emulator.acceptedIds()).toEqual([entity._id]);
  });

  it('should fail IMS with a status fault', async () => {
    // Prepare
    emulator.injectFault({
      kind: 'status',
      target: 'ims',
      status: 429,
      retryAfterSeconds: 2,
      body: { error: 'too_many_requests' },
    });

    // Act
    const faulted = await requestToken();
    const retried = await requestToken();

    // Assess
    expect(faulted.status).toBe(429);
    expect(faulted.headers.get('retry-after')).toBe('2');
    expect(await faulted.json()).toEqual({ error: 'too_many_requests' });
    expect(retried.status).toBe(200);
  });

  it('should fail every Nth message of the next DCS batch with the partial fault, inside the 207', async () => {
    // Prepare
    const accessToken = await token();
    const entities = Array.from({ length: 7 }, () => event());
    emulator.injectFault({ kind: 'partial', everyNth: 3, statusCode: 503 });

    // Act
    const first = (await (
      await postBatch(
        entities.map((e) => message(e)),
        accessToken,
      )
    ).json()) as BatchResponse;
    const second = (await (await postBatch([message(event())], accessToken)).json()) as BatchResponse;

    // Assess
    expect(first.responses.map((r) => r.statusCode ?? 'ok')).toEqual(['ok', 'ok', 503, 'ok', 'ok', 503, 'ok']);
    expect(first.responses[2]?.message).toContain('Service Unavailable');
    expect(emulator.acceptedIds().slice(0, 5)).toEqual([0, 1, 3, 4, 6].map((i) => entities[i]?._id));
    expect(second.responses[0]?.xactionId).toEqual(expect.any(String));
  });

  it('should expire tokens just before the next request with the expire-token fault', async () => {
    // Prepare
    const accessToken = await token();
    emulator.injectFault({ kind: 'expire-token' });

    // Act
    const expired = await postBatch([message(event())], accessToken);
    const stillExpired = await createBatch(accessToken);
    const fresh = await postBatch([message(event())], await token());

    // Assess
    expect(expired.status).toBe(401);
    expect(stillExpired.status).toBe(401);
    expect(fresh.status).toBe(207);
  });

  it('should answer each batch target status fault once, and the retries succeed', async () => {
    // Prepare
    const accessToken = await token();
    for (const target of ['batch-create', 'batch-upload', 'batch-complete', 'catalog'] as const) {
      emulator.injectFault({ kind: 'status', target, status: 500 });
    }
    const records = [event(), event()];

    // Act
    const createFaulted = await createBatch(accessToken);
    const batchId = await newBatchId(accessToken);
    const uploadFaulted = await upload(accessToken, batchId, 'part-0.json', jsonl(records));
    const uploaded = await upload(accessToken, batchId, 'part-0.json', jsonl(records));
    const completeFaulted = await complete(accessToken, batchId);
    const completed = await complete(accessToken, batchId);
    const catalogFaulted = await fetch(`${emulator.platformUrl}/data/foundation/catalog/batches/${batchId}`, {
      headers: platformHeaders(accessToken),
    });
    const status = await catalog(accessToken, batchId);

    // Assess
    expect([createFaulted.status, uploadFaulted.status, completeFaulted.status, catalogFaulted.status]).toEqual([
      500, 500, 500, 500,
    ]);
    expect([uploaded.status, completed.status]).toEqual([200, 200]);
    expect(status.status).toBe('success');
    expect(emulator.acceptedIds()).toEqual(records.map((r) => r._id));
  });
});

describe('AEP emulator: batch ingestion', () => {
  it('should create, upload, complete and report a batch, accepting its records only at completion', async () => {
    // Prepare
    const accessToken = await token();
    const part0 = [event(), event(), event()];
    const part1 = [event(), event()];

    // Act
    const created = await createBatch(accessToken);
    const batch = (await created.json()) as { id: string; status: string; relatedObjects: unknown[] };
    await upload(accessToken, batch.id, 'day=2024-05-17/part-0.json', jsonl(part0));
    await upload(accessToken, batch.id, 'day=2024-05-17/part-1.json', jsonl(part1));
    const beforeComplete = await catalog(accessToken, batch.id);
    const acceptedBefore = emulator.acceptedIds();
    const completed = await complete(accessToken, batch.id);
    const after = await catalog(accessToken, batch.id);

    // Assess
    expect(created.status).toBe(201);
    expect(batch).toMatchObject({ status: 'loading', relatedObjects: [{ type: 'dataSet', id: DATASET }] });
    expect(beforeComplete.status).toBe('loading');
    expect(acceptedBefore).toEqual([]);
    expect(completed.status).toBe(200);
    expect(after.status).toBe('success');
    expect(after.metrics).toMatchObject({
      inputFileCount: 2,
      inputRecordCount: 5,
      outputRecordCount: 5,
      failedRecordCount: 0,
    });
    expect(emulator.acceptedIds(DATASET)).toEqual([...part0, ...part1].map((r) => r._id));
    expect(emulator.acceptedRecords(DATASET)).toEqual([...part0, ...part1]);
    expect(emulator.stats.batches[batch.id]).toEqual({
      status: 'success',
      files: ['day=2024-05-17/part-0.json', 'day=2024-05-17/part-1.json'],
      records: 5,
    });
  });

  it('should replace a file uploaded again under the same name and not double records when COMPLETE is retried', async () => {
    // Prepare
    const accessToken = await token();
    const batchId = await newBatchId(accessToken);
    const firstAttempt = [event(), event(), event()];
    const secondAttempt = [event(), event()];

    // Act
    await upload(accessToken, batchId, 'part-0.json', jsonl(firstAttempt));
    const reuploaded = await upload(accessToken, batchId, 'part-0.json', jsonl(secondAttempt));
    const completions = [
      await complete(accessToken, batchId),
      await complete(accessToken, batchId),
      await complete(accessToken, batchId),
    ];
    const status = await catalog(accessToken, batchId);

    // Assess
    expect(reuploaded.status).toBe(200);
    expect(completions.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(status.metrics).toMatchObject({ inputRecordCount: 2, outputRecordCount: 2 });
    expect(emulator.acceptedIds()).toEqual(secondAttempt.map((r) => r._id));
  });

  it('should fail the whole batch on an invalid line unless partial ingestion allows it', async () => {
    // Prepare
    const accessToken = await token();
    const good = Array.from({ length: 9 }, () => event());
    const lines =
      jsonl(good.slice(0, 4)) +
      JSON.stringify(event({ _acme: { mixpanel: { plan: null } } })) +
      '\n' +
      jsonl(good.slice(4));
    const strict = await newBatchId(accessToken);
    const diagnosed = await newBatchId(accessToken, { enableErrorDiagnostics: true });
    const tolerant = await newBatchId(accessToken, { enableErrorDiagnostics: true, partialIngestionPercent: 10 });
    const tooStrict = await newBatchId(accessToken, { partialIngestionPercent: 5 });

    // Act
    for (const batchId of [strict, diagnosed, tolerant, tooStrict]) {
      await upload(accessToken, batchId, 'part-0.json', lines);
      await complete(accessToken, batchId);
    }
    const [s, d, t, ts] = await Promise.all(
      [strict, diagnosed, tolerant, tooStrict].map((id) => catalog(accessToken, id)),
    );

    // Assess
    expect(s?.status).toBe('failed');
    expect(s?.errors).toEqual([expect.objectContaining({ code: 'INGEST-1211-400' })]);
    expect(d?.status).toBe('failed');
    expect(d?.errors?.[0]).toMatchObject({ code: 'INGEST-1555-400', recordCount: 1 });
    expect(d?.errors?.[0]?.samples?.[0]).toEqual({
      file: 'part-0.json',
      row: 5,
      message: '#/_acme/mixpanel/plan: null value is not permitted: omit the key',
    });
    expect(t?.status).toBe('success');
    expect(t?.metrics).toMatchObject({ inputRecordCount: 10, outputRecordCount: 9, failedRecordCount: 1 });
    expect(t?.errors?.map((e) => e.code)).toEqual(['INGEST-1212-400', 'INGEST-1555-400']);
    expect(ts?.status).toBe('failed');
    expect(emulator.acceptedIds()).toEqual(good.map((r) => r._id));
  });

  it('should refuse uploads to an unknown batch, another org, a settled batch, or without octet-stream', async () => {
    // Prepare
    const accessToken = await token();
    const otherToken = await token('other-app', 'other-secret');
    const batchId = await newBatchId(accessToken);
    const settled = await newBatchId(accessToken);
    await upload(accessToken, settled, 'part-0.json', jsonl([event()]));
    await complete(accessToken, settled);

    // Act
    const unknown = await upload(accessToken, '01UNKNOWNBATCH0000000000000', 'part-0.json', jsonl([event()]));
    const otherOrg = await fetch(
      `${emulator.platformUrl}/data/foundation/import/batches/${batchId}/datasets/${DATASET}/files/p.json`,
      {
        method: 'PUT',
        headers: { ...platformHeaders(otherToken, 'other-app', OTHER_ORG), 'content-type': 'application/octet-stream' },
        body: jsonl([event()]),
      },
    );
    const afterComplete = await upload(accessToken, settled, 'part-1.json', jsonl([event()]));
    const wrongType = await upload(accessToken, batchId, 'part-0.json', jsonl([event()]), 'application/json');

    // Assess
    expect([unknown.status, otherOrg.status, afterComplete.status, wrongType.status]).toEqual([404, 404, 400, 415]);
    expect(emulator.stats.batches[batchId]?.files).toEqual([]);
  });

  it('should refuse files and COMPLETE once a batch is aborted, and leave it with no file', async () => {
    // Prepare: a batch opened, then aborted before any file went in (a run with nothing to send)
    const accessToken = await token();
    const batchId = await newBatchId(accessToken);
    const abort = await fetch(`${emulator.platformUrl}/data/foundation/import/batches/${batchId}?action=ABORT`, {
      method: 'POST',
      headers: platformHeaders(accessToken),
    });

    // Act
    const afterAbort = await upload(accessToken, batchId, 'part-0.json', jsonl([event()]));
    const completed = await complete(accessToken, batchId);

    // Assess
    expect([abort.status, afterAbort.status, completed.status]).toEqual([200, 400, 400]);
    expect(emulator.stats.batches[batchId]).toEqual({ status: 'aborted', files: [], records: 0 });
  });

  it('should word a batch over the enforced file-count or size guardrail as Platform does', () => {
    // Act
    const within = guardrailFailure(MAX_FILES_PER_BATCH, MAX_BATCH_BYTES);
    const over = guardrailFailure(25_143, 1_150_000_000_000);

    // Assess: guardrails.md's own example
    expect(within).toBeUndefined();
    expect(over?.description).toBe(
      'Batch ingestion guardrails hit: 25143 files (over the 25000 threshold); ' +
        '1150000000000 bytes (over the 1099511627776 threshold)',
    );
  });

  it('should refuse a file over 256,000,000 bytes with 413 without keeping it', async () => {
    // Prepare
    const accessToken = await token();
    const batchId = await newBatchId(accessToken);
    const chunk = new Uint8Array(1_000_000).fill(0x78);
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent >= 256_000_001) return controller.close();
        const size = Math.min(chunk.length, 256_000_001 - sent);
        controller.enqueue(chunk.subarray(0, size));
        sent += size;
      },
    });

    // Act
    const res = await upload(accessToken, batchId, 'huge.json', body);

    // Assess
    expect(res.status).toBe(413);
    expect(emulator.stats.batches[batchId]?.files).toEqual([]);
  });
});
