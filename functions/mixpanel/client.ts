/**
 * Mixpanel Raw Event Export client.
 *
 * `GET {origin}/api/2.0/export` (mixpanel/docs openapi/src/export.openapi.yaml): JSON Lines, streamed, no pagination.
 * The body is decompressed here with `zlib.createGunzip()` rather than by `fetch`, because undici accepts a gzip body
 * that is cut short as if it were complete; a gunzip error, a connection reset or the literal trailer
 * `terminated early` all make the export fail as `IncompleteExportError`, and the caller never commits the window.
 */
import http from 'node:http';
import https from 'node:https';
import { isUtf8 } from 'node:buffer';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import type { ExportQuery } from '#windows/plan';
import { type RetryPolicy, type Verdict, parseRetryAfter, withRetry } from '#common/retry';
import type { SecretReader } from '#common/secrets';
import { ConnectorError } from '#common/errors';

/** Mixpanel's export path, appended to the residency origin or MIXPANEL_API_BASE_URL. */
export const EXPORT_PATH = '/api/2.0/export';
/** Mixpanel advises long read timeouts for raw exports (mixpanel-import and Mixpanel's docs use ~20 min). */
export const READ_TIMEOUT_MS = 20 * 60_000;
/** The literal last line of an export Mixpanel cut short (reference/mixpanel-export-api.md). */
export const TERMINATED_EARLY = 'terminated early';
/** Output chunk of the gunzip stream: 4× Node's 16 KiB default, so a quarter of the per-chunk stream and batch overhead. */
export const GUNZIP_CHUNK_BYTES = 64 * 1024;
const LF = 0x0a;
const CR = 0x0d;

export interface MixpanelCredentials {
  /** Service account username; absent for the legacy project API secret (deprecated by Mixpanel, retired 2027-03-03). */
  readonly username?: string;
  readonly secret: string;
}

/** A failure that retrying will not fix: bad request, credentials, plan. The message says what to do. */
export class MixpanelRequestError extends ConnectorError {
  readonly status: number;
  constructor(message: string, status: number, cause?: unknown) {
    super('permanent', message, cause === undefined ? undefined : { cause });
    this.name = 'MixpanelRequestError';
    this.status = status;
  }
}

/** A failure worth retrying (429, 5xx, network) before any byte of the body was consumed. */
export class MixpanelUnavailableError extends ConnectorError {
  readonly status?: number;
  readonly retryAfterMs?: number;
  constructor(message: string, status?: number, retryAfterMs?: number, cause?: unknown) {
    super('transient', message, cause === undefined ? undefined : { cause });
    this.name = 'MixpanelUnavailableError';
    if (status !== undefined) this.status = status;
    if (retryAfterMs !== undefined) this.retryAfterMs = retryAfterMs;
  }
}

/** The body ended before the export was complete: the window must be exported again, never committed. */
export class IncompleteExportError extends ConnectorError {
  readonly linesRead: number;
  constructor(message: string, linesRead: number, cause?: unknown) {
    super('transient', message, cause === undefined ? undefined : { cause });
    this.name = 'IncompleteExportError';
    this.linesRead = linesRead;
  }
}

export interface MixpanelClientOptions {
  readonly baseUrl: string;
  readonly projectId: string;
  readonly credentials: SecretReader<MixpanelCredentials>;
  /** Called before every HTTP attempt (the persisted query budget waits or refuses here). */
  readonly beforeRequest?: () => Promise<void>;
  readonly onRetry?: (info: { attempt: number; delayMs: number; reason: string }) => void;
  readonly retry?: RetryPolicy;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly deadlineMs?: () => number | undefined;
  /** Explains a "to_date cannot be later than today" answer (which zone the connector used). */
  readonly dateZone?: string;
}

export interface ExportRequest extends ExportQuery {
  readonly event?: readonly string[];
  readonly timeInMs?: boolean;
  readonly limit?: number;
}

/**
 * A batch of export lines as the bytes Mixpanel sent: line i is `bytes[starts[i], ends[i])` (no newline; empty lines
 * left out). Every line is followed by a newline in `bytes`, except the export's last line when the body does not end
 * with one.
 */
export interface LineBatch {
  readonly bytes: Buffer;
  readonly starts: readonly number[];
  readonly ends: readonly number[];
  /** The lines are well-formed UTF-8 (almost always): each line's bytes are exactly the UTF-8 of its text. */
  readonly utf8: boolean;
}

/**
 * Streams the export as batches of raw lines, one batch per decompressed chunk.
 * Batching keeps the per-line cost of async iteration off the hot path.
 */
export class MixpanelExportClient {
  readonly #o: MixpanelClientOptions;
  constructor(options: MixpanelClientOptions) {
    this.#o = options;
  }

  /** The URL of a query (without credentials): for logs and manifests. */
  url(q: ExportRequest): URL {
    const url = new URL(EXPORT_PATH, this.#o.baseUrl.endsWith('/') ? this.#o.baseUrl : `${this.#o.baseUrl}/`);
    url.pathname = url.pathname.replace(/\/+api\/2\.0\/export$/, EXPORT_PATH);
    url.searchParams.set('project_id', this.#o.projectId);
    url.searchParams.set('from_date', q.from_date);
    url.searchParams.set('to_date', q.to_date);
    if (q.where !== undefined) url.searchParams.set('where', q.where);
    if (q.event !== undefined) url.searchParams.set('event', JSON.stringify(q.event));
    if (q.timeInMs === true) url.searchParams.set('time_in_ms', 'true');
    if (q.limit !== undefined) url.searchParams.set('limit', String(q.limit));
    return url;
  }

  /** The export's lines as text (each line decoded from UTF-8 on its own; lines split at a byte, never in a character). */
  async *lines(q: ExportRequest): AsyncGenerator<string[]> {
    for await (const batch of this.lineBatches(q)) {
      const { bytes, starts, ends } = batch;
      const text: string[] = new Array<string>(starts.length);
      for (let i = 0; i < starts.length; i++) text[i] = bytes.toString('utf8', starts[i], ends[i]);
      yield text;
    }
  }

  /**
   * The export's lines as bytes, for a consumer that stages them verbatim: splitting at newline bytes needs no
   * decoding (UTF-8 never has a 0x0A byte inside a character), and a line's bytes can be written out as they came.
   */
  async *lineBatches(q: ExportRequest): AsyncGenerator<LineBatch> {
    const body = await this.#open(q);
    let linesRead = 0;
    // Bytes of a line that has not ended yet (it spans chunks).
    let pending: Buffer[] = [];
    try {
      for await (const chunk of body) {
        let bytes = chunk as Buffer;
        if (pending.length > 0) {
          pending.push(bytes);
          if (bytes.indexOf(LF) < 0) continue;
          bytes = Buffer.concat(pending);
          pending = [];
        }
        const starts: number[] = [];
        const ends: number[] = [];
        let start = 0;
        for (let end = bytes.indexOf(LF); end !== -1; start = end + 1, end = bytes.indexOf(LF, start)) {
          if (end === start || (end === start + 1 && bytes[start] === CR)) continue;
          if (end - start === TERMINATED_EARLY.length && bytes.toString('latin1', start, end) === TERMINATED_EARLY) {
            throw new IncompleteExportError(
              `Mixpanel ended the export with "${TERMINATED_EARLY}" after ${linesRead + starts.length} lines`,
              linesRead + starts.length,
            );
          }
          starts.push(start);
          ends.push(end);
        }
        if (start < bytes.length) pending.push(bytes.subarray(start));
        linesRead += starts.length;
        if (starts.length > 0) yield { bytes, starts, ends, utf8: isUtf8(bytes.subarray(0, start)) };
      }
    } catch (error) {
      if (error instanceof IncompleteExportError) throw error;
      throw new IncompleteExportError(
        `the export stream broke after ${linesRead} lines (${(error as Error).message}); the window will be exported again`,
        linesRead,
        error,
      );
    } finally {
      body.destroy();
    }
    const tail = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
    const text = tail.toString('utf8');
    if (text.trim() === TERMINATED_EARLY) {
      throw new IncompleteExportError(
        `Mixpanel ended the export with "${TERMINATED_EARLY}" after ${linesRead} lines`,
        linesRead,
      );
    }
    if (text.trim() !== '') yield { bytes: tail, starts: [0], ends: [tail.length], utf8: isUtf8(tail) };
  }

  /** Opens the response with bounded retries; returns the (decompressed) body once a 200 arrived. */
  async #open(q: ExportRequest): Promise<Readable> {
    let refreshed = false;
    const deadline = this.#o.deadlineMs?.();
    return withRetry(
      `Mixpanel export ${q.from_date}..${q.to_date} of project ${this.#o.projectId}`,
      async () => {
        await this.#o.beforeRequest?.();
        try {
          return await this.#request(q);
        } catch (error) {
          // A rotated secret: read it again once, then report the failure.
          if (
            error instanceof MixpanelRequestError &&
            (error.status === 401 || error.status === 403 || /authenticate/i.test(error.message)) &&
            !refreshed
          ) {
            refreshed = true;
            await this.#o.credentials.refresh();
            throw new MixpanelUnavailableError(
              'credentials refreshed after an authentication failure',
              error.status,
              0,
              error,
            );
          }
          throw error;
        }
      },
      {
        ...(this.#o.retry ? { policy: this.#o.retry } : {}),
        ...(this.#o.sleep ? { sleep: this.#o.sleep } : {}),
        ...(deadline !== undefined ? { deadlineMs: deadline } : {}),
        classify: classifyMixpanel,
        onRetry: (e) =>
          this.#o.onRetry?.({ attempt: e.attempt, delayMs: e.delayMs, reason: (e.error as Error).message }),
      },
    );
  }

  async #request(q: ExportRequest): Promise<Readable> {
    const creds = await this.#o.credentials.get();
    const url = this.url(q);
    const auth = Buffer.from(
      `${creds.username ?? creds.secret}:${creds.username === undefined ? '' : creds.secret}`,
    ).toString('base64');
    const transport = url.protocol === 'https:' ? https : http;
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = transport.request(url, {
        method: 'GET',
        headers: { authorization: `Basic ${auth}`, 'accept-encoding': 'gzip', accept: 'text/plain, application/json' },
        timeout: READ_TIMEOUT_MS,
      });
      req.on('response', resolve);
      req.on('timeout', () => req.destroy(new Error(`no data from Mixpanel for ${READ_TIMEOUT_MS / 1000} s`)));
      req.on('error', (error) =>
        reject(
          new MixpanelUnavailableError(`cannot reach ${url.origin}: ${error.message}`, undefined, undefined, error),
        ),
      );
      req.end();
    });
    const status = res.statusCode ?? 0;
    if (status !== 200) {
      const text = await readSmall(res);
      throw this.#statusError(status, text, res.headers['retry-after'], q);
    }
    const encoding = String(res.headers['content-encoding'] ?? '').toLowerCase();
    if (encoding === 'gzip') {
      const gunzip = createGunzip({ chunkSize: GUNZIP_CHUNK_BYTES });
      res.on('error', (error) => gunzip.destroy(error));
      res.on('aborted', () => gunzip.destroy(new Error('connection reset by Mixpanel mid-stream')));
      res.on('close', () => {
        if (!res.complete) gunzip.destroy(new Error('connection closed by Mixpanel mid-stream'));
      });
      return res.pipe(gunzip);
    }
    res.on('close', () => {
      if (!res.complete) res.destroy(new Error('connection closed by Mixpanel mid-stream'));
    });
    return res;
  }

  #statusError(status: number, body: string, retryAfter: string | string[] | undefined, q: ExportRequest): Error {
    const message = mixpanelMessage(body);
    const project = this.#o.projectId;
    if (status === 429 || status >= 500) {
      const wait = parseRetryAfter(Array.isArray(retryAfter) ? retryAfter[0] : retryAfter);
      return new MixpanelUnavailableError(`Mixpanel answered ${status}: ${message}`, status, wait);
    }
    if (/to_date cannot be later than today/i.test(message)) {
      return new MixpanelRequestError(
        `Mixpanel refused to_date=${q.to_date} as later than "today" in the project's date zone. The connector computed dates in ${this.#o.dateZone ?? 'UTC'}: ` +
          "for projects created before 2023 set MIXPANEL_LEGACY_LOCAL_TIME=true and MIXPANEL_PROJECT_TIMEZONE to the project's timezone; otherwise check the machine clock.",
        status,
      );
    }
    if (status === 401 || status === 403 || /authenticate/i.test(message)) {
      return new MixpanelRequestError(
        `Mixpanel rejected the credentials (${status}: ${message}). Check that the service account in the Mixpanel secret is valid and is a member of project ${project}, and that MIXPANEL_REGION matches the project's data residency.`,
        status,
      );
    }
    if (status === 402) {
      return new MixpanelRequestError(
        `Mixpanel answered 402 (${message}): the project's plan does not include the Raw Event Export API. Ask a Mixpanel organization owner to enable it (or upgrade the plan), then run the export again: nothing was written.`,
        status,
      );
    }
    return new MixpanelRequestError(
      `Mixpanel refused the export query (${status}: ${message}). Check MIXPANEL_PROJECT_ID=${project} and MIXPANEL_REGION (a project in another residency answers 400).`,
      status,
    );
  }
}

export function classifyMixpanel(error: unknown): Verdict {
  if (error instanceof MixpanelUnavailableError) {
    return error.retryAfterMs === undefined ? { retry: true } : { retry: true, retryAfterMs: error.retryAfterMs };
  }
  return { retry: false };
}

/** Mixpanel's error bodies are `{"request": "...", "error": "..."}` or plain text. */
function mixpanelMessage(body: string): string {
  try {
    const json = JSON.parse(body) as { error?: unknown };
    if (typeof json.error === 'string') return json.error;
  } catch {
    // plain text body
  }
  return body.trim().slice(0, 300) || '(empty body)';
}

async function readSmall(res: http.IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  let stream: Readable = res;
  if (String(res.headers['content-encoding'] ?? '').toLowerCase() === 'gzip') stream = res.pipe(createGunzip());
  try {
    for await (const chunk of stream) {
      size += (chunk as Buffer).length;
      if (size <= 64 * 1024) chunks.push(chunk as Buffer);
    }
  } catch {
    // an error body that breaks is still an error; keep what arrived
  }
  return Buffer.concat(chunks).toString('utf8');
}
