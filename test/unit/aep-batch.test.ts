import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { RetryPolicy } from '#common/retry';
import { RetriesExhaustedError } from '#common/retry';
import { AepHttpError } from '#aep/errors';
import type { ImsAuth } from '#aep/ims';
import type { TokenSource } from '#aep/transport';
import { BatchBodyNotReplayableError, BatchFileTooLargeError, BatchSink, MAX_SMALL_FILE_BYTES } from '#aep/batch';

// ---- a tiny Platform stand-in on loopback --------------------------------------------------------------------------

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

type Handler = (seen: Seen, res: http.ServerResponse, n: number) => void;

const servers: http.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

async function startServer(handler: Handler): Promise<{ url: string; seen: Seen[] }> {
  const seen: Seen[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => undefined);
    req.on('end', () => {
      const entry = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks) };
      seen.push(entry);
      handler(entry, res, seen.length);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

function json(res: http.ServerResponse, status: number, body?: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(body === undefined ? '' : JSON.stringify(body));
}

function stubTokens(): TokenSource {
  return {
    async auth(): Promise<ImsAuth> {
      return { accessToken: 'tok', clientId: 'client-1', orgId: 'ORG1@AdobeOrg', expiresAtMs: Date.now() + 3_600_000 };
    },
    invalidate(): void {},
  };
}

const FAST: RetryPolicy = { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 1000, maxRetryAfterMs: 60_000 };

function sink(url: string, extra: Partial<ConstructorParameters<typeof BatchSink>[0]> = {}): BatchSink {
  return new BatchSink({
    target: { platformUrl: `${url}/`, datasetId: 'ds-1', sandbox: 'dev' },
    tokens: stubTokens(),
    retry: FAST,
    sleep: async () => {},
    ...extra,
  });
}

async function* lines(count: number, chunkLines = 10): AsyncIterable<string> {
  let chunk = '';
  for (let i = 0; i < count; i++) {
    chunk += `${JSON.stringify({ _id: `id-${i}`, timestamp: '2024-01-01T00:00:00Z' })}\n`;
    if ((i + 1) % chunkLines === 0) {
      yield chunk;
      chunk = '';
    }
  }
  if (chunk !== '') yield chunk;
}

// ---- tests ---------------------------------------------------------------------------------------------------------

describe('BatchSink', () => {
  it('should create a JSON batch for the dataset with the partial ingestion options and Platform headers', async () => {
    // Prepare
    const server = await startServer((_s, res) => json(res, 201, { id: 'batch-1', status: 'loading' }));

    // Act
    const id = await sink(server.url).createBatch({ enableErrorDiagnostics: true, partialIngestionPercent: 5 });

    // Assess
    expect(id).toBe('batch-1');
    const [request] = server.seen;
    expect(request?.method).toBe('POST');
    expect(request?.url).toBe('/data/foundation/import/batches');
    expect(JSON.parse(request!.body.toString())).toEqual({
      datasetId: 'ds-1',
      inputFormat: { format: 'json' },
      enableErrorDiagnostics: true,
      partialIngestionPercent: 5,
    });
    expect(request?.headers).toMatchObject({
      authorization: 'Bearer tok',
      'x-api-key': 'client-1',
      'x-gw-ims-org-id': 'ORG1@AdobeOrg',
      'x-sandbox-name': 'dev',
      'content-type': 'application/json',
    });
  });

  it('should stream a file with a PUT to the dataset file path without knowing its size', async () => {
    // Prepare
    const server = await startServer((_s, res) => json(res, 200));

    // Act
    const { bytes } = await sink(server.url).uploadFile('batch-1', 'window=2024/part 1.json', () => lines(1000));

    // Assess
    const [request] = server.seen;
    expect(request?.method).toBe('PUT');
    expect(request?.url).toBe(
      '/data/foundation/import/batches/batch-1/datasets/ds-1/files/window%3D2024/part%201.json',
    );
    expect(request?.headers['content-type']).toBe('application/octet-stream');
    expect(request?.headers['transfer-encoding']).toBe('chunked');
    expect(request?.body.length).toBe(bytes);
    const ids = request!.body
      .toString()
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { _id: string })._id);
    expect(ids).toHaveLength(1000);
    expect(new Set(ids).size).toBe(1000);
  });

  it('should send Content-Length when the size is known', async () => {
    // Prepare
    const server = await startServer((_s, res) => json(res, 200));
    const body = Buffer.from('{"_id":"a"}\n{"_id":"b"}\n');

    // Act
    await sink(server.url).uploadFile('b1', 'f.json', body);

    // Assess
    expect(server.seen[0]?.headers['content-length']).toBe(String(body.length));
    expect(server.seen[0]?.body.equals(body)).toBe(true);
  });

  it('should refuse a file known to be over the limit before sending anything', async () => {
    // Prepare
    const server = await startServer((_s, res) => json(res, 200));

    // Act
    const error = await sink(server.url)
      .uploadFile('b1', 'big.json', () => lines(1), { sizeBytes: MAX_SMALL_FILE_BYTES + 1 })
      .catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(BatchFileTooLargeError);
    expect((error as Error).message).toMatch(/split it/);
    expect(server.seen).toHaveLength(0);
  });

  it('should abort a streamed upload that grows over the limit and not retry it', async () => {
    // Prepare
    const server = await startServer((_s, res) => json(res, 200));
    const small = sink(server.url, { maxFileBytes: 5_000 });

    // Act
    const error = await small.uploadFile('b1', 'big.json', () => lines(1000)).catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(BatchFileTooLargeError);
    expect((error as BatchFileTooLargeError).limitBytes).toBe(5_000);
    // The request was cut off mid-body: the server never saw a complete upload, and it was not tried again.
    expect(server.seen).toHaveLength(0);
  });

  it('should re-open the stream and upload the same file name again after a 503', async () => {
    // Prepare
    const server = await startServer((_s, res, n) =>
      n === 1 ? json(res, 503, { message: 'unavailable' }, { 'retry-after': '2' }) : json(res, 200),
    );
    const waits: number[] = [];
    let opened = 0;

    // Act
    await sink(server.url, { sleep: async (ms) => void waits.push(ms), random: () => 0 }).uploadFile(
      'b1',
      'part.json',
      () => {
        opened++;
        return lines(50);
      },
    );

    // Assess
    expect(opened).toBe(2);
    expect(waits).toEqual([2000]);
    expect(server.seen.map((s) => s.url)).toEqual([
      '/data/foundation/import/batches/b1/datasets/ds-1/files/part.json',
      '/data/foundation/import/batches/b1/datasets/ds-1/files/part.json',
    ]);
    expect(server.seen[1]?.body.equals(server.seen[0]!.body)).toBe(true);
  });

  it('should say how to make a one-shot stream retryable when its upload fails', async () => {
    // Prepare
    const server = await startServer((_s, res) => json(res, 503, { message: 'unavailable' }));

    // Act
    const error = await sink(server.url)
      .uploadFile('b1', 'part.json', lines(5))
      .catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(BatchBodyNotReplayableError);
    expect((error as Error).message).toMatch(/re-opens the stream/);
    expect(server.seen).toHaveLength(1);
  });

  it('should treat a COMPLETE refused on retry as done when the Catalog shows the batch left loading', async () => {
    // Prepare: first COMPLETE answer is lost (socket destroyed) although it went through; the retry gets a 400
    const server = await startServer((s, res, n) => {
      if (s.method === 'POST' && n === 1) return void res.socket?.destroy();
      if (s.method === 'POST') return json(res, 400, { title: 'Batch is not in loading state' });
      json(res, 200, { b1: { id: 'b1', status: 'staging' } });
    });

    // Act
    await sink(server.url).completeBatch('b1');

    // Assess
    expect(server.seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      'POST /data/foundation/import/batches/b1?action=COMPLETE',
      'POST /data/foundation/import/batches/b1?action=COMPLETE',
      'GET /data/foundation/catalog/batches/b1',
    ]);
  });

  it('should report a COMPLETE refused on the first try with Adobe’s message', async () => {
    // Prepare
    const server = await startServer((_s, res) =>
      json(res, 400, { title: 'Bad Request', detail: 'Batch b1 was aborted' }),
    );

    // Act
    const error = await sink(server.url)
      .completeBatch('b1')
      .catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(AepHttpError);
    expect((error as AepHttpError).message).toMatch(/Batch b1 was aborted/);
    expect((error as AepHttpError).status).toBe(400);
  });

  it('should parse the Catalog batch status, metrics and errors', async () => {
    // Prepare
    const server = await startServer((_s, res) =>
      json(res, 200, {
        b1: {
          id: 'b1',
          status: 'failed',
          metrics: { inputRecordCount: 10, failedRecordCount: 2 },
          errors: [{ code: 'INGEST-1555-400', description: 'A required field is missing', rows: ['3', '7'] }],
        },
      }),
    );

    // Act
    const status = await sink(server.url).batchStatus('b1');

    // Assess
    expect(status).toMatchObject({
      id: 'b1',
      status: 'failed',
      recordCount: 10,
      failedRecordCount: 2,
      errors: [{ code: 'INGEST-1555-400', description: 'A required field is missing', rows: ['3', '7'] }],
    });
  });

  it('should say what to check when the dataset is unknown', async () => {
    // Prepare
    const server = await startServer((_s, res) =>
      json(res, 404, { title: 'Not Found', detail: 'Dataset ds-1 not found' }),
    );

    // Act
    const error = await sink(server.url)
      .createBatch()
      .catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(AepHttpError);
    expect((error as Error).message).toMatch(/Dataset ds-1 not found/);
    expect((error as Error).message).toMatch(/AEP_DATASET_ID/);
    expect(server.seen).toHaveLength(1);
  });

  it('should retry a 500 on create and fail loudly when it persists', async () => {
    // Prepare
    const server = await startServer((_s, res) => json(res, 500, { message: 'internal' }));

    // Act
    const error = await sink(server.url)
      .createBatch()
      .catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(RetriesExhaustedError);
    expect((error as Error).message).toMatch(/create batch for dataset ds-1 failed after 3 attempt/);
    expect(server.seen).toHaveLength(3);
  });
});
