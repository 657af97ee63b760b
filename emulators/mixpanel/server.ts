/**
 * Mixpanel Raw Event Export API emulator: `GET /api/2.0/export` on loopback, speaking Mixpanel's protocol.
 *
 * Behaviour follows mixpanel/docs (openapi/export.openapi.yaml, reference/rate-limits.mdx,
 * reference/segmentation-expressions.mdx):
 * - `from_date`/`to_date` (yyyy-mm-dd, inclusive, required) select events by event time, read as UTC days, or as days
 *   in the project time zone for legacy projects (created before 2023); `to_date` later than today is a 400.
 * - HTTP Basic auth with a service account (`project_id` then required; base64 or plain text) or a legacy project API
 *   secret (as the user name, empty password; base64).
 * - `limit` (≤ 100000), `event` (JSON array of names), `where` (segmentation expression), `time_in_ms=true`.
 * - 3 queries/s, 60 queries/h, 100 concurrent queries per project → 429 with `Retry-After`.
 * - The body is JSON Lines streamed with backpressure (gzip when asked): memory does not grow with the export size.
 *
 * Dataset events become visible once processed: a line whose `mp_processing_time_ms` is after `now()` is not served
 * yet, as in a live project.
 */

import { timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { constants as zlibConstants, createGzip, type Gzip, type ZlibOptions } from 'node:zlib';
import {
  DatasetCursor,
  type DatasetSpec,
  indexRangeFor,
  MAX_EVENT_LAG_MS,
  MAX_EVENT_LEAD_MS,
  type MixpanelEvent,
  trueEventTimeMs,
  validateDatasetSpec,
} from './generator.ts';
import { LineBuffer } from './line-buffer.ts';
import { MS_PER_DAY, parseDay, zoneOffsets, type ZoneOffsets } from './time.ts';
import { compileWhere, type CompiledWhere, WhereSyntaxError } from './where.ts';

export interface MixpanelEmulatorOptions {
  projects: Array<{ projectId: string; timezone?: string; legacyLocalTime?: boolean; dataset?: DatasetSpec }>;
  serviceAccounts?: Array<{ username: string; secret: string; projectIds: string[] }>;
  /** projectId → project API secret (Basic auth: secret as username, empty password). */
  legacyApiSecrets?: Record<string, string>;
  /** Per project; default 3 / 60 / 100 (Mixpanel's documented limits, reference/rate-limits.mdx). */
  rateLimit?: { perSecond: number; perHour: number; concurrent: number } | false;
  /** Clock (ms) used for "today", for rate limiting and for which dataset events are processed yet. */
  now?: () => number;
  /** Default 127.0.0.1, 0. */
  host?: string;
  port?: number;
  /**
   * Serve the emulator's own control endpoints (for the emulator running as a separate process):
   * `POST /__emulator/faults` (one MixpanelFault as JSON), `GET /__emulator/requests` (the request log),
   * `POST /__emulator/events?project_id=…` (JSON array of events), `POST /__emulator/raw-lines?project_id=…`
   * (JSON array of `{line, date}`). Default false.
   */
  control?: boolean;
}

export interface MixpanelRequestLog {
  readonly query: Record<string, string>;
  readonly status: number;
  /** Lines served so far (events and raw lines; not the `terminated early` marker). */
  readonly eventsServed: number;
  readonly gzip: boolean;
  /** The fault this request consumed, if any. */
  readonly fault?: MixpanelFault['kind'];
}

export interface MixpanelEmulator {
  /** Origin, e.g. `http://127.0.0.1:41234` (clients append `/api/2.0/export`). */
  readonly url: string;
  close(): Promise<void>;
  /** Served in addition to the dataset (filtered like it, by date, `event` and `where`). */
  addEvents(projectId: string, events: MixpanelEvent[]): void;
  /**
   * Served verbatim (e.g. malformed lines) when `date` ∈ [from_date, to_date]; never filtered by `event` or `where`.
   * A line given as bytes is served as those bytes (e.g. malformed UTF-8).
   */
  addRawLines(projectId: string, lines: Array<{ line: string | Uint8Array; date: string }>): void;
  /** Queued; consumed in order by the next export requests that pass authentication, validation and rate limits. */
  injectFault(fault: MixpanelFault): void;
  readonly requests: ReadonlyArray<MixpanelRequestLog>;
}

export type MixpanelFault =
  | { kind: 'status'; status: number; body?: string; retryAfterSeconds?: number }
  | { kind: 'reset'; afterEvents: number }
  | { kind: 'terminated-early'; afterEvents: number }
  | { kind: 'truncate-gzip'; afterEvents: number }
  | { kind: 'slow'; delayMsPerEvents: number; everyEvents: number };

/** The export path (clients may add a trailing slash). */
export const EXPORT_PATH = '/api/2.0/export';
/** `limit` cannot be over 100000 (export.openapi.yaml). */
export const MAX_LIMIT = 100_000;
/** reference/rate-limits.mdx: "A maximum of 100 concurrent queries, 60 queries per hour, and 3 queries per second." */
export const DEFAULT_RATE_LIMIT = { perSecond: 3, perHour: 60, concurrent: 100 } as const;

const CHUNK_BYTES = 64 * 1024;
/** Bodies up to this size are sent uncompressed even when gzip is accepted (export.openapi.yaml, Accept-Encoding). */
export const GZIP_MIN_BYTES = 1400;

const CONTINUE = 0;
const STOP = 1;
const PAUSE = 2;
type LineVerdict = typeof CONTINUE | typeof STOP | typeof PAUSE;
const HOUR_MS = 3_600_000;
// Zone offsets lie within [-12 h, +14 h]: a local day overlaps these UTC bounds.
const MAX_ZONE_BEHIND_MS = 12 * HOUR_MS;
const MAX_ZONE_AHEAD_MS = 14 * HOUR_MS;

interface AddedEvent {
  readonly event: MixpanelEvent;
  readonly eventMs: number;
}

interface Project {
  readonly id: string;
  readonly legacy: boolean;
  /** Zone `from_date`/`to_date` and "today" are read in: the project zone for legacy projects, UTC otherwise. */
  readonly dateZone: ZoneOffsets;
  readonly timezone: string;
  readonly dataset: DatasetSpec | undefined;
  readonly added: AddedEvent[];
  readonly raw: Array<{ readonly line: string | Uint8Array; readonly day: number }>;
  readonly recent: number[];
  inFlight: number;
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

interface ExportPlan {
  readonly project: Project;
  readonly fromDay: number;
  readonly toDay: number;
  readonly events: ReadonlySet<string> | undefined;
  readonly where: CompiledWhere | undefined;
  readonly limit: number;
  readonly timeInMs: boolean;
  readonly gzip: boolean;
  readonly nowMs: number;
}

interface LogEntry {
  query: Record<string, string>;
  status: number;
  eventsServed: number;
  gzip: boolean;
  fault?: MixpanelFault['kind'];
}

/** Starts the emulator; resolves once it listens. */
export async function startMixpanelEmulator(opts: MixpanelEmulatorOptions): Promise<MixpanelEmulator> {
  const projects = buildProjects(opts);
  const now = opts.now ?? Date.now;
  const rateLimit = opts.rateLimit === undefined ? DEFAULT_RATE_LIMIT : opts.rateLimit;
  const serviceAccounts = new Map((opts.serviceAccounts ?? []).map((a) => [a.username, a]));
  const legacySecrets = new Map(
    Object.entries(opts.legacyApiSecrets ?? {}).map(([projectId, secret]) => [secret, projectId]),
  );
  const faults: MixpanelFault[] = [];
  const log: LogEntry[] = [];
  const sockets = new Set<Socket>();
  let closing = false;

  const project = (projectId: string): Project => {
    const p = projects.get(projectId);
    if (p === undefined) throw new Error(`Mixpanel emulator: unknown project ${projectId}`);
    return p;
  };

  const addEvents = (projectId: string, events: MixpanelEvent[]): void => {
    const p = project(projectId);
    for (const event of events) {
      const eventMs = trueEventTimeMs(event, { projectTimezone: p.timezone, legacyLocalTime: p.legacy });
      if (!Number.isFinite(eventMs))
        throw new Error(
          `Mixpanel emulator: event without a numeric properties.time: ${JSON.stringify(event).slice(0, 200)}`,
        );
      p.added.push({ event, eventMs });
    }
  };

  const addRawLines = (projectId: string, lines: Array<{ line: string | Uint8Array; date: string }>): void => {
    const p = project(projectId);
    for (const { line, date } of lines) {
      const day = parseDay(date);
      if (day === undefined)
        throw new Error(`Mixpanel emulator: raw line date must be yyyy-mm-dd, got ${JSON.stringify(date)}`);
      if (typeof line === 'string' ? line.includes('\n') : line.includes(10))
        throw new Error('Mixpanel emulator: a raw line cannot contain a newline');
      p.raw.push({ line, day });
    }
  };

  const injectFault = (fault: MixpanelFault): void => {
    faults.push(validateFault(fault));
  };

  const authenticate = (req: IncomingMessage, query: URLSearchParams): Project => {
    const header = req.headers.authorization;
    if (header === undefined || header === '') {
      throw new HttpError(401, 'Unable to authenticate request', { 'WWW-Authenticate': 'Basic realm="Mixpanel"' });
    }
    // "While the Basic access standard calls for a base64 encoding of the colon-joined credentials our authentication
    // accepts both base64 encoding and plain-text"
    // (mixpanel/docs reference/service-accounts.mdx). That page is about service accounts only: the project secret's
    // page (reference/project-secret.mdx) documents standard Basic auth, so plain text is refused for a secret.
    const m = /^Basic\s+(\S+)\s*$/i.exec(header);
    const credentials = m?.[1];
    const plainText = credentials?.includes(':') === true;
    const decoded =
      credentials === undefined
        ? undefined
        : credentials.includes(':')
          ? credentials
          : /^[A-Za-z0-9+/=]+$/.test(credentials)
            ? Buffer.from(credentials, 'base64').toString('utf8')
            : undefined;
    const colon = decoded === undefined ? -1 : decoded.indexOf(':');
    // Bad credentials are a 400 in practice (see the shared Mixpanel reference), with this message.
    if (decoded === undefined || colon < 0) throw new HttpError(400, 'Unable to authenticate request');
    const user = decoded.slice(0, colon);
    const secret = decoded.slice(colon + 1);
    const projectIdParam = query.get('project_id');

    const account = serviceAccounts.get(user);
    if (account !== undefined) {
      if (!safeEqual(secret, account.secret)) throw new HttpError(400, 'Unable to authenticate request');
      if (projectIdParam === null || projectIdParam === '') {
        throw new HttpError(400, "'project_id' is required when authenticating with a service account");
      }
      if (!/^\d+$/.test(projectIdParam))
        throw new HttpError(400, `'project_id' must be an integer, got ${JSON.stringify(projectIdParam)}`);
      if (!account.projectIds.includes(projectIdParam)) {
        throw new HttpError(403, `Service account ${user} does not have access to project_id: ${projectIdParam}`);
      }
      const p = projects.get(projectIdParam);
      if (p === undefined) throw new HttpError(400, `Project not found: ${projectIdParam}`);
      return p;
    }
    const legacyProject = secret === '' && !plainText ? findLegacy(legacySecrets, user) : undefined;
    if (legacyProject !== undefined) {
      if (projectIdParam !== null && projectIdParam !== '' && projectIdParam !== legacyProject) {
        throw new HttpError(403, `The API secret does not have access to project_id: ${projectIdParam}`);
      }
      const p = projects.get(legacyProject);
      if (p === undefined) throw new HttpError(400, `Project not found: ${legacyProject}`);
      return p;
    }
    throw new HttpError(400, 'Unable to authenticate request');
  };

  const plan = (req: IncomingMessage, query: URLSearchParams, p: Project, nowMs: number): ExportPlan => {
    const day = (name: 'from_date' | 'to_date'): number => {
      const v = query.get(name);
      if (v === null || v === '') throw new HttpError(400, `'${name}' is a required parameter`);
      const d = parseDay(v);
      if (d === undefined)
        throw new HttpError(400, `'${name}' is not a valid date (expected yyyy-mm-dd): ${JSON.stringify(v)}`);
      return d;
    };
    const fromDay = day('from_date');
    const toDay = day('to_date');
    if (fromDay > toDay) throw new HttpError(400, 'from_date cannot be later than to_date');
    const today = p.dateZone.dayIndex(nowMs);
    if (toDay > today) throw new HttpError(400, 'to_date cannot be later than today');

    let limit = Number.POSITIVE_INFINITY;
    const limitParam = query.get('limit');
    if (limitParam !== null && limitParam !== '') {
      if (!/^\d+$/.test(limitParam) || Number(limitParam) < 1) {
        throw new HttpError(400, `'limit' must be a positive integer, got ${JSON.stringify(limitParam)}`);
      }
      limit = Number(limitParam);
      if (limit > MAX_LIMIT) throw new HttpError(400, `'limit' cannot be over ${MAX_LIMIT}`);
    }

    let events: Set<string> | undefined;
    const eventParam = query.get('event');
    if (eventParam !== null && eventParam !== '') {
      let parsed: unknown;
      try {
        parsed = JSON.parse(eventParam);
      } catch {
        parsed = undefined;
      }
      if (!Array.isArray(parsed) || !parsed.every((x) => typeof x === 'string')) {
        throw new HttpError(400, `'event' must be a JSON array of event names, got ${JSON.stringify(eventParam)}`);
      }
      events = parsed.length > 0 ? new Set(parsed as string[]) : undefined;
    }

    let where: CompiledWhere | undefined;
    const whereParam = query.get('where');
    if (whereParam !== null && whereParam.trim() !== '') {
      try {
        where = compileWhere(whereParam);
      } catch (error) {
        if (error instanceof WhereSyntaxError) throw new HttpError(400, `Invalid 'where' expression: ${error.message}`);
        throw error;
      }
    }

    return {
      project: p,
      fromDay,
      toDay,
      events,
      where,
      limit,
      timeInMs: query.get('time_in_ms') === 'true',
      gzip: acceptsGzip(req.headers['accept-encoding']),
      nowMs,
    };
  };

  /** Admits a query or throws 429; returns the release function for the concurrency slot. */
  const admit = (p: Project, nowMs: number): (() => void) => {
    if (rateLimit === false) return () => undefined;
    const recent = p.recent;
    while (recent.length > 0 && (recent[0] as number) <= nowMs - HOUR_MS) recent.shift();
    const lastSecond = recent.filter((t) => t > nowMs - 1000);
    const tooMany = (what: string, retryAfterMs: number): HttpError =>
      new HttpError(
        429,
        `Query rate limit exceeded for project_id: ${p.id} (${what}). Limits: ${rateLimit.perSecond} queries per second, ${rateLimit.perHour} queries per hour, ${rateLimit.concurrent} concurrent queries.`,
        { 'Retry-After': String(Math.max(1, Math.ceil(retryAfterMs / 1000))) },
      );
    if (p.inFlight >= rateLimit.concurrent) throw tooMany(`${p.inFlight} concurrent queries`, 1000);
    if (lastSecond.length >= rateLimit.perSecond) {
      throw tooMany(`${lastSecond.length} queries in the last second`, (lastSecond[0] as number) + 1000 - nowMs);
    }
    if (recent.length >= rateLimit.perHour) {
      throw tooMany(`${recent.length} queries in the last hour`, (recent[0] as number) + HOUR_MS - nowMs);
    }
    recent.push(nowMs);
    p.inFlight++;
    let released = false;
    return () => {
      if (!released) {
        released = true;
        p.inFlight--;
      }
    };
  };

  const handleExport = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const query = url.searchParams;
    const entry: LogEntry = { query: Object.fromEntries(query), status: 0, eventsServed: 0, gzip: false };
    let release: (() => void) | undefined;
    try {
      if (req.method !== 'GET') throw new HttpError(405, `Method ${req.method ?? ''} not allowed`, { Allow: 'GET' });
      const p = authenticate(req, query);
      const nowMs = now();
      const exportPlan = plan(req, query, p, nowMs);
      release = admit(p, nowMs);
      const fault = faults.shift();
      if (fault !== undefined) entry.fault = fault.kind;
      if (fault?.kind === 'status') {
        entry.status = fault.status;
        log.push(entry);
        sendFault(res, req.url ?? '', fault);
        return;
      }
      entry.status = 200;
      log.push(entry);
      await streamExport(req, res, exportPlan, fault, entry, () => closing);
    } catch (error) {
      if (!(error instanceof HttpError)) throw error;
      entry.status = error.status;
      log.push(entry);
      sendError(res, req.url ?? '', error);
    } finally {
      if (release !== undefined) {
        if (res.writableFinished || res.destroyed) release();
        else res.once('close', release);
      }
    }
  };

  const handleControl = async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> => {
    const send = (status: number, body: unknown): void => {
      res.writeHead(status, { 'Content-Type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    try {
      if (req.method === 'GET' && url.pathname === '/__emulator/requests') {
        send(200, { requests: log });
        return;
      }
      if (req.method !== 'POST') {
        send(405, { error: 'Method not allowed' });
        return;
      }
      const body = JSON.parse(await readBody(req)) as unknown;
      const projectId = url.searchParams.get('project_id') ?? '';
      if (url.pathname === '/__emulator/faults') injectFault(body as MixpanelFault);
      else if (url.pathname === '/__emulator/events') addEvents(projectId, body as MixpanelEvent[]);
      else if (url.pathname === '/__emulator/raw-lines')
        addRawLines(projectId, body as Array<{ line: string; date: string }>);
      else {
        send(404, { error: 'Not found' });
        return;
      }
      send(200, { ok: true });
    } catch (error) {
      send(400, { error: (error as Error).message });
    }
  };

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://emulator.invalid');
    const path = url.pathname.replace(/\/+$/, '');
    let handling: Promise<void>;
    if (path === EXPORT_PATH) handling = handleExport(req, res, url);
    else if (opts.control === true && path.startsWith('/__emulator/')) handling = handleControl(req, res, url);
    else {
      sendError(res, req.url ?? '', new HttpError(404, `Unknown endpoint ${url.pathname}`));
      return;
    }
    handling.catch((error: unknown) => {
      // A bug in the emulator: answer 500 if still possible, never crash the test process.
      if (!res.headersSent)
        sendError(res, req.url ?? '', new HttpError(500, `Emulator error: ${(error as Error).message}`));
      else res.destroy(error as Error);
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, opts.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;

  return {
    url: `http://${host}:${address.port}`,
    requests: log,
    addEvents,
    addRawLines,
    injectFault,
    close: async () => {
      closing = true;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const s of sockets) s.destroy();
      await closed;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------------
// Streaming.

async function streamExport(
  req: IncomingMessage,
  res: ServerResponse,
  plan: ExportPlan,
  fault: MixpanelFault | undefined,
  entry: LogEntry,
  closing: () => boolean,
): Promise<void> {
  let aborted = false;
  res.once('close', () => {
    if (!res.writableFinished) aborted = true;
  });
  // A client that goes away mid-stream surfaces as write errors: the export just stops.
  const onStreamError = (): void => {
    aborted = true;
  };
  res.on('error', onStreamError);
  const stopped = (): boolean => aborted || closing();

  // "If set to `gzip` and the response body is > 1400 bytes, the response will be compressed with gzip"
  // (mixpanel/docs openapi/export.openapi.yaml, Accept-Encoding): the headers wait until the body is known to be
  // over that size, or has ended.
  let gzip: Gzip | undefined;
  let sink: NodeJS.WritableStream | undefined;
  const open = (bodyBytes: number): NodeJS.WritableStream => {
    if (sink !== undefined) return sink;
    const compress = plan.gzip && bodyBytes > GZIP_MIN_BYTES;
    entry.gzip = compress;
    const headers: Record<string, string> = { 'Content-Type': 'text/plain; charset=utf-8' };
    if (plan.gzip) headers.Vary = 'Accept-Encoding';
    if (compress) headers['Content-Encoding'] = 'gzip';
    res.writeHead(200, headers);
    // Level 1: the emulator must stay fast; the client's work (inflating) is about the same at any level. A 1 MiB
    // write buffer lets generation (main thread) overlap with compression (libuv thread pool), still bounded.
    if (compress) {
      gzip = createGzip({
        level: zlibConstants.Z_BEST_SPEED,
        memLevel: 9,
        chunkSize: 128 * 1024,
        writableHighWaterMark: 1024 * 1024,
      } as ZlibOptions);
      gzip.pipe(res);
      gzip.on('error', onStreamError);
    }
    sink = gzip ?? res;
    return sink;
  };

  const out = new LineBuffer(CHUNK_BYTES);
  let served = 0;
  const breakAt = fault !== undefined && fault.kind !== 'status' && fault.kind !== 'slow' ? fault.afterEvents : -1;
  const slow = fault?.kind === 'slow' ? fault : undefined;

  /** Hands the buffered lines to the sink, waiting while it is full; yields to the event loop at least once. Until
   * the body passes GZIP_MIN_BYTES nothing is written unless `final` (its size then decides the encoding). */
  const flush = async (final = false): Promise<void> => {
    if (out.length > 0 && (sink !== undefined || final || out.length > GZIP_MIN_BYTES)) {
      const target = open(out.length);
      const ok = target.write(out.take());
      if (!ok && !stopped()) {
        await waitFor(target as unknown as NodeJS.EventEmitter, 'drain', res);
        return;
      }
    }
    await new Promise<void>((resolve) => setImmediate(resolve));
  };
  const end = (): void => void open(0).end();

  /**
   * After each served line: counts it, and says what to do next without a promise per line (the common case):
   * CONTINUE, STOP (limit, fault threshold, disconnect), or PAUSE (flush a full chunk or apply `slow`, then go on).
   */
  const afterLine = (): LineVerdict => {
    served++;
    entry.eventsServed = served;
    if (served === breakAt || served >= plan.limit || stopped()) return STOP;
    if ((slow !== undefined && served % slow.everyEvents === 0) || out.length >= CHUNK_BYTES) return PAUSE;
    return CONTINUE;
  };
  /** The PAUSE work; then whether to stop. */
  const pause = async (): Promise<boolean> => {
    await flush();
    if (slow !== undefined && served % slow.everyEvents === 0) await sleep(slow.delayMsPerEvents);
    return stopped();
  };
  const next = async (verdict: LineVerdict): Promise<boolean> =>
    verdict === STOP ? true : verdict === PAUSE ? pause() : false;

  let stop = breakAt === 0 || stopped();
  // 1. The generated dataset.
  if (!stop && plan.project.dataset !== undefined) stop = await streamDataset(plan, out, afterLine, pause);
  // 2. Events added with addEvents (filtered the same way).
  if (!stop) {
    for (const a of plan.project.added) {
      if (!matchesAdded(plan, a)) continue;
      out.utf8(JSON.stringify(plan.timeInMs ? withTimeInMs(a.event) : a.event));
      out.byte(10);
      if ((stop = await next(afterLine()))) break;
    }
  }
  // 3. Raw lines, verbatim.
  if (!stop) {
    for (const r of plan.project.raw) {
      if (r.day < plan.fromDay || r.day > plan.toDay) continue;
      if (typeof r.line === 'string') out.utf8(r.line);
      else out.bytes(r.line);
      out.byte(10);
      if ((stop = await next(afterLine()))) break;
    }
  }

  if (stopped()) {
    if (sink !== undefined) sink.end();
    else res.destroy();
    return;
  }
  // A fault whose threshold the export did not reach still happens, at the end: a consumed fault is always visible.
  switch (fault?.kind) {
    case 'terminated-early':
      // Mixpanel ends a cut-short export with this literal line and a normal end (HTTP 200).
      out.ascii('terminated early\n');
      await flush(true);
      end();
      return;
    case 'reset':
      await flush(true);
      open(0);
      if (gzip !== undefined) await syncFlush(gzip);
      await new Promise<void>((resolve) => setImmediate(resolve));
      // RST, not FIN: the client sees ECONNRESET mid-body.
      if (!req.socket.destroyed) req.socket.resetAndDestroy();
      return;
    case 'truncate-gzip':
      await flush(true);
      open(0);
      if (gzip !== undefined) {
        // Emit everything written so far as complete deflate blocks, then end the HTTP body without the final block
        // and the gzip trailer (CRC32, ISIZE): a gunzip stream fails with "unexpected end of file".
        const zip: Gzip = gzip;
        await syncFlush(zip);
        await new Promise<void>((resolve) => setImmediate(resolve));
        zip.unpipe(res);
        zip.destroy();
        res.end();
      } else {
        // Without gzip the body simply ends early: a silent truncation, which only the gzip trailer can reveal.
        end();
      }
      return;
    default:
      await flush(true);
      end();
  }
}

function syncFlush(gzip: Gzip): Promise<void> {
  return new Promise<void>((resolve) => gzip.flush(zlibConstants.Z_SYNC_FLUSH, () => resolve()));
}

/** Streams the matching dataset lines; returns true when the export must stop (limit, fault or disconnect). */
async function streamDataset(
  plan: ExportPlan,
  out: LineBuffer,
  afterLine: () => LineVerdict,
  pause: () => Promise<boolean>,
): Promise<boolean> {
  const spec = plan.project.dataset as DatasetSpec;
  const zone = plan.project.dateZone;
  const where = plan.where;
  const events = plan.events;
  // Event times that can fall on the requested days (any zone), then processing times that can carry them.
  const eventLo = plan.fromDay * MS_PER_DAY - MAX_ZONE_AHEAD_MS;
  const eventHi = (plan.toDay + 1) * MS_PER_DAY + MAX_ZONE_BEHIND_MS;
  const procLo = Math.max(eventLo - MAX_EVENT_LEAD_MS, where?.processingTime.lo ?? Number.NEGATIVE_INFINITY);
  // Not processed yet means not exported yet.
  const procHi = Math.min(
    eventHi + MAX_EVENT_LAG_MS,
    where?.processingTime.hi ?? Number.POSITIVE_INFINITY,
    plan.nowMs + 1,
  );
  const range = indexRangeFor(spec, procLo, procHi);
  const cursor = new DatasetCursor(spec, range);

  // A `where` that only reads the processing time, API time, event time or name is evaluated on a stub, without
  // generating the event body; anything else needs the full event.
  const headOnly =
    where !== undefined &&
    [...where.properties].every((p) => p === 'mp_processing_time_ms' || p === '$mp_api_timestamp_ms' || p === 'time');
  const stubProps: Record<string, unknown> = {};
  const stub: MixpanelEvent = { event: '', properties: stubProps };

  while (cursor.next()) {
    const proc = cursor.processingMs;
    if (proc < procLo || proc >= procHi) continue;
    const day = zone.dayIndex(cursor.eventMs);
    if (day < plan.fromDay || day > plan.toDay) continue;
    if (events !== undefined && !events.has(cursor.name)) continue;
    if (where !== undefined) {
      let e: MixpanelEvent;
      if (headOnly) {
        stub.event = cursor.name;
        stubProps.time = cursor.storedTime(plan.timeInMs);
        stubProps.mp_processing_time_ms = proc;
        stubProps.$mp_api_timestamp_ms = cursor.apiMs;
        e = stub;
      } else {
        e = cursor.event(plan.timeInMs);
      }
      if (!where.test(e)) continue;
    }
    cursor.writeLine(out, plan.timeInMs);
    const verdict = afterLine();
    if (verdict === STOP) return true;
    if (verdict === PAUSE && (await pause())) return true;
  }
  return false;
}

function matchesAdded(plan: ExportPlan, a: AddedEvent): boolean {
  const day = plan.project.dateZone.dayIndex(a.eventMs);
  if (day < plan.fromDay || day > plan.toDay) return false;
  if (plan.events !== undefined && !plan.events.has(a.event.event)) return false;
  if (plan.where !== undefined && !plan.where.test(plan.timeInMs ? withTimeInMs(a.event) : a.event)) return false;
  return true;
}

/** The event with `time` in ms, as `time_in_ms=true` exports it. */
function withTimeInMs(e: MixpanelEvent): MixpanelEvent {
  const t = e.properties.time;
  if (typeof t !== 'number' || Math.abs(t) >= 100_000_000_000) return e;
  return { event: e.event, properties: { ...e.properties, time: t * 1000 } };
}

// ---------------------------------------------------------------------------------------------------------------------
// Helpers.

function buildProjects(opts: MixpanelEmulatorOptions): Map<string, Project> {
  if (!Array.isArray(opts.projects) || opts.projects.length === 0) {
    throw new Error('Mixpanel emulator: options.projects must list at least one project');
  }
  const projects = new Map<string, Project>();
  for (const p of opts.projects) {
    if (!/^\d+$/.test(p.projectId))
      throw new Error(`Mixpanel emulator: projectId must be numeric, got ${JSON.stringify(p.projectId)}`);
    if (projects.has(p.projectId)) throw new Error(`Mixpanel emulator: duplicate project ${p.projectId}`);
    const d = p.dataset;
    const timezone = p.timezone ?? d?.projectTimezone ?? 'UTC';
    const legacy = p.legacyLocalTime ?? d?.legacyLocalTime ?? false;
    if (d?.projectTimezone !== undefined && d.projectTimezone !== timezone) {
      throw new Error(
        `Mixpanel emulator: project ${p.projectId} has timezone ${timezone} but its dataset says ${d.projectTimezone}`,
      );
    }
    if (d?.legacyLocalTime !== undefined && d.legacyLocalTime !== legacy) {
      throw new Error(
        `Mixpanel emulator: project ${p.projectId} has legacyLocalTime ${String(legacy)} but its dataset says ${String(d.legacyLocalTime)}`,
      );
    }
    let zone: ZoneOffsets;
    try {
      zone = zoneOffsets(timezone);
    } catch (error) {
      throw new Error(
        `Mixpanel emulator: project ${p.projectId} has an unknown time zone ${JSON.stringify(timezone)}`,
        { cause: error },
      );
    }
    const dataset = d === undefined ? undefined : { ...d, projectTimezone: timezone, legacyLocalTime: legacy };
    if (dataset !== undefined) validateDatasetSpec(dataset);
    projects.set(p.projectId, {
      id: p.projectId,
      legacy,
      timezone,
      dateZone: legacy ? zone : zoneOffsets('UTC'),
      dataset,
      added: [],
      raw: [],
      recent: [],
      inFlight: 0,
    });
  }
  if (opts.rateLimit !== undefined && opts.rateLimit !== false) {
    const r = opts.rateLimit;
    if (![r.perSecond, r.perHour, r.concurrent].every((x) => Number.isInteger(x) && x > 0)) {
      throw new Error('Mixpanel emulator: rateLimit values must be positive integers');
    }
  }
  return projects;
}

function validateFault(fault: MixpanelFault): MixpanelFault {
  const bad = (why: string): Error => new Error(`Mixpanel emulator: invalid fault ${JSON.stringify(fault)}: ${why}`);
  switch (fault?.kind) {
    case 'status':
      if (!Number.isInteger(fault.status) || fault.status < 400 || fault.status > 599)
        throw bad('status must be 400..599');
      return fault;
    case 'reset':
    case 'terminated-early':
    case 'truncate-gzip':
      if (!Number.isInteger(fault.afterEvents) || fault.afterEvents < 0)
        throw bad('afterEvents must be a non-negative integer');
      return fault;
    case 'slow':
      if (!(fault.delayMsPerEvents >= 0) || !Number.isInteger(fault.everyEvents) || fault.everyEvents < 1) {
        throw bad('needs delayMsPerEvents >= 0 and everyEvents >= 1');
      }
      return fault;
    default:
      throw bad('unknown kind');
  }
}

function findLegacy(secrets: Map<string, string>, candidate: string): string | undefined {
  for (const [secret, projectId] of secrets) if (safeEqual(candidate, secret)) return projectId;
  return undefined;
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

function acceptsGzip(header: string | undefined): boolean {
  if (header === undefined) return false;
  return header.split(',').some((part) => {
    const [coding, ...params] = part.trim().toLowerCase().split(';');
    if (coding?.trim() !== 'gzip' && coding?.trim() !== '*') return false;
    const q = params.map((x) => x.trim()).find((x) => x.startsWith('q='));
    return q === undefined || Number(q.slice(2)) > 0;
  });
}

function sendError(res: ServerResponse, requestUrl: string, error: HttpError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(error.status, { 'Content-Type': 'application/json', ...error.headers });
  res.end(JSON.stringify({ request: requestUrl, error: error.message }));
}

const STATUS_MESSAGES: Record<number, string> = {
  400: 'Bad request',
  401: 'Unable to authenticate request',
  402: 'Your plan does not include access to the Raw Data Export API',
  403: 'Permission denied',
  404: 'Not found',
  429: 'Query rate limit exceeded',
  500: 'Internal server error',
};

/** An injected error. 502/503/504 come from the load balancer as HTML, as they do in production. */
function sendFault(res: ServerResponse, requestUrl: string, fault: Extract<MixpanelFault, { kind: 'status' }>): void {
  const headers: Record<string, string> = {};
  if (fault.retryAfterSeconds !== undefined) headers['Retry-After'] = String(fault.retryAfterSeconds);
  let body = fault.body;
  if (body === undefined) {
    if (fault.status >= 502 && fault.status <= 504) {
      const reason =
        fault.status === 502 ? 'Bad Gateway' : fault.status === 503 ? 'Service Unavailable' : 'Gateway Timeout';
      body = `<html><head><title>${fault.status} ${reason}</title></head><body><center><h1>${fault.status} ${reason}</h1></center></body></html>\n`;
      headers['Content-Type'] = 'text/html';
    } else {
      const message = STATUS_MESSAGES[fault.status] ?? 'Request failed';
      body = JSON.stringify({ request: requestUrl, error: message });
      headers['Content-Type'] = 'application/json';
    }
  } else {
    headers['Content-Type'] = isJson(body) ? 'application/json' : 'text/plain; charset=utf-8';
  }
  res.writeHead(fault.status, headers);
  res.end(body);
}

function isJson(s: string): boolean {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
}

function waitFor(emitter: NodeJS.EventEmitter, event: string, res: ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      emitter.off(event, done);
      res.off('close', done);
      resolve();
    };
    emitter.on(event, done);
    res.on('close', done);
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}
