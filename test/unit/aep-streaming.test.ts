import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { RetryPolicy } from '#common/retry';
import type { ImsAuth } from '#aep/ims';
import type { TokenSource } from '#aep/transport';
import { envelopeFault, PlatformConfigurationError, platformConfigurationFault } from '#aep/errors';
import {
  batchEndpointOf,
  DCS_MAX_REQUEST_BYTES,
  StreamingDeliveryError,
  StreamingSink,
  XED_FULL_CONTENT_TYPE,
  type SendResult,
  type SinkRecord,
  type StreamingTarget,
} from '#aep/streaming';

// ---- a tiny DCS stand-in on loopback -------------------------------------------------------------------------------

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

type Handler = (seen: Seen, res: http.ServerResponse, n: number) => void | Promise<void>;

const servers: http.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

async function startServer(handler: Handler): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const entry = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) };
      seen.push(entry);
      void Promise.resolve(handler(entry, res, seen.length)).catch((error: unknown) => {
        res.statusCode = 599;
        res.end(String(error));
      });
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}`, seen };
}

interface Envelope {
  header: {
    schemaRef: { id: string; contentType: string };
    imsOrgId: string;
    datasetId: string;
    flowId?: string;
    source?: { name: string };
  };
  body: {
    xdmMeta: { schemaRef: { id: string; contentType: string } };
    xdmEntity: { _id: string } & Record<string, unknown>;
  };
}

function messagesOf(seen: Seen): Envelope[] {
  return (JSON.parse(seen.body.toString('utf8')) as { messages: Envelope[] }).messages;
}

function multiStatus(res: http.ServerResponse, entries: unknown[], headers: Record<string, string> = {}): void {
  res.writeHead(207, { 'content-type': 'application/json', ...headers });
  res.end(
    JSON.stringify({
      inletId: 'inlet',
      batchId: `b${Math.random().toString(36).slice(2, 8)}`,
      receivedTimeMs: 1,
      responses: entries,
    }),
  );
}

/** Accepts every message. */
const acceptAll: Handler = (seen, res) => {
  multiStatus(
    res,
    messagesOf(seen).map((_, i) => ({ xactionId: `x:${i}` })),
  );
};

function stubTokens(): TokenSource & { invalidated: Array<string | undefined>; issued: number } {
  let generation = 1;
  const stub = {
    invalidated: [] as Array<string | undefined>,
    issued: 1,
    async auth(): Promise<ImsAuth> {
      return {
        accessToken: `token-${generation}`,
        clientId: 'client-1',
        orgId: 'ORG1@AdobeOrg',
        expiresAtMs: Date.now() + 3_600_000,
      };
    },
    invalidate(rejected?: string): void {
      stub.invalidated.push(rejected);
      generation++;
      stub.issued++;
    },
  };
  return stub;
}

function target(url: string, extra: Partial<StreamingTarget> = {}): StreamingTarget {
  return {
    inletUrl: `${url}/collection/conn-1`,
    datasetId: 'ds-1',
    schemaId: 'https://ns.adobe.com/acme/schemas/abc',
    flowId: 'flow-1',
    sandbox: 'dev',
    ...extra,
  };
}

function record(id: string, padBytes = 0): SinkRecord {
  return {
    id,
    json: JSON.stringify({ _id: id, timestamp: '2024-01-01T00:00:00Z', _acme: { pad: 'p'.repeat(padBytes) } }),
  };
}

const FAST: RetryPolicy = { maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 1000, maxRetryAfterMs: 60_000 };

function recordingSleep(): { sleep: (ms: number) => Promise<void>; waits: number[] } {
  const waits: number[] = [];
  return { waits, sleep: async (ms) => void waits.push(ms) };
}

function expectPartition(result: SendResult, ids: string[]): void {
  const all = [...result.accepted, ...result.rejected.map((r) => r.id), ...result.unsent];
  expect([...all].sort()).toEqual([...ids].sort());
  expect(new Set(all).size).toBe(all.length);
}

// ---- tests ---------------------------------------------------------------------------------------------------------

describe('batchEndpointOf', () => {
  it('should turn a connection URL into the batch endpoint and keep query and prefix', () => {
    // Prepare / Act / Assess
    expect(batchEndpointOf('https://dcs.adobedc.net/collection/abc123')).toBe(
      'https://dcs.adobedc.net/collection/batch/abc123',
    );
    expect(batchEndpointOf('https://dcs.adobedc.net/collection/batch/abc123')).toBe(
      'https://dcs.adobedc.net/collection/batch/abc123',
    );
    expect(batchEndpointOf('http://127.0.0.1:9/aep/collection/abc?x=1')).toBe(
      'http://127.0.0.1:9/aep/collection/batch/abc?x=1',
    );
  });

  it('should refuse a URL that is not a streaming connection', () => {
    expect(() => batchEndpointOf('https://dcs.adobedc.net/other/abc')).toThrow(/AEP_INLET_URL/);
  });
});

describe('StreamingSink', () => {
  it('should reuse the memory of answered request bodies without sending stale bytes', async () => {
    // Prepare: a full request, then a much smaller one (written into the first one's memory)
    const server = await startServer(acceptAll);
    const sink = new StreamingSink({ target: target(server.url), tokens: stubTokens() });
    const big = Array.from({ length: 40 }, (_, i) => record(`big-${i}`, 20_000));
    // Act
    await sink.send(big);
    await sink.send([record('small')]);
    // Assess: each body is exactly its messages
    const [first, second] = server.seen;
    expect(messagesOf(first!)).toHaveLength(40);
    expect(messagesOf(second!).map((m) => (m.body.xdmEntity as { _id: string })._id)).toEqual(['small']);
    expect(second!.body.length).toBeLessThan(1_000);
    expect(Number(second!.headers['content-length'])).toBe(second!.body.length);
  });

  it('should send records given as UTF-8 bytes exactly as the same records given as text', async () => {
    // Prepare: the same records (one with non-ASCII text) as strings and as byte views into a shared block
    const server = await startServer(acceptAll);
    const sink = new StreamingSink({ target: target(server.url), tokens: stubTokens() });
    const texts = [record('a'), { id: 'b', json: JSON.stringify({ _id: 'b', note: 'café ☕ 😀' }) }];
    const block = Buffer.alloc(4096);
    let at = 0;
    const bytes = texts.map((r) => {
      const n = block.write(r.json as string, at, 'utf8');
      const view = block.subarray(at, at + n);
      at += n;
      return { id: r.id, json: view };
    });
    // Act
    await sink.send(texts);
    await sink.send(bytes);
    // Assess
    expect(server.seen).toHaveLength(2);
    expect(server.seen[1]!.body.equals(server.seen[0]!.body)).toBe(true);
    expect(messagesOf(server.seen[1]!)[1]!.body.xdmEntity).toEqual({ _id: 'b', note: 'café ☕ 😀' });
  });

  it('should wrap each record in the documented envelope and send the Platform headers to the batch endpoint', async () => {
    // Prepare
    const server = await startServer(acceptAll);
    const tokens = stubTokens();
    const sink = new StreamingSink({ target: target(server.url), tokens });
    const records = [record('a'), record('b')];

    // Act
    const result = await sink.send(records);

    // Assess
    expect(result.accepted).toEqual(['a', 'b']);
    expect(server.seen).toHaveLength(1);
    const request = server.seen[0]!;
    expect(request.method).toBe('POST');
    expect(request.url).toBe('/collection/batch/conn-1');
    expect(request.headers.authorization).toBe('Bearer token-1');
    expect(request.headers['x-api-key']).toBe('client-1');
    expect(request.headers['x-gw-ims-org-id']).toBe('ORG1@AdobeOrg');
    expect(request.headers['x-sandbox-name']).toBe('dev');
    expect(request.headers['content-type']).toBe('application/json');
    const [first] = messagesOf(request);
    const schemaRef = { id: 'https://ns.adobe.com/acme/schemas/abc', contentType: XED_FULL_CONTENT_TYPE };
    expect(first).toEqual({
      header: {
        schemaRef,
        imsOrgId: 'ORG1@AdobeOrg',
        datasetId: 'ds-1',
        flowId: 'flow-1',
        source: { name: 'mixpanel-aep-connector' },
      },
      body: { xdmMeta: { schemaRef }, xdmEntity: JSON.parse(records[0]!.json as string) },
    });
    expect(result.aepIds).toHaveLength(1);
    expect(result.requests).toBe(1);
    expect(result.maxRequestBytes).toBe(request.body.length);
  });

  it('should pack requests full without ever crossing the byte limit', async () => {
    // Prepare: ~1–50 KB records, with multi-byte characters so bytes ≠ characters
    const server = await startServer(acceptAll);
    const sink = new StreamingSink({ target: target(server.url), tokens: stubTokens() });
    const records: SinkRecord[] = [];
    let totalBytes = 0;
    for (let i = 0; i < 400; i++) {
      const pad = 1000 + ((i * 7919) % 49_000);
      const r = {
        id: `r${i}`,
        json: JSON.stringify({ _id: `r${i}`, _acme: { text: 'é€'.repeat(pad / 6), pad: 'x'.repeat(pad / 2) } }),
      };
      records.push(r);
      totalBytes += Buffer.byteLength(r.json);
    }

    // Act
    const result = await sink.send(records);

    // Assess
    expect(result.accepted).toHaveLength(400);
    for (const request of server.seen) expect(request.body.length).toBeLessThanOrEqual(DCS_MAX_REQUEST_BYTES);
    expect(result.maxRequestBytes).toBeLessThanOrEqual(DCS_MAX_REQUEST_BYTES);
    // Full packing: at most one request more than the payload strictly needs, plus one per 50 KB of slack each.
    const minimum = Math.ceil(totalBytes / DCS_MAX_REQUEST_BYTES);
    expect(server.seen.length).toBeLessThanOrEqual(Math.ceil(minimum * 1.1) + 1);
    const sentIds = server.seen.flatMap((s) => messagesOf(s).map((m) => m.body.xdmEntity._id));
    expect(sentIds.sort()).toEqual(records.map((r) => r.id).sort());
  });

  it('should reject a record whose envelope cannot fit in a request and never send it', async () => {
    // Prepare
    const server = await startServer(acceptAll);
    const sink = new StreamingSink({ target: target(server.url), tokens: stubTokens() });
    const huge = record('huge', DCS_MAX_REQUEST_BYTES); // the record alone is over the limit

    // Act
    const result = await sink.send([record('a'), huge, record('b')]);

    // Assess
    expect(result.accepted).toEqual(['a', 'b']);
    expect(result.rejected).toEqual([{ id: 'huge', reason: 'record-too-large' }]);
    const sentIds = server.seen.flatMap((s) => messagesOf(s).map((m) => m.body.xdmEntity._id));
    expect(sentIds).not.toContain('huge');
  });

  it('should accept a record that exactly fills a request', async () => {
    // Prepare: find the largest pad whose single-message request is exactly at the limit
    const server = await startServer(acceptAll);
    const sink = new StreamingSink({ target: target(server.url), tokens: stubTokens(), maxRequestBytes: 20_000 });
    await sink.send([record('probe')]);
    const overhead = server.seen[0]!.body.length - Buffer.byteLength(record('probe').json);
    const exact = { id: 'exact', json: JSON.stringify({ _id: 'exact', p: '' }) };
    const fill = 20_000 - overhead - Buffer.byteLength(exact.json);
    const fitting = { id: 'exact', json: JSON.stringify({ _id: 'exact', p: 'y'.repeat(fill) }) };
    const tooBig = { id: 'over1', json: JSON.stringify({ _id: 'over1', p: `${'y'.repeat(fill - 1)}zz` }) };

    // Act
    const result = await sink.send([fitting, tooBig]);

    // Assess
    expect(result.accepted).toEqual(['exact']);
    expect(result.rejected.map((r) => r.id)).toEqual(['over1']);
    expect(result.maxRequestBytes).toBe(20_000);
  });

  it('should reject messages DCS answers 400 with Adobe’s message and re-send only the 503 ones', async () => {
    // Prepare: first request → a accepted, b 400, c 503; then everything is accepted
    const server = await startServer((seen, res, n) => {
      const messages = messagesOf(seen);
      if (n === 1) {
        multiStatus(res, [
          { xactionId: 'x:0' },
          { statusCode: 400, message: 'inletId: [i] imsOrgId: [o] Message has unknown xdm format' },
          { statusCode: 503, message: 'Service unavailable' },
        ]);
        return;
      }
      multiStatus(
        res,
        messages.map((_, i) => ({ xactionId: `y:${i}` })),
      );
    });
    const { sleep, waits } = recordingSleep();
    const sink = new StreamingSink({
      target: target(server.url),
      tokens: stubTokens(),
      retry: FAST,
      sleep,
      random: () => 0.5,
    });

    // Act
    const result = await sink.send([record('a'), record('b'), record('c')]);

    // Assess
    expect(result.accepted).toEqual(['a', 'c']);
    expect(result.rejected).toEqual([
      { id: 'b', reason: 'inletId: [i] imsOrgId: [o] Message has unknown xdm format', status: 400 },
    ]);
    expect(server.seen).toHaveLength(2);
    expect(messagesOf(server.seen[1]!).map((m) => m.body.xdmEntity._id)).toEqual(['c']);
    expect(result.retried).toBe(1);
    expect(waits).toHaveLength(1);
  });

  it('should reject a message DCS keeps answering 500 once retries are used up, and deliver the rest', async () => {
    // Prepare: the message "poison" always gets a per-message 500
    const server = await startServer((seen, res) => {
      multiStatus(
        res,
        messagesOf(seen).map((m, i) =>
          m.body.xdmEntity._id === 'poison'
            ? { statusCode: 500, message: 'Message payload schema not specified' }
            : { xactionId: `x:${i}` },
        ),
      );
    });
    const { sleep } = recordingSleep();
    const sink = new StreamingSink({ target: target(server.url), tokens: stubTokens(), retry: FAST, sleep });

    // Act
    const result = await sink.send([record('a'), record('poison'), record('b')]);

    // Assess
    expect(result.accepted).toEqual(['a', 'b']);
    expect(result.rejected).toEqual([
      { id: 'poison', reason: 'Message payload schema not specified (still failing after 5 attempts)', status: 500 },
    ]);
    expect(server.seen).toHaveLength(5);
    expect(result.retried).toBe(4);
  });

  it('should stop and report unsent messages DCS keeps answering 503', async () => {
    // Prepare
    const server = await startServer((seen, res) => {
      multiStatus(
        res,
        messagesOf(seen).map((m, i) =>
          m.body.xdmEntity._id === 'busy' ? { statusCode: 503, message: 'busy' } : { xactionId: `x:${i}` },
        ),
      );
    });
    const { sleep } = recordingSleep();
    const sink = new StreamingSink({ target: target(server.url), tokens: stubTokens(), retry: FAST, sleep });

    // Act
    const error = (await sink.send([record('a'), record('busy')]).catch((e: unknown) => e)) as StreamingDeliveryError;

    // Assess
    expect(error).toBeInstanceOf(StreamingDeliveryError);
    expect(error.message).toMatch(/answered 503/);
    expect(error.result.accepted).toEqual(['a']);
    expect(error.result.unsent).toEqual(['busy']);
  });

  it('should honour Retry-After on a 429 for the whole request', async () => {
    // Prepare
    const server = await startServer((seen, res, n) => {
      if (n === 1) {
        res.writeHead(429, { 'retry-after': '7', 'content-type': 'application/json' });
        res.end(JSON.stringify({ title: 'Too many requests' }));
        return;
      }
      acceptAll(seen, res, n);
    });
    const { sleep, waits } = recordingSleep();
    const sink = new StreamingSink({
      target: target(server.url),
      tokens: stubTokens(),
      retry: FAST,
      sleep,
      random: () => 0,
    });

    // Act
    const result = await sink.send([record('a'), record('b')]);

    // Assess
    expect(result.accepted).toEqual(['a', 'b']);
    expect(waits).toEqual([7000]);
    expect(result.retried).toBe(2);
    expect(result.requests).toBe(2);
  });

  it('should renew the token once after a 401 and then succeed', async () => {
    // Prepare
    const server = await startServer((seen, res, n) => {
      if (seen.headers.authorization === 'Bearer token-1') {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error_code: '401013', message: 'Oauth token is not valid' }));
        return;
      }
      acceptAll(seen, res, n);
    });
    const tokens = stubTokens();
    const sink = new StreamingSink({ target: target(server.url), tokens });

    // Act
    const result = await sink.send([record('a')]);

    // Assess
    expect(result.accepted).toEqual(['a']);
    expect(tokens.invalidated).toEqual(['token-1']);
    expect(server.seen.map((s) => s.headers.authorization)).toEqual(['Bearer token-1', 'Bearer token-2']);
  });

  it('should stop with an error that says what to check when the token is refused twice', async () => {
    // Prepare
    const server = await startServer((_seen, res) => {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          type: 'x/data-collection-service-authorization',
          status: '401',
          title: 'Authorization',
          report: { message: 'Ims service token is empty' },
        }),
      );
    });
    const tokens = stubTokens();
    const sink = new StreamingSink({ target: target(server.url), tokens });

    // Act
    const error = await sink.send([record('a'), record('b')]).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(StreamingDeliveryError);
    const failure = error as StreamingDeliveryError;
    expect(failure.message).toMatch(/Ims service token is empty/);
    expect(failure.message).toMatch(/AEP_SANDBOX/);
    expect(failure.message).not.toMatch(/token-\d/);
    expect(failure.result.unsent).toEqual(['a', 'b']);
    expect(failure.result.accepted).toEqual([]);
    expect(tokens.invalidated).toHaveLength(1);
  });

  it('should name the connection id when DCS does not know the connection', async () => {
    // Prepare
    const server = await startServer((_seen, res) => {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ title: 'Not found' }));
    });
    const sink = new StreamingSink({ target: target(server.url), tokens: stubTokens() });

    // Act
    const error = (await sink.send([record('a')]).catch((e: unknown) => e)) as StreamingDeliveryError;

    // Assess
    expect(error).toBeInstanceOf(StreamingDeliveryError);
    expect(error.message).toMatch(/conn-1/);
    expect(error.message).toMatch(/AEP_INLET_URL/);
    expect(error.result.unsent).toEqual(['a']);
  });

  it('should split a request that DCS answers 413 and deliver both halves', async () => {
    // Prepare: the server accepts at most 3 messages per request
    const server = await startServer((seen, res, n) => {
      if (messagesOf(seen).length > 3) {
        res.writeHead(413);
        res.end('Payload too large');
        return;
      }
      acceptAll(seen, res, n);
    });
    const sink = new StreamingSink({ target: target(server.url), tokens: stubTokens() });
    const ids = Array.from({ length: 10 }, (_, i) => `s${i}`);

    // Act
    const result = await sink.send(ids.map((id) => record(id)));

    // Assess
    expect(result.accepted).toEqual(ids);
    const delivered = server.seen
      .filter((s) => messagesOf(s).length <= 3)
      .flatMap((s) => messagesOf(s).map((m) => m.body.xdmEntity._id));
    expect(delivered.sort()).toEqual([...ids].sort());
  });

  it('should give up after the retry budget with a clear error and keep what was accepted', async () => {
    // Prepare: requests carrying "bad" always get 503; others are accepted
    const server = await startServer((seen, res, n) => {
      if (messagesOf(seen).some((m) => m.body.xdmEntity._id.startsWith('bad'))) {
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ message: 'Service Unavailable' }));
        return;
      }
      acceptAll(seen, res, n);
    });
    const { sleep, waits } = recordingSleep();
    const sink = new StreamingSink({
      target: target(server.url),
      tokens: stubTokens(),
      retry: FAST,
      sleep,
      maxMessagesPerRequest: 2,
      maxInFlight: 1,
    });

    // Act
    const error = (await sink
      .send([record('a'), record('b'), record('bad1'), record('c')])
      .catch((e: unknown) => e)) as StreamingDeliveryError;

    // Assess
    expect(error).toBeInstanceOf(StreamingDeliveryError);
    expect(error.message).toMatch(/5 attempt/);
    expect(error.result.accepted).toEqual(['a', 'b']);
    expect(error.result.unsent).toEqual(['bad1', 'c']);
    expect(waits).toHaveLength(4);
  });

  it('should not start requests after the deadline and report what was not sent', async () => {
    // Prepare: a fake clock advanced by each request; deadline after the 3rd request
    let clock = 1_000;
    const server = await startServer((seen, res, n) => {
      clock += 100;
      acceptAll(seen, res, n);
    });
    const sink = new StreamingSink({
      target: target(server.url),
      tokens: stubTokens(),
      maxMessagesPerRequest: 2,
      maxInFlight: 1,
      now: () => clock,
    });
    const ids = Array.from({ length: 10 }, (_, i) => `d${i}`);

    // Act
    const result = await sink.send(
      ids.map((id) => record(id)),
      { deadlineMs: 1_250 },
    );

    // Assess
    expect(server.seen).toHaveLength(3);
    expect(result.accepted).toEqual(ids.slice(0, 6));
    expect(result.unsent).toEqual(ids.slice(6));
    expectPartition(result, ids);
  });

  it('should leave retryable messages unsent rather than wait past the deadline', async () => {
    // Prepare: everything gets 503 with Retry-After 30 s, deadline in 10 s
    const clock = 0;
    const server = await startServer((_seen, res) => {
      res.writeHead(503, { 'retry-after': '30' });
      res.end();
    });
    const { sleep, waits } = recordingSleep();
    const sink = new StreamingSink({
      target: target(server.url),
      tokens: stubTokens(),
      retry: FAST,
      sleep,
      now: () => clock,
    });

    // Act
    const result = await sink.send([record('a'), record('b')], { deadlineMs: 10_000 });

    // Assess
    expect(result.unsent).toEqual(['a', 'b']);
    expect(result.accepted).toEqual([]);
    expect(waits).toEqual([]);
    expect(server.seen).toHaveLength(1);
  });

  it('should return everything unsent without a request when the deadline has already passed', async () => {
    // Prepare
    const server = await startServer(acceptAll);
    const sink = new StreamingSink({ target: target(server.url), tokens: stubTokens(), now: () => 5_000 });

    // Act
    const result = await sink.send([record('a')], { deadlineMs: 4_000 });

    // Assess
    expect(result.unsent).toEqual(['a']);
    expect(server.seen).toHaveLength(0);
  });

  it('should keep the number of requests in flight bounded', async () => {
    // Prepare
    let inFlight = 0;
    let peak = 0;
    const server = await startServer(async (seen, res, n) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((resolve) => setTimeout(resolve, 5));
      inFlight--;
      acceptAll(seen, res, n);
    });
    const sink = new StreamingSink({
      target: target(server.url),
      tokens: stubTokens(),
      maxInFlight: 3,
      maxMessagesPerRequest: 1,
    });
    const ids = Array.from({ length: 20 }, (_, i) => `f${i}`);

    // Act
    const result = await sink.send(ids.map((id) => record(id)));

    // Assess
    expect(result.accepted).toEqual(ids);
    expect(peak).toBeLessThanOrEqual(3);
    expect(peak).toBeGreaterThan(1);
  });

  it('should retry a request whose connection dropped and report its ids as ambiguous', async () => {
    // Prepare: the first request's socket is destroyed after the body arrived
    const server = await startServer((seen, res, n) => {
      if (n === 1) {
        res.socket?.destroy();
        return;
      }
      acceptAll(seen, res, n);
    });
    const { sleep } = recordingSleep();
    const sink = new StreamingSink({ target: target(server.url), tokens: stubTokens(), retry: FAST, sleep });

    // Act
    const result = await sink.send([record('a'), record('b')]);

    // Assess
    expect(result.accepted).toEqual(['a', 'b']);
    expect(result.ambiguous).toEqual(['a', 'b']);
    expect(result.retried).toBe(2);
  });

  it('should retry a request that timed out and report its ids as ambiguous', async () => {
    // Prepare: the first answer comes after the client stopped waiting
    const server = await startServer(async (seen, res, n) => {
      if (n === 1) await new Promise((resolve) => setTimeout(resolve, 300));
      acceptAll(seen, res, n);
    });
    const { sleep } = recordingSleep();
    const sink = new StreamingSink({
      target: target(server.url),
      tokens: stubTokens(),
      retry: FAST,
      sleep,
      requestTimeoutMs: 100,
    });

    // Act
    const result = await sink.send([record('a')]);

    // Assess
    expect(result.accepted).toEqual(['a']);
    expect(result.ambiguous).toEqual(['a']);
    expect(server.seen).toHaveLength(2);
  });

  it('should treat a refused connection as safe to retry (not ambiguous) and fail clearly when it stays down', async () => {
    // Prepare: a port with nothing listening
    const server = await startServer(acceptAll);
    const closed = server.url;
    await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    const { sleep, waits } = recordingSleep();
    const sink = new StreamingSink({ target: target(closed), tokens: stubTokens(), retry: FAST, sleep });

    // Act
    const error = (await sink.send([record('a')]).catch((e: unknown) => e)) as StreamingDeliveryError;

    // Assess
    expect(error).toBeInstanceOf(StreamingDeliveryError);
    expect(error.message).toMatch(/ECONNREFUSED/);
    expect(error.result.unsent).toEqual(['a']);
    expect(error.result.ambiguous).toEqual([]);
    expect(waits).toHaveLength(4);
  });

  it('should use the org of the credential when the target names none, and refuse an empty flow id', async () => {
    // Prepare
    const server = await startServer(acceptAll);
    const sink = new StreamingSink({ target: target(server.url, { sourceName: 'src' }), tokens: stubTokens() });

    // Act
    await sink.send([record('a')]);
    const noFlow = () => new StreamingSink({ target: target(server.url, { flowId: '' }), tokens: stubTokens() });

    // Assess
    const header = messagesOf(server.seen[0]!)[0]!.header;
    expect(header.imsOrgId).toBe('ORG1@AdobeOrg');
    expect(header.flowId).toBe('flow-1');
    expect(noFlow).toThrow(/dataflow id \(AEP_FLOW_ID\)/);
    expect(header.source).toEqual({ name: 'src' });
  });

  it('should name the configured schema version in schemaRef.contentType', async () => {
    // Prepare
    const server = await startServer(acceptAll);
    const sink = new StreamingSink({ target: target(server.url, { schemaVersion: '1.3' }), tokens: stubTokens() });

    // Act
    await sink.send([record('a')]);

    // Assess
    const header = messagesOf(server.seen[0]!)[0]!.header;
    expect(header.schemaRef.contentType).toBe('application/vnd.adobe.xed-full+json;version=1.3');
  });
});

describe('StreamingSink: configuration faults are not rejections', () => {
  const PREFIX = 'inletId: [conn-1] imsOrgId: [ORG1@AdobeOrg]';
  const refuseAll =
    (message: string): Handler =>
    (seen, res) =>
      multiStatus(
        res,
        messagesOf(seen).map(() => ({ statusCode: 400, message: `${PREFIX} ${message}` })),
      );

  it.each([
    ['flow', 'Message has an unknown flowId [flow-x]: no such dataflow'],
    ['schema', 'Message has unknown xdm format'],
    ['dataset', 'Dataset [ds-x] does not exist'],
    ['org', 'Message has an absent or wrong ims org in the header'],
  ])(
    'should raise a %s configuration fault when every message is refused for it, and reject none',
    async (fault, m) => {
      // Prepare
      const server = await startServer(refuseAll(m));
      const sink = new StreamingSink({ target: target(server.url), tokens: stubTokens(), maxMessagesPerRequest: 2 });

      // Act
      const error = (await sink.send([record('a'), record('b'), record('c')]).catch((e: unknown) => e)) as
        | StreamingDeliveryError
        | undefined;

      // Assess: the run stops (config kind underneath), every record stays unsent
      expect(error).toBeInstanceOf(StreamingDeliveryError);
      expect(error!.cause).toBeInstanceOf(PlatformConfigurationError);
      expect(error!.cause).toMatchObject({ kind: 'config', fault, status: 400 });
      expect(platformConfigurationFault(error)).toBe(error!.cause);
      expect(error!.message).toMatch(/No record was marked rejected/);
      expect(error!.result.rejected).toEqual([]);
      expect(error!.result.accepted).toEqual([]);
      expectPartition(error!.result, ['a', 'b', 'c']);
    },
  );

  it('should keep record-level refusals as rejections, even when they hit every message', async () => {
    // Prepare: a schema violation of each record (help/ingestion/quality/streaming-validation.md wording)
    const server = await startServer(refuseAll('Message is invalid: 3 schema violations found'));
    const sink = new StreamingSink({ target: target(server.url), tokens: stubTokens() });

    // Act
    const result = await sink.send([record('a'), record('b')]);

    // Assess
    expect(result.rejected.map((r) => r.id)).toEqual(['a', 'b']);
    expect(result.unsent).toEqual([]);
  });

  it('should reject an envelope-worded refusal of some messages only (the others were accepted)', async () => {
    // Prepare
    const server = await startServer((seen, res) =>
      multiStatus(
        res,
        messagesOf(seen).map((_, i) =>
          i === 0 ? { xactionId: 'x:0' } : { statusCode: 400, message: `${PREFIX} Dataset [ds-x] does not exist` },
        ),
      ),
    );
    const sink = new StreamingSink({ target: target(server.url), tokens: stubTokens() });

    // Act
    const result = await sink.send([record('a'), record('b')]);

    // Assess
    expect(result.accepted).toEqual(['a']);
    expect(result.rejected.map((r) => r.id)).toEqual(['b']);
  });

  it('should raise a configuration fault when the whole request is refused (403 sandbox, 404 connection)', async () => {
    for (const [status, message, fault] of [
      [403, "Sandbox 'x' is not the sandbox of this connection", 'sandbox'],
      [404, 'Inlet not found', 'connection'],
    ] as const) {
      // Prepare
      const server = await startServer((_seen, res) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ title: 'refused', report: { message: `${PREFIX} ${message}` } }));
      });
      const sink = new StreamingSink({ target: target(server.url), tokens: stubTokens() });

      // Act
      const error = (await sink.send([record('a')]).catch((e: unknown) => e)) as StreamingDeliveryError;

      // Assess
      expect(error.cause).toMatchObject({ name: 'PlatformConfigurationError', kind: 'config', fault, status });
      expect(error.result.unsent).toEqual(['a']);
    }
  });

  it('should name the envelope reason of a DCS message, and none for a record-level one', () => {
    expect(envelopeFault(`${PREFIX} Message has a wrong flowId [f]: the dataflow does not write`)).toBe('flow');
    expect(envelopeFault(`${PREFIX} Message has unknown xdm format: header.schemaRef.id [s] is not`)).toBe('schema');
    expect(envelopeFault('Missing header: x-sandbox-name')).toBe('sandbox');
    expect(envelopeFault('[conn-1] Ims service token is not valid')).toBe('auth');
    expect(envelopeFault(`${PREFIX} Message is invalid: 1 schema violations found: #/_acme/dataset: bad`)).toBe(
      undefined,
    );
    expect(envelopeFault(`${PREFIX} Payload header is missing Source Name`)).toBeUndefined();
    expect(envelopeFault('emulated schema violation')).toBeUndefined();
  });
});

describe('StreamingSink: Profile send rate', () => {
  it('should keep to maxRecordsPerSecond across requests, waiting on the injected clock', async () => {
    // Prepare: a clock only the sink's sleeps move; 10 records/s, requests of 4 messages
    let clock = 0;
    const waits: number[] = [];
    const server = await startServer(acceptAll);
    const sink = new StreamingSink({
      target: target(server.url),
      tokens: stubTokens(),
      maxRecordsPerSecond: 10,
      maxMessagesPerRequest: 4,
      maxInFlight: 1,
      now: () => clock,
      sleep: async (ms) => {
        waits.push(ms);
        clock += ms;
      },
    });
    const ids = Array.from({ length: 30 }, (_, i) => `r${i}`);

    // Act
    const result = await sink.send(ids.map((id) => record(id)));

    // Assess: one second's worth goes at once, the other 20 records wait 2 s in all
    expect(result.accepted).toHaveLength(30);
    expect(waits.reduce((a, b) => a + b, 0)).toBe(2_000);
    expect(clock).toBe(2_000);
  });

  it('should leave the records unsent rather than wait for the rate past the deadline', async () => {
    // Prepare
    let clock = 0;
    const server = await startServer(acceptAll);
    const sink = new StreamingSink({
      target: target(server.url),
      tokens: stubTokens(),
      maxRecordsPerSecond: 2,
      maxMessagesPerRequest: 2,
      maxInFlight: 1,
      now: () => clock,
      sleep: async (ms) => void (clock += ms),
    });

    // Act: the first request uses the bucket; the next would wait 1 s, past the deadline at 500 ms
    const result = await sink.send([record('a'), record('b'), record('c'), record('d')], { deadlineMs: 500 });

    // Assess
    expect(result.accepted).toEqual(['a', 'b']);
    expect(result.unsent).toEqual(['c', 'd']);
  });
});
