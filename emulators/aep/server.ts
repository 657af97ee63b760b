/**
 * AEP emulator: a local stand-in for Adobe Experience Platform that speaks Adobe's HTTP protocols on one loopback
 * origin: IMS token endpoint (`/ims/token/v3`), DCS streaming ingestion (`/collection/...`), Batch Ingestion
 * (`/data/foundation/import/...`), Catalog batches (`/data/foundation/catalog/batches...`) and the Data Access API
 * for failed records (`/data/foundation/export/batches/{id}/failed|meta`). It validates what it is sent the way
 * Platform would (asynchronously where Platform is) and keeps what it accepted, so tests assert on exactly what
 * Platform would hold.
 *
 * Out-of-process users (the demo, benchmarks) read its state at `GET /__emulator/state`; see main.ts.
 */
import { createServer, STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { AcceptedStore, type DatasetCounts } from './accepted.ts';
import { BatchIngestion, type BatchStatus, PROMOTION_STATES } from './batch.ts';
import { serveBatch, serveBatchFiles, serveBatchList } from './catalog.ts';
import { applyFault, type EmulatorContext, reply } from './context.ts';
import { serveDcs } from './dcs.ts';
import { type AepFault, FaultQueue, type FaultTarget } from './faults.ts';

type PartialFault = Extract<AepFault, { kind: 'partial' }>;
import { type Exchange, readBody, parseJson, sendJson } from './http.ts';
import {
  type ClientCredentials,
  checkPlatformHeaders,
  IMS_TOKEN_PATH,
  type IssuedToken,
  serveImsToken,
  TokenStore,
} from './ims.ts';
import {
  type AepEmulatorOptions,
  DEFAULT_STREAMING_SLICE_MS,
  DEFAULT_TOKEN_TTL_SECONDS,
  parseAepEmulatorOptions,
} from './options.ts';
import { PlatformSetup, type SetupCounts } from './setup.ts';
import { StreamingBatches } from './streaming-batches.ts';

export type { AepEmulatorOptions } from './options.ts';
export type { AepFault } from './faults.ts';

/** A fault for the batch ingestion path: the next batch completed walks these Catalog states (the last is final). */
export interface PromotionFault {
  kind: 'promotion';
  states: BatchStatus[];
}

export interface AepEmulatorStats {
  requests: number;
  maxRequestBytes: number;
  tokensIssued: number;
  /** DCS messages accepted / refused (batch ingestion records are counted per batch). */
  messagesAccepted: number;
  messagesRejected: number;
  /** Accepted messages whose record failed asynchronous validation (they go to a failed streaming batch). */
  recordsFailedValidation: number;
  /** Streamed records in slices not yet settled into Catalog batches. */
  streamingPending: number;
  /** Batch id → status, file names, records currently in its files. */
  batches: Record<string, { status: string; files: string[]; records: number }>;
}

export interface AepEmulator {
  /** Origin, `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** `${url}/ims/token/v3` */
  readonly imsTokenUrl: string;
  /** `${url}/collection/${id}`; the batch endpoint is `${url}/collection/batch/${id}`. */
  inletUrl(connectionId: string): string;
  /** Origin serving `/data/foundation/...` (Batch Ingestion and Catalog). */
  readonly platformUrl: string;
  close(): Promise<void>;
  /** Queues a fault; each request consumes the earliest queued fault that applies to it. */
  injectFault(fault: AepFault | PromotionFault): void;
  /** Platform catches up now: every streaming slice becomes Catalog batches, every completed batch reaches its
   * final state (`POST /__emulator/settle`). */
  settle(): void;
  /** Every token issued so far becomes invalid (→ 401 `401013` on Platform, 401 on authenticated inlets). */
  expireTokens(): void;
  /** Every accepted `_id`, in order, with repeats if a record was accepted twice. */
  acceptedIds(datasetId?: string): string[];
  /** Accepted `xdmEntity` records, in order (needs `keep: 'records'`). */
  acceptedRecords(datasetId?: string): unknown[];
  /** A snapshot of the counters. */
  readonly stats: AepEmulatorStats;
  readonly requests: ReadonlyArray<{ method: string; path: string; status: number; bytes: number }>;
  /** Objects created through the setup APIs (Schema Registry, Identity Service, Catalog datasets, Flow Service). */
  setupCounts(): SetupCounts;
}

/** What `GET /__emulator/state` answers. */
export interface AepEmulatorState {
  readonly stats: AepEmulatorStats;
  /** Dataset id → accepted / unique / duplicates. */
  readonly accepted: Record<string, DatasetCounts>;
  readonly acceptedTotal: number;
  readonly duplicatesTotal: number;
  readonly pendingFaults: number;
}

const CONTROL_PREFIX = '/__emulator/';
const BATCHES = /^\/data\/foundation\/import\/batches\/([^/]+)$/;
const BATCH_FILE = /^\/data\/foundation\/import\/batches\/([^/]+)\/datasets\/([^/]+)\/files\/(.+)$/;
const CATALOG_BATCH = /^\/data\/foundation\/catalog\/batches\/([^/]+)$/;
const EXPORT_BATCH_FILES = /^\/data\/foundation\/export\/batches\/([^/]+)\/(failed|meta)$/;
const DCS_BATCH = /^\/collection\/batch\/([^/]+)$/;
const DCS_SINGLE = /^\/collection\/([^/]+)$/;

/** Percent-decodes the request path: clients encode connection ids, batch ids and file names in it. */
function decodePath(pathname: string): string {
  try {
    return decodeURIComponent(pathname);
  } catch {
    return pathname; // malformed %-escapes: routed as written, so the answer is a 404 rather than a crash
  }
}

/** Writes `{"ids":[...]}` in slices: millions of ids would not fit in one string. */
async function streamIds(ex: Exchange, ids: string[]): Promise<void> {
  const SLICE = 10_000;
  ex.res.writeHead(200, { 'content-type': 'application/json;charset=utf-8' });
  ex.res.write('{"ids":[');
  for (let i = 0; i < ids.length; i += SLICE) {
    const text =
      (i === 0 ? '' : ',') +
      ids
        .slice(i, i + SLICE)
        .map((id) => JSON.stringify(id))
        .join(',');
    if (!ex.res.write(text)) {
      await new Promise((resolve) => {
        ex.res.once('drain', resolve);
        ex.res.once('close', resolve);
      });
      if (ex.res.destroyed) return;
    }
  }
  ex.res.end(']}');
}

/** Starts the emulator on loopback (port 0 = any free port) and resolves once it listens. */
/**
 * Starts the emulator. `clock` replaces the wall clock (a test's simulated time, shared with the product it checks, as
 * Platform and a deployed connector share real time); it is not an option because it cannot travel as JSON.
 */
export async function startAepEmulator(
  options: AepEmulatorOptions,
  clock: () => number = Date.now,
): Promise<AepEmulator> {
  const opts = parseAepEmulatorOptions(options);
  const clients = new Map<string, ClientCredentials>(opts.clients.map((c) => [c.clientId, c]));
  let sequence = 0;
  const ctx: EmulatorContext = {
    tenant: opts.tenant.replace(/^_/, ''),
    sandbox: opts.sandbox ?? 'prod',
    datasets: new Map(opts.datasets.map((d) => [d.id, d.schemaId])),
    schemaVersions: new Map(opts.datasets.map((d) => [d.id, d.schemaVersion ?? '1.0'])),
    profileDatasets: new Set(opts.datasets.filter((d) => d.profile === true).map((d) => d.id)),
    connections: new Map(opts.connections.map((c) => [c.id, { authenticated: c.authenticated }])),
    flows: new Map((opts.flows ?? []).map((f) => [f.id, { connectionId: f.connectionId, datasetId: f.datasetId }])),
    streaming: new StreamingBatches(opts.streamingSliceMs ?? DEFAULT_STREAMING_SLICE_MS),
    syncValidationForTests: opts.syncValidationForTests ?? false,
    clients,
    orgIds: new Set(opts.clients.map((c) => c.orgId)),
    defaultOrgId: (opts.clients[0] as ClientCredentials).orgId,
    tokens: new TokenStore(),
    accepted: new AcceptedStore(opts.keep ?? 'records'),
    faults: new FaultQueue(),
    counters: { messagesAccepted: 0, messagesRejected: 0, recordsFailedValidation: 0 },
    schemaCheck: (record, datasetId) => setup.checkRecord(record, datasetId),
    nextSequence: () => (sequence += 1),
  };
  let origin = '';
  const setup = new PlatformSetup(ctx, (id) => `${origin}/collection/${encodeURIComponent(id)}`);
  const ttl = opts.tokenTtlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS;
  const batches = new BatchIngestion(ctx, opts.batchSettleDelayMs ?? 0);
  /** Platform's asynchronous work, done lazily: whatever is due by now (or everything) happens before a read. */
  const catchUp = (nowMs: number, all = false): void => {
    ctx.streaming.settle(nowMs, all);
    batches.advance(nowMs, all);
  };
  const allBatches = (): Array<ReturnType<BatchIngestion['catalogBatches']>[number]> => [
    ...batches.catalogBatches(),
    ...ctx.streaming.batches(),
  ];
  const findBatch = (id: string): ReturnType<BatchIngestion['find']> =>
    batches.find(id) ?? ctx.streaming.batches().find((b) => b.id === id);
  const queueFault = (fault: AepFault | PromotionFault): void => {
    if (fault.kind !== 'promotion') {
      ctx.faults.push(fault);
      return;
    }
    const states = (fault as { states?: unknown }).states;
    if (
      !Array.isArray(states) ||
      states.length === 0 ||
      !states.every((s) => (PROMOTION_STATES as readonly unknown[]).includes(s))
    ) {
      throw new Error(`promotion fault: states must be a non-empty list of ${PROMOTION_STATES.join(', ')}`);
    }
    batches.queuePromotion(states as BatchStatus[]);
  };
  const requests: Array<{ method: string; path: string; status: number; bytes: number }> = [];
  let maxRequestBytes = 0;

  const stats = (): AepEmulatorStats => ({
    requests: requests.length,
    maxRequestBytes,
    tokensIssued: ctx.tokens.issued,
    messagesAccepted: ctx.counters.messagesAccepted,
    messagesRejected: ctx.counters.messagesRejected,
    recordsFailedValidation: ctx.counters.recordsFailedValidation,
    streamingPending: ctx.streaming.pending,
    batches: batches.summary(),
  });
  const state = (): AepEmulatorState => {
    catchUp(clock());
    const accepted = ctx.accepted.counts();
    const duplicatesTotal = Object.values(accepted).reduce((n, c) => n + c.duplicates, 0);
    return {
      stats: stats(),
      accepted,
      acceptedTotal: ctx.accepted.size,
      duplicatesTotal,
      pendingFaults: ctx.faults.pending,
    };
  };

  /** A Platform API call: fault step, gateway header checks, then the handler. */
  const platform = async (
    ex: Exchange,
    kind: FaultTarget,
    nowMs: number,
    handle: (grant: IssuedToken, partial?: PartialFault) => Promise<void>,
  ): Promise<void> => {
    const fault = await applyFault(ex, ctx, kind, (status) => ({
      type: 'https://ns.adobe.com/aep/errors/emulated-fault',
      status,
      title: STATUS_CODES[status] ?? 'Error',
      detail: 'Fault injected by the AEP emulator',
    }));
    if (fault.answered) return;
    const gateway = checkPlatformHeaders(ex, clients, ctx.tokens, ctx.sandbox, nowMs);
    if (!gateway.ok) return reply(ex, gateway.status, gateway.body);
    return handle(gateway.grant, fault.partial);
  };

  const route = async (ex: Exchange): Promise<void> => {
    const nowMs = clock();
    const { method, path } = ex;
    const only = async (allowed: string, serve: () => Promise<void>): Promise<void> =>
      method === allowed
        ? serve()
        : reply(ex, 405, { title: 'Method Not Allowed', status: 405, detail: `${method} ${path}` }, { allow: allowed });

    if (path === IMS_TOKEN_PATH) {
      return only('POST', async () => {
        const fault = await applyFault(ex, ctx, 'ims', (status) => ({
          error: 'server_error',
          error_description: STATUS_CODES[status] ?? 'Error',
        }));
        if (!fault.answered) await serveImsToken(ex, clients, ctx.tokens, ttl, nowMs);
      });
    }
    let m = DCS_BATCH.exec(path);
    if (m !== null) return only('POST', () => serveDcs(ex, ctx, m?.[1] as string, true, nowMs));
    m = DCS_SINGLE.exec(path);
    if (m !== null) return only('POST', () => serveDcs(ex, ctx, m?.[1] as string, false, nowMs));

    if (path === '/data/foundation/import/batches') {
      return only('POST', () => platform(ex, 'batch-create', nowMs, (grant) => batches.create(ex, grant, nowMs)));
    }
    m = BATCH_FILE.exec(path);
    if (m !== null) {
      const [batchId, datasetId, name] = [m[1], m[2], m[3]] as [string, string, string];
      if (method === 'PUT')
        return platform(ex, 'batch-upload', nowMs, (grant, partial) =>
          batches.upload(ex, grant, batchId, datasetId, name, nowMs, partial),
        );
      // Large file upload (POST ?action=INITIALIZE|COMPLETE, PATCH with Content-Range, HEAD) is not emulated.
      return reply(ex, 501, {
        title: 'Not Implemented',
        status: 501,
        detail: `${method} on a batch file (large file upload) is not emulated; PUT the file`,
      });
    }
    m = BATCHES.exec(path);
    if (m !== null) {
      const batchId = m[1] as string;
      const action = ex.query.get('action') ?? '';
      return only('POST', () =>
        platform(ex, 'batch-complete', nowMs, (grant) => batches.signal(ex, grant, batchId, action, nowMs)),
      );
    }
    const read = (serve: (grant: IssuedToken) => Promise<void>): Promise<void> =>
      only('GET', () =>
        platform(ex, 'catalog', nowMs, (grant) => {
          catchUp(nowMs);
          return serve(grant);
        }),
      );
    if (path === '/data/foundation/catalog/batches') return read((grant) => serveBatchList(ex, grant, allBatches()));
    m = CATALOG_BATCH.exec(path);
    if (m !== null) {
      const id = m[1] as string;
      return read((grant) => serveBatch(ex, grant, findBatch(id), id));
    }
    m = EXPORT_BATCH_FILES.exec(path);
    if (m !== null) {
      const [id, kind] = [m[1] as string, m[2] as 'failed' | 'meta'];
      return read((grant) => serveBatchFiles(ex, grant, findBatch(id), id, kind));
    }
    if (PlatformSetup.handles(path)) {
      return platform(ex, 'provision', nowMs, async () => {
        const answer = await setup.serve(ex);
        return reply(ex, answer.status, answer.body);
      });
    }
    return reply(ex, 404, {
      title: 'Not Found',
      status: 404,
      detail: `No emulated Adobe endpoint at ${method} ${path}`,
    });
  };

  /** Test and tooling endpoints, outside Adobe's surface and not counted in stats. */
  const control = async (ex: Exchange): Promise<void> => {
    const { method, path } = ex;
    if (method === 'GET' && path === `${CONTROL_PREFIX}state`) return reply(ex, 200, state());
    if (method === 'GET' && path === `${CONTROL_PREFIX}accepted-ids`) {
      catchUp(clock());
      return streamIds(ex, ctx.accepted.ids(ex.query.get('datasetId') ?? undefined));
    }
    if (method === 'POST' && path === `${CONTROL_PREFIX}faults`) {
      const read = await readBody(ex, 64 * 1024);
      const parsed = read.tooLarge ? undefined : parseJson(read.body);
      if (parsed === undefined || !parsed.ok) return sendJson(ex, 400, { detail: 'body must be one AepFault as JSON' });
      try {
        queueFault(parsed.value as AepFault | PromotionFault);
      } catch (error) {
        return sendJson(ex, 400, { detail: (error as Error).message });
      }
      return sendJson(ex, 204);
    }
    if (method === 'POST' && path === `${CONTROL_PREFIX}settle`) {
      catchUp(clock(), true);
      return reply(ex, 204);
    }
    if (method === 'POST' && path === `${CONTROL_PREFIX}expire-tokens`) {
      ctx.tokens.expireAll();
      return reply(ex, 204);
    }
    return reply(ex, 404, { detail: `No emulator control endpoint at ${method} ${path}` });
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://emulator');
    const ex: Exchange = {
      req,
      res,
      method: req.method ?? 'GET',
      path: decodePath(url.pathname),
      query: url.searchParams,
      bytes: 0,
    };
    const isControl = ex.path.startsWith(CONTROL_PREFIX);
    if (!isControl) {
      res.once('close', () => {
        requests.push({ method: ex.method, path: ex.path, status: res.statusCode, bytes: ex.bytes });
        if (ex.bytes > maxRequestBytes) maxRequestBytes = ex.bytes;
      });
    }
    (isControl ? control(ex) : route(ex)).catch((error: unknown) => {
      // A request the client aborted mid-body lands here too; anything else is an emulator bug, said out loud.
      if (req.destroyed && !res.headersSent) return;
      process.stderr.write(
        `AEP emulator: ${ex.method} ${ex.path} failed: ${(error as Error).stack ?? String(error)}\n`,
      );
      if (!res.headersSent)
        sendJson(ex, 500, {
          title: 'Internal Server Error',
          status: 500,
          detail: `AEP emulator error: ${(error as Error).message}`,
        });
      else res.destroy();
    });
  });

  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

  return {
    url: origin,
    imsTokenUrl: `${origin}${IMS_TOKEN_PATH}`,
    inletUrl: (connectionId) => `${origin}/collection/${encodeURIComponent(connectionId)}`,
    platformUrl: origin,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.close((error) => (error === undefined ? resolve() : reject(error)));
        server.closeAllConnections();
      }),
    injectFault: queueFault,
    settle: () => catchUp(clock(), true),
    expireTokens: () => ctx.tokens.expireAll(),
    acceptedIds: (datasetId) => {
      catchUp(clock());
      return ctx.accepted.ids(datasetId);
    },
    acceptedRecords: (datasetId) => {
      catchUp(clock());
      return ctx.accepted.records(datasetId);
    },
    get stats() {
      catchUp(clock());
      return stats();
    },
    requests,
    setupCounts: () => setup.counts(),
  };
}
