/**
 * A fault-injecting S3 proxy: a real HTTP server in front of s3rver that the product's unchanged S3 client talks to
 * (path-style, `endpoint` = the proxy). It adds what s3rver lacks and what reliability tests need:
 *
 * - **faults** matched by operation and key: an S3 error answer (`500 InternalError`, `503 SlowDown`, …), a connection
 *   reset before the request reaches S3, or a reset after S3 applied it (the answer is lost);
 * - **a crash**: from a chosen request on, the "process" is dead — that request and every later one fail at once
 *   without reaching S3 (until {@link S3FaultProxy.revive}), so a test sees exactly what a killed Lambda left behind;
 * - **conditional writes** as real S3 has them since 2024 (`If-None-Match: *` and `If-Match: <etag>` on PutObject,
 *   `If-Match` on DeleteObject → 412 PreconditionFailed, 404 when If-Match names a missing object), atomic per key.
 *   s3rver ignores both headers; behind this proxy they behave like S3
 *   (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html).
 *
 * The proxy keeps the client's `Host` header so s3rver sees the request as signed.
 */
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/** What an S3 request does, as far as faults are concerned. */
export type S3Operation =
  | 'put'
  | 'get'
  | 'head'
  | 'list'
  | 'delete'
  | 'multipart-create'
  | 'multipart-upload'
  | 'multipart-complete'
  | 'multipart-abort'
  | 'other';

export type S3FaultAction =
  /** Answer with an S3 error document; the request is not applied. `SlowDown` is S3's 503 throttling answer. */
  | { readonly kind: 'status'; readonly status: number; readonly code?: string; readonly message?: string }
  /** Reset the connection: `before` S3 saw the request (not applied), or `after` S3 applied it (the answer is lost). */
  | { readonly kind: 'reset'; readonly when?: 'before' | 'after' }
  /** The process dies here: `before` (not applied) or `after` (applied) this request; later requests all fail. */
  | { readonly kind: 'crash'; readonly when?: 'before' | 'after' };

export interface S3FaultRule {
  /** Operations it applies to (default: any). */
  readonly op?: S3Operation | readonly S3Operation[];
  /** Keys it applies to: a RegExp, or a substring of the key (default: any). */
  readonly key?: RegExp | string;
  readonly action: S3FaultAction;
  /** Matching requests to let through first. @default 0 */
  readonly skip?: number;
  /** How many matching requests it applies to after the skipped ones. @default 1 */
  readonly times?: number;
}

export interface S3RequestRecord {
  readonly op: S3Operation;
  readonly method: string;
  readonly key: string;
  readonly status: number;
  /** The fault applied to it, if any (`dead` once the process crashed). */
  readonly fault?: S3FaultAction['kind'] | 'dead' | 'precondition';
}

export interface S3FaultProxy {
  /** `http://127.0.0.1:<port>`: use as the S3 client's endpoint (path-style). */
  readonly url: string;
  inject(rule: S3FaultRule): void;
  /** Drops the rules not consumed yet. */
  clearFaults(): void;
  /** Dies now: every later request fails at once without reaching S3. */
  crash(): void;
  /** True between a crash and {@link revive}. */
  readonly crashed: boolean;
  /** A fresh "process": requests reach S3 again. Waits until the requests of the dead one have settled. */
  revive(): Promise<void>;
  /** Requests currently being forwarded. */
  readonly inFlight: number;
  readonly requests: readonly S3RequestRecord[];
  /** Rules still waiting for a matching request. */
  readonly pendingFaults: number;
  close(): Promise<void>;
}

interface Rule {
  readonly rule: S3FaultRule;
  skip: number;
  times: number;
}

/** Request headers that describe the body of a write: dropped when the proxy asks S3 about an object itself. */
const BODY_HEADERS = [
  'content-length',
  'content-md5',
  'content-type',
  'content-encoding',
  'expect',
  'transfer-encoding',
  'if-match',
  'if-none-match',
];

/** Classifies a path-style S3 request. */
export function s3Operation(
  method: string,
  key: string,
  query: URLSearchParams,
  headers: IncomingHttpHeaders,
): S3Operation {
  const uploadId = query.has('uploadId');
  switch (method) {
    case 'PUT':
      if (key === '') return 'other';
      if (uploadId && query.has('partNumber')) return 'multipart-upload';
      return headers['x-amz-copy-source'] !== undefined ? 'other' : 'put';
    case 'POST':
      if (query.has('uploads')) return 'multipart-create';
      if (uploadId) return 'multipart-complete';
      if (query.has('delete')) return 'delete';
      return 'other';
    case 'DELETE':
      return uploadId ? 'multipart-abort' : 'delete';
    case 'GET':
      return key === '' ? 'list' : 'get';
    case 'HEAD':
      return key === '' ? 'other' : 'head';
    default:
      return 'other';
  }
}

/** Starts the proxy in front of `upstream` (s3rver's origin, `http://127.0.0.1:<port>`). */
export async function startS3FaultProxy(upstream: string): Promise<S3FaultProxy> {
  const target = new URL(upstream);
  const rules: Rule[] = [];
  const records: S3RequestRecord[] = [];
  const locks = new Map<string, Promise<void>>();
  const sockets = new Set<Socket>();
  let dead = false;
  let inFlight = 0;

  const take = (op: S3Operation, key: string): S3FaultAction | undefined => {
    for (const r of rules) {
      const ops = r.rule.op === undefined ? undefined : Array.isArray(r.rule.op) ? r.rule.op : [r.rule.op];
      if (ops !== undefined && !ops.includes(op)) continue;
      const k = r.rule.key;
      if (k !== undefined && !(typeof k === 'string' ? key.includes(k) : k.test(key))) continue;
      if (r.skip > 0) {
        r.skip--;
        continue;
      }
      r.times--;
      if (r.times <= 0) rules.splice(rules.indexOf(r), 1);
      return r.rule.action;
    }
    return undefined;
  };

  /** Serialises conditional writes per key, as S3 does. */
  const withLock = async <T>(key: string, work: () => Promise<T>): Promise<T> => {
    const previous = locks.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const chained = previous.then(() => mine);
    locks.set(key, chained);
    await previous;
    try {
      return await work();
    } finally {
      release();
      if (locks.get(key) === chained) locks.delete(key);
    }
  };

  /** Sends a request upstream; resolves with the upstream response (body not consumed). */
  const upstreamRequest = (
    method: string,
    path: string,
    headers: IncomingHttpHeaders,
    body?: IncomingMessage,
  ): Promise<IncomingMessage> =>
    new Promise((resolve, reject) => {
      const out = httpRequest({ host: target.hostname, port: target.port, method, path, headers }, resolve);
      out.on('error', reject);
      if (body === undefined) out.end();
      else body.pipe(out);
    });

  /** The object's ETag, or undefined when there is none. */
  const currentEtag = async (path: string, headers: IncomingHttpHeaders): Promise<string | undefined> => {
    const h: IncomingHttpHeaders = { ...headers };
    for (const name of BODY_HEADERS) delete h[name];
    const res = await upstreamRequest('HEAD', path, h);
    res.resume();
    await new Promise((resolve) => res.once('end', resolve));
    return res.statusCode === 200 ? String(res.headers.etag ?? '') : undefined;
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const url = new URL(req.url ?? '/', 'http://s3.invalid');
    const [, , ...rest] = url.pathname.split('/');
    const key = decodeURIComponent(rest.join('/'));
    const method = req.method ?? 'GET';
    const op = s3Operation(method, key, url.searchParams, req.headers);
    const record = (status: number, fault?: S3RequestRecord['fault']): void => {
      records.push({ op, method, key, status, ...(fault !== undefined ? { fault } : {}) });
    };

    if (dead) {
      record(0, 'dead');
      return refuse(req, res);
    }
    const fault = take(op, key);
    if (fault?.kind === 'status') {
      record(fault.status, 'status');
      await drain(req);
      return sendError(
        res,
        fault.status,
        fault.code ?? codeFor(fault.status),
        fault.message ?? messageFor(fault.status),
        key,
      );
    }
    const before = fault !== undefined && (fault.when ?? 'before') === 'before';
    if (fault?.kind === 'reset' && before) {
      record(0, 'reset');
      req.socket.destroy();
      return;
    }
    if (fault?.kind === 'crash' && before) {
      dead = true;
      record(0, 'crash');
      return refuse(req, res);
    }

    const forward = async (): Promise<void> => {
      const upstreamRes = await upstreamRequest(method, req.url ?? '/', withoutConditions(req.headers), req);
      if (fault !== undefined) {
        // Applied by S3; the answer never reaches the client.
        upstreamRes.resume();
        await new Promise((resolve) => upstreamRes.once('end', resolve));
        if (fault.kind === 'crash') dead = true;
        record(upstreamRes.statusCode ?? 0, fault.kind);
        req.socket.destroy();
        return;
      }
      record(upstreamRes.statusCode ?? 0);
      res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
      upstreamRes.pipe(res);
      await new Promise((resolve) => res.once('close', resolve));
    };

    const ifNoneMatch = header(req.headers, 'if-none-match');
    const ifMatch = header(req.headers, 'if-match');
    if (
      (op === 'put' || op === 'delete') &&
      method !== 'POST' &&
      (ifNoneMatch !== undefined || ifMatch !== undefined)
    ) {
      await withLock(key, async () => {
        const etag = await currentEtag(req.url ?? '/', req.headers);
        if (ifMatch !== undefined && etag === undefined) {
          record(404, 'precondition');
          await drain(req);
          return sendError(res, 404, 'NoSuchKey', 'The specified key does not exist.', key);
        }
        const exists = ifNoneMatch === '*' && etag !== undefined;
        if (exists || (ifMatch !== undefined && unquote(ifMatch) !== unquote(etag ?? ''))) {
          record(412, 'precondition');
          await drain(req);
          return sendError(
            res,
            412,
            'PreconditionFailed',
            'At least one of the pre-conditions you specified did not hold',
            key,
          );
        }
        await forward();
      });
      return;
    }
    await forward();
  };

  const server = createServer((req, res) => {
    inFlight++;
    let settled = false;
    const done = (): void => {
      if (!settled) {
        settled = true;
        inFlight--;
      }
    };
    res.once('close', done);
    handle(req, res)
      .catch((error: unknown) => {
        if (!res.headersSent) sendError(res, 500, 'InternalError', `S3 fault proxy: ${(error as Error).message}`, '');
        else res.destroy();
      })
      .finally(done);
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    inject: (rule) => void rules.push({ rule, skip: rule.skip ?? 0, times: rule.times ?? 1 }),
    clearFaults: () => void rules.splice(0),
    crash: () => void (dead = true),
    get crashed() {
      return dead;
    },
    revive: async () => {
      // Let whatever the dead process still had in flight settle first (it fails, or lands before the restart).
      for (let quiet = 0; quiet < 3; ) {
        await new Promise((resolve) => setTimeout(resolve, 10));
        quiet = inFlight === 0 ? quiet + 1 : 0;
      }
      dead = false;
    },
    get inFlight() {
      return inFlight;
    },
    get pendingFaults() {
      return rules.length;
    },
    requests: records,
    close: async () => {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function withoutConditions(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const h = { ...headers };
  delete h['if-none-match'];
  delete h['if-match'];
  return h;
}

const unquote = (etag: string): string => etag.replace(/^W\//, '').replace(/"/g, '');

function drain(req: IncomingMessage): Promise<void> {
  if (req.readableEnded) return Promise.resolve();
  return new Promise((resolve) => {
    req.on('end', resolve);
    req.on('error', resolve);
    req.on('close', resolve);
    req.resume();
  });
}

/** What a dead process's request gets: a non-retryable error at once (no S3 SDK retry delays in tests). */
function refuse(req: IncomingMessage, res: ServerResponse): void {
  void drain(req).then(() =>
    sendError(res, 403, 'EmulatedCrash', 'The process that sent this request has crashed (S3 fault proxy)', ''),
  );
}

function codeFor(status: number): string {
  if (status === 503) return 'SlowDown';
  if (status === 500) return 'InternalError';
  if (status === 403) return 'AccessDenied';
  if (status === 404) return 'NoSuchKey';
  return 'InternalError';
}

function messageFor(status: number): string {
  if (status === 503) return 'Please reduce your request rate.';
  if (status === 500) return 'We encountered an internal error. Please try again.';
  if (status === 403) return 'Access Denied';
  return 'Injected fault';
}

function sendError(res: ServerResponse, status: number, code: string, message: string, key: string): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const body =
    '<?xml version="1.0" encoding="UTF-8"?>\n' +
    `<Error><Code>${code}</Code><Message>${message}</Message><Key>${escapeXml(key)}</Key><RequestId>FAULT${Date.now().toString(16)}</RequestId></Error>`;
  res.writeHead(status, {
    'content-type': 'application/xml',
    'content-length': Buffer.byteLength(body),
    'x-amz-request-id': 'FAULT',
  });
  res.end(body);
}

function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
