import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { type IncomingHttpHeaders, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createGunzip, gunzipSync } from 'node:zlib';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type DatasetSpec, generateDataset, type MixpanelEvent } from '../../emulators/mixpanel/generator.ts';
import {
  type MixpanelEmulator,
  type MixpanelEmulatorOptions,
  startMixpanelEmulator,
} from '../../emulators/mixpanel/server.ts';

const H = 3_600_000;
const UTC_PROJECT = '1001';
const LEGACY_PROJECT = '1002';
const EMPTY_PROJECT = '1003';
const UNKNOWN_PROJECT = '4040';
const SA = { username: 'connector.mp-service-account', secret: 'sa-secret' };
const LEGACY_SECRET = 'legacy-api-secret';
const NOW = Date.UTC(2024, 2, 12, 12, 0, 0);
// Processed from 2024-03-09 00:00 to 2024-03-11 12:00 UTC; New York springs forward on 2024-03-10.
const DATASET: DatasetSpec = { seed: 2024, count: 12_000, start: Date.UTC(2024, 2, 9), end: Date.UTC(2024, 2, 11, 12) };
const NY = 'America/New_York';

let emulator: MixpanelEmulator;
let clock = NOW;

async function start(extra: Partial<MixpanelEmulatorOptions> = {}): Promise<MixpanelEmulator> {
  return startMixpanelEmulator({
    projects: [
      { projectId: UTC_PROJECT, dataset: DATASET },
      { projectId: LEGACY_PROJECT, timezone: NY, legacyLocalTime: true, dataset: { ...DATASET, seed: 7 } },
      { projectId: EMPTY_PROJECT },
    ],
    serviceAccounts: [
      { ...SA, projectIds: [UTC_PROJECT, LEGACY_PROJECT, EMPTY_PROJECT, UNKNOWN_PROJECT] },
      { username: 'other', secret: 'other-secret', projectIds: [LEGACY_PROJECT] },
    ],
    legacyApiSecrets: { [EMPTY_PROJECT]: LEGACY_SECRET },
    rateLimit: false,
    now: () => clock,
    ...extra,
  });
}

beforeEach(async () => {
  clock = NOW;
  emulator = await start();
});

afterEach(async () => {
  await emulator.close();
});

// ------------------------------------------------------------------------------------------------------------
// helpers: a client the way the connector talks to Mixpanel (node:http, decompressing itself)

interface Got {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** Raw body bytes (still gzipped when the server gzipped them). */
  readonly body: Buffer;
  /** A transport error after the headers (reset, truncated body). */
  readonly error?: Error;
}

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

const SA_AUTH = basic(SA.username, SA.secret);

function get(
  query: Record<string, string>,
  o: { auth?: string | null; gzip?: boolean; path?: string; method?: string; target?: MixpanelEmulator } = {},
): Promise<Got> {
  const target = o.target ?? emulator;
  const url = new URL(`${target.url}${o.path ?? '/api/2.0/export'}`);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  const headers: Record<string, string> = {};
  const auth = o.auth === undefined ? SA_AUTH : o.auth;
  if (auth !== null) headers.authorization = auth;
  if (o.gzip === true) headers['accept-encoding'] = 'gzip';
  return new Promise((resolve, reject) => {
    const req = request(url, { method: o.method ?? 'GET', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', (error) =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), error }),
      );
    });
    req.on('error', reject);
    req.end();
  });
}

function lines(got: Got): string[] {
  const text = (got.headers['content-encoding'] === 'gzip' ? gunzipSync(got.body) : got.body).toString('utf8');
  expect(text === '' || text.endsWith('\n')).toBe(true);
  return text.split('\n').filter((l) => l !== '');
}

function errorOf(got: Got): string {
  return (JSON.parse(got.body.toString('utf8')) as { error: string }).error;
}

function exportQuery(
  project: string,
  from: string,
  to: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return { project_id: project, from_date: from, to_date: to, ...extra };
}

function utcDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

function processingMs(e: MixpanelEvent): number {
  return e.properties.mp_processing_time_ms as number;
}

const sorted = (xs: string[]): string[] => [...xs].sort();

// ------------------------------------------------------------------------------------------------------------

describe('authentication', () => {
  it('should accept a service account with project_id and the legacy API secret without it', async () => {
    // Act
    const sa = await get(exportQuery(UTC_PROJECT, '2024-03-10', '2024-03-10'));
    const legacy = await get({ from_date: '2024-03-10', to_date: '2024-03-10' }, { auth: basic(LEGACY_SECRET, '') });
    // Assess
    expect(sa.status).toBe(200);
    expect(lines(sa).length).toBeGreaterThan(1000);
    expect(legacy.status).toBe(200);
    expect(lines(legacy)).toEqual([]);
  });

  it('should refuse missing and wrong credentials with Mixpanel-like errors', async () => {
    // Act
    const missing = await get(exportQuery(UTC_PROJECT, '2024-03-10', '2024-03-10'), { auth: null });
    const wrongSecret = await get(exportQuery(UTC_PROJECT, '2024-03-10', '2024-03-10'), {
      auth: basic(SA.username, 'nope'),
    });
    const garbage = await get(exportQuery(UTC_PROJECT, '2024-03-10', '2024-03-10'), { auth: 'Bearer abc' });
    // Assess
    expect(missing.status).toBe(401);
    expect(missing.headers['www-authenticate']).toMatch(/^Basic/);
    for (const got of [wrongSecret, garbage]) {
      expect(got.status).toBe(400);
      expect(got.headers['content-type']).toBe('application/json');
      expect(JSON.parse(got.body.toString('utf8'))).toEqual({
        request: `/api/2.0/export?project_id=${UTC_PROJECT}&from_date=2024-03-10&to_date=2024-03-10`,
        error: 'Unable to authenticate request',
      });
    }
    expect(emulator.requests.map((r) => r.status)).toEqual([401, 400, 400]);
  });

  it('should require project_id for a service account and check its access', async () => {
    // Act
    const noProject = await get({ from_date: '2024-03-10', to_date: '2024-03-10' });
    const noAccess = await get(exportQuery(UTC_PROJECT, '2024-03-10', '2024-03-10'), {
      auth: basic('other', 'other-secret'),
    });
    const unknown = await get(exportQuery(UNKNOWN_PROJECT, '2024-03-10', '2024-03-10'));
    const legacyOtherProject = await get(exportQuery(UTC_PROJECT, '2024-03-10', '2024-03-10'), {
      auth: basic(LEGACY_SECRET, ''),
    });
    // Assess
    expect(noProject.status).toBe(400);
    expect(errorOf(noProject)).toMatch(/project_id/);
    expect(noAccess.status).toBe(403);
    expect(errorOf(noAccess)).toMatch(new RegExp(`project_id: ${UTC_PROJECT}`));
    expect(unknown.status).toBe(400);
    expect(errorOf(unknown)).toMatch(/Project not found: 4040/);
    expect(legacyOtherProject.status).toBe(403);
  });
});

describe('parameters', () => {
  it('should validate dates, limit, event and where with 400s', async () => {
    // Act
    const results = await Promise.all([
      get({ project_id: UTC_PROJECT, to_date: '2024-03-10' }),
      get(exportQuery(UTC_PROJECT, '2024/03/10', '2024-03-10')),
      get(exportQuery(UTC_PROJECT, '2024-02-30', '2024-03-10')),
      get(exportQuery(UTC_PROJECT, '2024-03-11', '2024-03-10')),
      get(exportQuery(UTC_PROJECT, '2024-03-10', '2024-03-10', { limit: '100001' })),
      get(exportQuery(UTC_PROJECT, '2024-03-10', '2024-03-10', { limit: '-1' })),
      get(exportQuery(UTC_PROJECT, '2024-03-10', '2024-03-10', { event: 'Sign Up' })),
      get(exportQuery(UTC_PROJECT, '2024-03-10', '2024-03-10', { where: 'properties["a"] == 1 AND TRUE' })),
    ]);
    // Assess
    expect(results.map((r) => r.status)).toEqual([400, 400, 400, 400, 400, 400, 400, 400]);
    const errors = results.map(errorOf);
    expect(errors[0]).toBe("'from_date' is a required parameter");
    expect(errors[1]).toMatch(/'from_date' is not a valid date/);
    expect(errors[2]).toMatch(/'from_date' is not a valid date/);
    expect(errors[3]).toBe('from_date cannot be later than to_date');
    expect(errors[4]).toBe("'limit' cannot be over 100000");
    expect(errors[5]).toMatch(/'limit' must be a positive integer/);
    expect(errors[6]).toMatch(/'event' must be a JSON array/);
    expect(errors[7]).toMatch(/^Invalid 'where' expression: .*lowercase/);
  });

  it('should refuse a to_date later than today in the project date zone', async () => {
    // Prepare: 02:00 UTC on 2024-03-12 is still 2024-03-11 in New York
    clock = Date.UTC(2024, 2, 12, 2, 0, 0);
    // Act
    const utcToday = await get(exportQuery(UTC_PROJECT, '2024-03-12', '2024-03-12'));
    const utcTomorrow = await get(exportQuery(UTC_PROJECT, '2024-03-13', '2024-03-13'));
    const legacyUtcToday = await get(exportQuery(LEGACY_PROJECT, '2024-03-11', '2024-03-12'));
    const legacyToday = await get(exportQuery(LEGACY_PROJECT, '2024-03-11', '2024-03-11'));
    // Assess
    expect(utcToday.status).toBe(200);
    expect(utcTomorrow.status).toBe(400);
    expect(errorOf(utcTomorrow)).toBe('to_date cannot be later than today');
    expect(legacyUtcToday.status).toBe(400);
    expect(errorOf(legacyUtcToday)).toBe('to_date cannot be later than today');
    expect(legacyToday.status).toBe(200);
  });

  it('should apply limit, event names and time_in_ms', async () => {
    // Act
    const limited = await get(exportQuery(UTC_PROJECT, '2024-03-09', '2024-03-11', { limit: '25' }));
    const maxLimit = await get(exportQuery(UTC_PROJECT, '2024-03-09', '2024-03-11', { limit: '100000' }));
    const named = await get(
      exportQuery(UTC_PROJECT, '2024-03-09', '2024-03-11', { event: JSON.stringify(['Sign Up', 'Order Completed']) }),
    );
    const seconds = await get(exportQuery(UTC_PROJECT, '2024-03-10', '2024-03-10', { limit: '500' }));
    const millis = await get(
      exportQuery(UTC_PROJECT, '2024-03-10', '2024-03-10', { limit: '500', time_in_ms: 'true' }),
    );
    // Assess
    expect(lines(limited)).toHaveLength(25);
    expect(lines(maxLimit).length).toBeGreaterThan(10_000);
    const names = new Set(lines(named).map((l) => (JSON.parse(l) as MixpanelEvent).event));
    expect([...names].sort()).toEqual(['Order Completed', 'Sign Up']);
    const s = lines(seconds).map((l) => (JSON.parse(l) as MixpanelEvent).properties.time as number);
    const ms = lines(millis).map((l) => (JSON.parse(l) as MixpanelEvent).properties.time as number);
    expect(ms).toHaveLength(500);
    expect(ms.map((t) => Math.floor(t / 1000))).toEqual(s);
    expect(ms.some((t) => t % 1000 !== 0)).toBe(true);
  });
});

describe('selection', () => {
  it('should return exactly the events of the requested UTC days', async () => {
    // Prepare
    const expected = [...generateDataset(DATASET)]
      .filter((e) => utcDay((e.properties.time as number) * 1000) === '2024-03-10')
      .map((e) => JSON.stringify(e));
    // Act
    const got = await get(exportQuery(UTC_PROJECT, '2024-03-10', '2024-03-10'));
    // Assess
    expect(got.status).toBe(200);
    expect(got.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(lines(got)).toEqual(expected);
    expect(emulator.requests.at(-1)).toMatchObject({ status: 200, eventsServed: expected.length, gzip: false });
  });

  it('should read the dates of a legacy project in its time zone, across a DST change', async () => {
    // Prepare: `time` is New York wall-clock seconds, so its UTC calendar day is the local day
    const spec = { ...DATASET, seed: 7, projectTimezone: NY, legacyLocalTime: true };
    const all = [...generateDataset(spec)];
    const localDay = (e: MixpanelEvent): string => utcDay((e.properties.time as number) * 1000);
    const expected = all.filter((e) => localDay(e) === '2024-03-10').map((e) => JSON.stringify(e));
    const byTrueUtcDay = [...generateDataset({ ...spec, legacyLocalTime: false })].filter(
      (e) => utcDay((e.properties.time as number) * 1000) === '2024-03-10',
    );
    // Act
    const got = await get(exportQuery(LEGACY_PROJECT, '2024-03-10', '2024-03-10'));
    // Assess: the local day (23 hours long) differs from the UTC day
    expect(lines(got)).toEqual(expected);
    expect(expected.length).not.toBe(byTrueUtcDay.length);
  });

  it('should return exactly the events processed in a where window, late and backdated ones included', async () => {
    // Prepare
    const from = Date.UTC(2024, 2, 10, 12);
    const to = Date.UTC(2024, 2, 10, 13);
    const where = `number(properties["mp_processing_time_ms"]) >= ${from} and number(properties["mp_processing_time_ms"]) < ${to}`;
    const expected = [...generateDataset(DATASET)].filter((e) => processingMs(e) >= from && processingMs(e) < to);
    // Act
    const got = await get(exportQuery(UTC_PROJECT, '2024-03-05', '2024-03-12', { where }), { gzip: true });
    // Assess
    expect(got.headers['content-encoding']).toBe('gzip');
    expect(sorted(lines(got))).toEqual(sorted(expected.map((e) => JSON.stringify(e))));
    expect(expected.some((e) => processingMs(e) - (e.properties.time as number) * 1000 > H)).toBe(true);
    expect(
      expected.some(
        (e) => e.properties.$import === true && processingMs(e) - (e.properties.time as number) * 1000 > 24 * H,
      ),
    ).toBe(true);
    expect(emulator.requests.at(-1)).toMatchObject({
      status: 200,
      eventsServed: expected.length,
      gzip: true,
      query: { where },
    });
  });

  it('should filter on any property with where, and combine it with event names', async () => {
    // Prepare
    const where = 'properties["mp_country_code"] == "JP" and defined(properties["$insert_id"])';
    const expected = [...generateDataset(DATASET)]
      .filter((e) => ['2024-03-09', '2024-03-10'].includes(utcDay((e.properties.time as number) * 1000)))
      .filter(
        (e) =>
          e.properties.mp_country_code === 'JP' && e.properties.$insert_id !== undefined && e.event !== '$mp_click',
      )
      .map((e) => JSON.stringify(e));
    const events = JSON.stringify(
      [...new Set([...generateDataset(DATASET)].map((e) => e.event))].filter((n) => n !== '$mp_click'),
    );
    // Act
    const got = await get(exportQuery(UTC_PROJECT, '2024-03-09', '2024-03-10', { where, event: events }));
    // Assess
    expect(expected.length).toBeGreaterThan(100);
    expect(lines(got)).toEqual(expected);
  });

  it('should not serve events processed after now', async () => {
    // Prepare
    clock = Date.UTC(2024, 2, 10, 12);
    const expected = [...generateDataset(DATASET)].filter(
      (e) => utcDay((e.properties.time as number) * 1000) === '2024-03-10' && processingMs(e) <= clock,
    );
    // Act
    const got = await get(exportQuery(UTC_PROJECT, '2024-03-10', '2024-03-10'));
    // Assess
    expect(lines(got)).toEqual(expected.map((e) => JSON.stringify(e)));
    expect(Math.max(...expected.map(processingMs))).toBeLessThanOrEqual(clock);
  });

  it('should gzip when asked, with the same content', async () => {
    // Act
    const plain = await get(exportQuery(UTC_PROJECT, '2024-03-09', '2024-03-09'));
    const zipped = await get(exportQuery(UTC_PROJECT, '2024-03-09', '2024-03-09'), { gzip: true });
    // Assess
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(zipped.headers['content-encoding']).toBe('gzip');
    expect(zipped.body.length).toBeLessThan(plain.body.length / 3);
    expect(gunzipSync(zipped.body).equals(plain.body)).toBe(true);
  });

  it('should gzip only a body over 1,400 bytes, whatever the client accepts', async () => {
    // Act: one event is a few hundred bytes, a day of them far more
    const small = await get(exportQuery(UTC_PROJECT, '2024-03-09', '2024-03-09', { limit: '1' }), { gzip: true });
    const large = await get(exportQuery(UTC_PROJECT, '2024-03-09', '2024-03-09'), { gzip: true });

    // Assess
    expect(small.body.length).toBeLessThanOrEqual(1400);
    expect(small.headers['content-encoding']).toBeUndefined();
    expect(lines(small)).toHaveLength(1);
    expect(emulator.requests.at(-2)).toMatchObject({ status: 200, gzip: false });
    expect(large.headers['content-encoding']).toBe('gzip');
    expect(emulator.requests.at(-1)).toMatchObject({ status: 200, gzip: true });
  });

  it('should take plain-text Basic credentials as Mixpanel documents, as well as base64', async () => {
    // Act
    const plain = await get(exportQuery(UTC_PROJECT, '2024-03-09', '2024-03-09', { limit: '1' }), {
      auth: `Basic ${SA.username}:${SA.secret}`,
    });
    const wrong = await get(exportQuery(UTC_PROJECT, '2024-03-09', '2024-03-09', { limit: '1' }), {
      auth: `Basic ${SA.username}:not-the-secret`,
    });

    // Assess
    expect(plain.status).toBe(200);
    expect(lines(plain)).toHaveLength(1);
    expect(wrong.status).toBe(400);
  });

  it('should take a project secret only base64-encoded: plain text is documented for service accounts', async () => {
    // Act: reference/project-secret.mdx documents standard Basic auth only
    const query = { from_date: '2024-03-10', to_date: '2024-03-10', limit: '1' };
    const encoded = await get(query, { auth: basic(LEGACY_SECRET, '') });
    const plain = await get(query, { auth: `Basic ${LEGACY_SECRET}:` });

    // Assess
    expect(encoded.status).toBe(200);
    expect(plain.status).toBe(400);
    expect(JSON.parse(plain.body.toString('utf8'))).toMatchObject({ error: 'Unable to authenticate request' });
  });

  it('should serve added events like the dataset and raw lines verbatim, only by date', async () => {
    // Prepare
    const t = Date.UTC(2024, 2, 10, 8) / 1000;
    emulator.addEvents(EMPTY_PROJECT, [
      {
        event: 'Sign Up',
        properties: { time: t, distinct_id: 'a', $insert_id: 'i1', mp_processing_time_ms: t * 1000 + 500 },
      },
      {
        event: 'Log In',
        properties: { time: t + 60, distinct_id: 'a', $insert_id: 'i2', mp_processing_time_ms: t * 1000 + 60_500 },
      },
      {
        event: 'Sign Up',
        properties: { time: t - 86_400, distinct_id: 'b', $insert_id: 'i3', mp_processing_time_ms: t * 1000 },
      },
    ]);
    emulator.addRawLines(EMPTY_PROJECT, [
      { line: 'not json at all', date: '2024-03-10' },
      { line: '{"event":"truncated","properties":{"ti', date: '2024-03-10' },
      { line: 'other day', date: '2024-03-11' },
    ]);
    const auth = basic(LEGACY_SECRET, '');
    // Act
    const all = await get({ from_date: '2024-03-10', to_date: '2024-03-10' }, { auth });
    const filtered = await get(
      { from_date: '2024-03-10', to_date: '2024-03-10', where: 'properties["distinct_id"] == "nobody"' },
      { auth },
    );
    const named = await get({ from_date: '2024-03-09', to_date: '2024-03-10', event: '["Sign Up"]' }, { auth });
    // Assess
    expect(lines(all)).toEqual([
      '{"event":"Sign Up","properties":{"time":1710057600,"distinct_id":"a","$insert_id":"i1","mp_processing_time_ms":1710057600500}}',
      '{"event":"Log In","properties":{"time":1710057660,"distinct_id":"a","$insert_id":"i2","mp_processing_time_ms":1710057660500}}',
      'not json at all',
      '{"event":"truncated","properties":{"ti',
    ]);
    expect(lines(filtered)).toEqual(['not json at all', '{"event":"truncated","properties":{"ti']);
    expect(lines(named).filter((l) => l.startsWith('{"event":"Sign Up"'))).toHaveLength(2);
  });

  it('should answer 404 for other paths and 405 for other methods', async () => {
    // Act
    const other = await get({}, { path: '/api/2.0/engage' });
    const post = await get(exportQuery(UTC_PROJECT, '2024-03-10', '2024-03-10'), { method: 'POST' });
    const slash = await get(exportQuery(UTC_PROJECT, '2024-03-10', '2024-03-10', { limit: '3' }), {
      path: '/api/2.0/export/',
    });
    // Assess
    expect(other.status).toBe(404);
    expect(post.status).toBe(405);
    expect(lines(slash)).toHaveLength(3);
  });
});

describe('rate limits', () => {
  it('should allow 3 queries per second per project, then answer 429 with Retry-After', async () => {
    // Prepare
    const limited = await start({ rateLimit: undefined });
    try {
      const q = exportQuery(UTC_PROJECT, '2024-03-10', '2024-03-10', { limit: '1' });
      // Act
      const first = [
        await get(q, { target: limited }),
        await get(q, { target: limited }),
        await get(q, { target: limited }),
      ];
      const fourth = await get(q, { target: limited });
      const otherProject = await get(exportQuery(LEGACY_PROJECT, '2024-03-10', '2024-03-10', { limit: '1' }), {
        target: limited,
      });
      clock += 1000;
      const later = await get(q, { target: limited });
      // Assess
      expect(first.map((r) => r.status)).toEqual([200, 200, 200]);
      expect(fourth.status).toBe(429);
      expect(fourth.headers['retry-after']).toBe('1');
      expect(errorOf(fourth)).toMatch(/^Query rate limit exceeded for project_id: 1001\b/);
      expect(otherProject.status).toBe(200);
      expect(later.status).toBe(200);
    } finally {
      await limited.close();
    }
  });

  it('should enforce the hourly and concurrency limits', async () => {
    // Prepare
    const limited = await start({ rateLimit: { perSecond: 100, perHour: 4, concurrent: 1 } });
    try {
      const q = exportQuery(UTC_PROJECT, '2024-03-10', '2024-03-10', { limit: '1' });
      // Act: one slow query holds the only concurrency slot
      limited.injectFault({ kind: 'slow', delayMsPerEvents: 200, everyEvents: 1 });
      const slow = get(exportQuery(UTC_PROJECT, '2024-03-10', '2024-03-10', { limit: '5' }), { target: limited });
      while (limited.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
      const concurrent = await get(q, { target: limited });
      await slow;
      const hourly = [
        await get(q, { target: limited }),
        await get(q, { target: limited }),
        await get(q, { target: limited }),
      ];
      const overHour = await get(q, { target: limited });
      clock += 10 * 60_000;
      const stillOver = await get(q, { target: limited });
      // Assess
      expect(concurrent.status).toBe(429);
      expect(concurrent.headers['retry-after']).toBe('1');
      expect(hourly.map((r) => r.status)).toEqual([200, 200, 200]);
      expect(overHour.status).toBe(429);
      expect(overHour.headers['retry-after']).toBe('3600');
      expect(stillOver.headers['retry-after']).toBe('3000');
    } finally {
      await limited.close();
    }
  });
});

describe('faults', () => {
  const q = exportQuery(UTC_PROJECT, '2024-03-09', '2024-03-11');

  it('should answer injected statuses in order, with bodies and Retry-After', async () => {
    // Prepare
    emulator.injectFault({ kind: 'status', status: 429, retryAfterSeconds: 7 });
    emulator.injectFault({ kind: 'status', status: 503 });
    emulator.injectFault({ kind: 'status', status: 402, body: '{"error":"Your plan does not allow API calls."}' });
    // Act
    const results = [
      await get(q),
      await get(q),
      await get(q),
      await get(exportQuery(UTC_PROJECT, '2024-03-10', '2024-03-10', { limit: '2' })),
    ];
    // Assess
    expect(results.map((r) => r.status)).toEqual([429, 503, 402, 200]);
    expect(results[0]?.headers['retry-after']).toBe('7');
    expect(errorOf(results[0] as Got)).toBe('Query rate limit exceeded');
    expect(results[1]?.headers['content-type']).toBe('text/html');
    expect(errorOf(results[2] as Got)).toBe('Your plan does not allow API calls.');
    expect(emulator.requests.map((r) => r.fault ?? '-')).toEqual(['status', 'status', 'status', '-']);
  });

  it('should reset the connection mid-stream', async () => {
    // Prepare
    emulator.injectFault({ kind: 'reset', afterEvents: 100 });
    // Act
    const got = await get(q);
    // Assess
    expect(got.status).toBe(200);
    expect(got.error?.message).toMatch(/aborted|ECONNRESET|socket hang up/);
    expect(got.body.toString('utf8').split('\n').length).toBeLessThanOrEqual(101);
    expect(emulator.requests.at(-1)).toMatchObject({ fault: 'reset', eventsServed: 100 });
  });

  it('should end a cut-short export with the line "terminated early"', async () => {
    // Prepare
    emulator.injectFault({ kind: 'terminated-early', afterEvents: 100 });
    // Act
    const got = await get(q, { gzip: true });
    // Assess
    const all = lines(got);
    expect(got.status).toBe(200);
    expect(got.error).toBeUndefined();
    expect(all).toHaveLength(101);
    expect(all.at(-1)).toBe('terminated early');
    expect(all.slice(0, 100).every((l) => (JSON.parse(l) as MixpanelEvent).event.length > 0)).toBe(true);
  });

  it('should end a gzip body without its trailer, which gunzip reports', async () => {
    // Prepare
    emulator.injectFault({ kind: 'truncate-gzip', afterEvents: 100 });
    // Act
    const got = await get(q, { gzip: true });
    const inflated: Buffer[] = [];
    const gunzipError = await new Promise<Error | undefined>((resolve) => {
      const gunzip = createGunzip();
      gunzip.on('data', (c: Buffer) => inflated.push(c));
      gunzip.on('error', resolve);
      gunzip.on('end', () => resolve(undefined));
      gunzip.end(got.body);
    });
    // Assess: the transport ended cleanly, only the gzip stream is incomplete
    expect(got.status).toBe(200);
    expect(got.error).toBeUndefined();
    expect(gunzipError?.message).toMatch(/unexpected end of file/);
    expect(Buffer.concat(inflated).toString('utf8').split('\n').filter(Boolean)).toHaveLength(100);
  });

  it('should slow the stream down and still deliver everything', async () => {
    // Prepare
    emulator.injectFault({ kind: 'slow', delayMsPerEvents: 10, everyEvents: 50 });
    const query = exportQuery(UTC_PROJECT, '2024-03-10', '2024-03-10', { limit: '400' });
    // Act
    const got = await get(query);
    // Assess
    expect(lines(got)).toHaveLength(400);
    expect(emulator.requests.at(-1)).toMatchObject({ fault: 'slow', eventsServed: 400 });
  });
});

describe('streaming', () => {
  it('should stop producing while the client does not read (backpressure)', async () => {
    // Prepare: a large export, read by a client that pauses right away
    const big = await start({ projects: [{ projectId: UTC_PROJECT, dataset: { ...DATASET, count: 200_000 } }] });
    try {
      const url = new URL(`${big.url}/api/2.0/export`);
      url.search = new URLSearchParams(exportQuery(UTC_PROJECT, '2024-03-05', '2024-03-12')).toString();
      let received = 0;
      let resume: () => void = () => undefined;
      const done = new Promise<number>((resolve, reject) => {
        const req = request(url, { headers: { authorization: SA_AUTH }, agent: false }, (res) => {
          res.pause();
          resume = () => {
            res.on('data', (c: Buffer) => {
              for (let i = c.indexOf(10); i !== -1; i = c.indexOf(10, i + 1)) received++;
            });
            res.resume();
          };
          res.on('end', () => resolve(received));
        });
        req.on('error', reject);
        req.end();
      });
      // Act: wait until the server has stopped advancing (socket and buffers full)
      let served = -1;
      while (big.requests[0]?.eventsServed !== served || served <= 0) {
        served = big.requests[0]?.eventsServed ?? -1;
        await new Promise((r) => setTimeout(r, 150));
      }
      const servedWhilePaused = served;
      resume();
      const total = await done;
      // Assess
      expect(servedWhilePaused).toBeLessThan(total / 4);
      expect(total).toBeGreaterThan(200_000);
      expect(big.requests[0]?.eventsServed).toBe(total);
    } finally {
      await big.close();
    }
  });
});

describe('disconnects', () => {
  it('should free the concurrency slot when a client goes away mid-stream, and close during a stream', async () => {
    // Prepare: one concurrent query allowed
    const limited = await start({ rateLimit: { perSecond: 100, perHour: 100, concurrent: 1 } });
    const q = exportQuery(UTC_PROJECT, '2024-03-05', '2024-03-12');
    const url = new URL(`${limited.url}/api/2.0/export`);
    url.search = new URLSearchParams(q).toString();
    // Act: read the first bytes, then hang up
    await new Promise<void>((resolve, reject) => {
      const req = request(url, { headers: { authorization: SA_AUTH }, agent: false }, (res) => {
        res.once('data', () => {
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => undefined);
      req.once('error', reject);
      req.end();
    });
    while (limited.requests.length === 0) await new Promise((r) => setTimeout(r, 5));
    let after = await get(exportQuery(UTC_PROJECT, '2024-03-10', '2024-03-10', { limit: '1' }), { target: limited });
    while (after.status === 429) {
      // The server notices the hang-up on its next write.
      await new Promise((r) => setTimeout(r, 20));
      after = await get(exportQuery(UTC_PROJECT, '2024-03-10', '2024-03-10', { limit: '1' }), { target: limited });
    }
    // A slow stream still running when the emulator closes
    limited.injectFault({ kind: 'slow', delayMsPerEvents: 50, everyEvents: 1 });
    const logged = limited.requests.length;
    const pending = get(q, { target: limited });
    while (limited.requests.length === logged) await new Promise((r) => setTimeout(r, 5));
    await limited.close();
    const cut = await pending.catch((error: Error) => ({ error }) as Partial<Got>);
    // Assess: the abandoned export stopped early, its slot was given back, the slow one was cut by close()
    const complete = [...generateDataset(DATASET)].length;
    expect(after.status).toBe(200);
    expect(lines(after)).toHaveLength(1);
    expect(limited.requests[0]?.eventsServed).toBeLessThan(complete);
    expect(cut.error).toBeDefined();
    expect(limited.requests.at(-1)?.eventsServed).toBeLessThan(complete);
  });
});

describe('as a process', () => {
  it('should print its url, take faults over HTTP and stop on SIGTERM', async () => {
    // Prepare
    const dir = mkdtempSync(join(tmpdir(), 'mixpanel-emulator-'));
    const config = join(dir, 'config.json');
    writeFileSync(
      config,
      JSON.stringify({
        projects: [{ projectId: UTC_PROJECT, dataset: { ...DATASET, count: 2000 } }],
        serviceAccounts: [{ ...SA, projectIds: [UTC_PROJECT] }],
      }),
    );
    const main = fileURLToPath(new URL('../../emulators/mixpanel/main.ts', import.meta.url));
    const child = spawn(process.execPath, ['--import', 'tsx', main, '--config', config], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      // Act
      const first = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout }).once('line', resolve);
        child.once('exit', (code) => reject(new Error(`emulator exited with ${String(code)}`)));
      });
      const { url } = JSON.parse(first) as { url: string };
      const fault = await fetch(`${url}/__emulator/faults`, {
        method: 'POST',
        body: JSON.stringify({ kind: 'status', status: 500 }),
      });
      const target = { url } as MixpanelEmulator;
      const failed = await get(exportQuery(UTC_PROJECT, '2024-03-09', '2024-03-09'), { target });
      const ok = await get(exportQuery(UTC_PROJECT, '2024-03-09', '2024-03-09'), { target });
      const log = (await (await fetch(`${url}/__emulator/requests`)).json()) as { requests: Array<{ status: number }> };
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      // Assess
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(fault.status).toBe(200);
      expect(failed.status).toBe(500);
      expect(lines(ok).length).toBeGreaterThan(500);
      expect(log.requests.map((r) => r.status)).toEqual([500, 200]);
      expect(await exited).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
