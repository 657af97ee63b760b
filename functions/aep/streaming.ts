/**
 * Streaming sink: sends already-mapped XDM records to an authenticated HTTP API streaming connection through the
 * DCS batch endpoint, as full as the 1 MB request limit allows, with bounded concurrency.
 *
 * Adobe, AdobeDocs/experience-platform.en help/ingestion/tutorials/streaming-multiple-messages.md:
 * - `POST https://dcs.adobedc.net/collection/batch/{CONNECTION_ID}` with `{"messages":[...]}`;
 * - the answer is 207 whether all, some or none were accepted, with one `responses` entry per message in order:
 *   `{"xactionId"}` or `{"statusCode","message"}`; "when attempting to resend the failed messages, you do not need to
 *   re-include" the accepted ones;
 * - 413 "when the total payload request is greater than 1MB"; 429 too many requests; 503 "retry at least 3 times using
 *   an exponential back-off strategy"; 401/403 on authenticated connections when the token is missing or expired.
 *
 * The hot path never parses a record: each message is the pre-serialised `json` concatenated into a fixed envelope.
 */
import { Buffer } from 'node:buffer';
import {
  DEFAULT_RETRY_POLICY,
  parseRetryAfter,
  RetriesExhaustedError,
  withRetry,
  type RetryPolicy,
  type Verdict,
} from '#common/retry';
import type { Log } from '#common/log';
import { AepHttpError, AepNetworkError, classifyAepFailure, httpErrorFrom } from './errors.ts';
import { authorizedFetch, type TokenSource } from './transport.ts';

/**
 * Largest request body we send. Adobe documents 413 above "1MB" without saying whether that is 10^6 or 2^20 bytes
 * (streaming-multiple-messages.md, response codes; streaming ingestion overview): we take the smaller.
 */
export const DCS_MAX_REQUEST_BYTES = 1_000_000;

/**
 * Adobe documents no cap on messages per request, only 1,000 requests/s and 10,000 messages/s per org
 * (help/ingestion/streaming-ingestion/overview.md, "Request per seconds (RPS) guidance"), so by default only bytes limit a request.
 */
export const DEFAULT_MAX_MESSAGES_PER_REQUEST = Number.POSITIVE_INFINITY;

/** Requests in flight per `send`; far below the 1,000 requests/s guardrail (streaming-ingestion/overview.md). */
export const DEFAULT_MAX_IN_FLIGHT = 4;

/** Content type of an XDM record in a message: `…;version={SCHEMA_VERSION}` (streaming-ingestion.yaml,
 * SchemaReference), here for the default schema version 1.0. */
export const XED_FULL_CONTENT_TYPE = 'application/vnd.adobe.xed-full+json;version=1.0';

/** `source.name` in every message header, so AEP monitoring shows where the data came from. */
export const DEFAULT_SOURCE_NAME = 'mixpanel-aep-connector';

const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

/** Per-message statuses DCS reports that are worth re-sending (the rest are permanent rejections). */
const RETRYABLE_MESSAGE_STATUSES = new Set([408, 429, 500, 502, 503, 504]);

const REQUEST_OPEN = '{"messages":[';
const REQUEST_CLOSE = ']}';
const REQUEST_OVERHEAD_BYTES = REQUEST_OPEN.length + REQUEST_CLOSE.length;
const REQUEST_OPEN_BYTES = Buffer.from(REQUEST_OPEN);
const REQUEST_CLOSE_BYTES = Buffer.from(REQUEST_CLOSE);
const COMMA = 0x2c;
/** Memory of one reusable request body: the largest request DCS takes. */
const BODY_BLOCK_BYTES = DCS_MAX_REQUEST_BYTES;

/**
 * One mapped record: its XDM `_id` and the serialised `xdmEntity` (a JSON object, produced by the mapper), as text or
 * already as its UTF-8 bytes (the forwarder's chunk arena: then nothing is encoded again).
 */
export interface SinkRecord {
  readonly id: string;
  readonly json: string | Uint8Array;
}

/** Where the records go. */
export interface StreamingTarget {
  /** The streaming connection URL `https://dcs.adobedc.net/collection/{id}` (`AEP_INLET_URL`); the batch endpoint is derived from it. */
  readonly inletUrl: string;
  readonly datasetId: string;
  /** The schema's full `$id`, used verbatim as `schemaRef.id`. */
  readonly schemaId: string;
  /** `...@AdobeOrg` of the connection; defaults to the org of the credential. */
  readonly orgId?: string;
  /** The HTTP API dataflow id, `header.flowId` of every message (required: streaming-ingestion.yaml messageHeader). */
  readonly flowId: string;
  /** Version in `schemaRef.contentType`. @default '1.0' */
  readonly schemaVersion?: string;
  /** @default DEFAULT_SOURCE_NAME */
  readonly sourceName?: string;
  readonly sandbox: string;
}

export interface RejectedRecord {
  readonly id: string;
  /** Adobe's message, or `record-too-large` when the record cannot fit in a request. */
  readonly reason: string;
  readonly status?: number;
}

export interface SendResult {
  /** Ids DCS accepted (it answered an `xactionId`), in input order. */
  readonly accepted: string[];
  /** Permanent failures, in input order: quarantine them with the reason. */
  readonly rejected: RejectedRecord[];
  /** Ids neither accepted nor rejected (deadline reached, or the run stopped): send them again later. */
  readonly unsent: string[];
  /**
   * Ids that were in a request whose fate is unknown (connection lost after sending, timeout, 502/504) and that were
   * then re-sent or left unsent: AEP may hold one more copy of them than `accepted` says.
   */
  readonly ambiguous: string[];
  /** DCS `batchId` of every request that got a multi-status answer (the xactionIds are `{batchId}:{n}`). */
  readonly aepIds: string[];
  /** Messages sent again after a retryable failure. */
  readonly retried: number;
  /** HTTP requests made to DCS, retries included. */
  readonly requests: number;
  /** Largest request body sent, in bytes. */
  readonly maxRequestBytes: number;
}

export interface StreamingSinkOptions {
  readonly target: StreamingTarget;
  readonly tokens: TokenSource;
  readonly fetch?: typeof fetch;
  /** @default DEFAULT_MAX_IN_FLIGHT */
  readonly maxInFlight?: number;
  /** @default DCS_MAX_REQUEST_BYTES (values above it are lowered to it) */
  readonly maxRequestBytes?: number;
  /** @default no cap (Adobe documents none) */
  readonly maxMessagesPerRequest?: number;
  /** Attempts per request, covering whole-request failures and per-message retryable failures. @default DEFAULT_RETRY_POLICY */
  readonly retry?: RetryPolicy;
  /** @default 30 s */
  readonly requestTimeoutMs?: number;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly random?: () => number;
  readonly log?: Log;
}

/**
 * The run stopped on a failure that waiting does not fix (or that outlasted the retry budget). `result` says what
 * happened to every record before it stopped: accepted ids must be recorded, unsent ones sent again later.
 */
export class StreamingDeliveryError extends Error {
  readonly result: SendResult;
  constructor(message: string, result: SendResult, cause: unknown) {
    super(message, { cause });
    this.name = 'StreamingDeliveryError';
    this.result = result;
  }
}

/** Some messages of a multi-status answer asked to be re-sent later (internal: drives the retry loop). */
class RetryableMessagesError extends Error {
  readonly retryAfterMs: number | undefined;
  constructor(count: number, status: number, message: string, retryAfterMs: number | undefined) {
    super(`${count} message(s) were answered ${status}${message === '' ? '' : ` (${message})`}`);
    this.name = 'RetryableMessagesError';
    this.retryAfterMs = retryAfterMs;
  }
}

/** The deadline passed between two requests of one batch (internal: ends the batch, leaving the rest unsent). */
class DeadlineReachedError extends Error {
  constructor() {
    super('deadline reached');
    this.name = 'DeadlineReachedError';
  }
}

const enum Outcome {
  Unsent = 0,
  Accepted = 1,
  Rejected = 2,
}

/** One message of a packed request: the record's index and its `json` as UTF-8, encoded once when it is packed. */
interface Item {
  readonly index: number;
  readonly json: Uint8Array;
}

/** The fixed parts of every message, as text and as the bytes the request body is assembled from. */
interface Envelope {
  readonly prefix: string;
  readonly suffix: string;
  readonly prefixBytes: Buffer;
  readonly suffixBytes: Buffer;
  readonly overheadBytes: number;
}

/** State of one packed request while it is being delivered (one per worker, never shared). */
interface Delivery {
  readonly ledger: Ledger;
  readonly pastDeadline: () => boolean;
  /** True once the first attempt failed: every message sent from then on counts as re-sent. */
  retrying: boolean;
  /** The first retryable per-message status of the latest answer, which makes the attempt fail as a whole. */
  retryable: { status: number; message: string; retryAfterMs: number | undefined } | undefined;
  /** Input index → the latest retryable per-message answer DCS gave for it. */
  readonly lastAnswer: Map<number, { status: number; message: string }>;
}

/** Per-`send` bookkeeping, indexed like the input records. */
class Ledger {
  readonly outcome: Uint8Array;
  readonly ambiguous: Uint8Array;
  readonly reasons = new Map<number, { reason: string; status?: number }>();
  readonly aepIds: string[] = [];
  retried = 0;
  requests = 0;
  maxRequestBytes = 0;

  constructor(readonly records: readonly SinkRecord[]) {
    this.outcome = new Uint8Array(records.length);
    this.ambiguous = new Uint8Array(records.length);
  }

  reject(index: number, reason: string, status?: number): void {
    this.outcome[index] = Outcome.Rejected;
    this.reasons.set(index, status === undefined ? { reason } : { reason, status });
  }

  result(): SendResult {
    const accepted: string[] = [];
    const rejected: RejectedRecord[] = [];
    const unsent: string[] = [];
    const ambiguous: string[] = [];
    for (let i = 0; i < this.records.length; i++) {
      const id = (this.records[i] as SinkRecord).id;
      const outcome = this.outcome[i];
      if (outcome === Outcome.Accepted) accepted.push(id);
      else if (outcome === Outcome.Rejected) rejected.push({ id, ...(this.reasons.get(i) ?? { reason: 'rejected' }) });
      else unsent.push(id);
      if (this.ambiguous[i] === 1 && outcome !== Outcome.Rejected) ambiguous.push(id);
    }
    return {
      accepted,
      rejected,
      unsent,
      ambiguous,
      aepIds: this.aepIds,
      retried: this.retried,
      requests: this.requests,
      maxRequestBytes: this.maxRequestBytes,
    };
  }
}

/** Derives the batch endpoint `…/collection/batch/{id}` from a connection URL `…/collection/{id}` (query kept). */
export function batchEndpointOf(inletUrl: string): string {
  const url = new URL(inletUrl);
  if (!/\/collection\/batch\/[^/]+\/?$/.test(url.pathname)) {
    const match = /\/collection\/([^/]+)\/?$/.exec(url.pathname);
    if (match === null) {
      throw new Error(
        `AEP_INLET_URL ${url.origin}${url.pathname} is not a streaming connection URL; expected https://dcs.adobedc.net/collection/{connectionId}.`,
      );
    }
    url.pathname = `${url.pathname.slice(0, match.index)}/collection/batch/${match[1]}`;
  }
  return url.toString();
}

/** Sends mapped records to a streaming connection. One instance per target; `send` may be called many times. */
export class StreamingSink {
  readonly #opts: StreamingSinkOptions;
  readonly #endpoint: string;
  readonly #connection: string;
  readonly #fetch: typeof fetch;
  readonly #now: () => number;
  readonly #policy: RetryPolicy;
  readonly #maxBytes: number;
  readonly #maxMessages: number;
  #envelope: Envelope | undefined;
  /**
   * Request bodies whose request is over (DCS answered and its answer was read), reused by later requests: each body
   * is ~1 MB and lives as long as its request, long enough to be promoted, so fresh ones piled up as external memory
   * until a full collection (measured: ~64 MB above the live set). At most one per request in flight.
   */
  readonly #freeBodies: Buffer[] = [];

  constructor(opts: StreamingSinkOptions) {
    if (opts.target.flowId.trim() === '') throw new Error('A streaming target needs the dataflow id (AEP_FLOW_ID)');
    this.#opts = opts;
    this.#endpoint = batchEndpointOf(opts.target.inletUrl);
    this.#connection = new URL(this.#endpoint).pathname.split('/').filter(Boolean).pop() ?? '';
    this.#fetch = opts.fetch ?? globalThis.fetch;
    this.#now = opts.now ?? Date.now;
    this.#policy = opts.retry ?? DEFAULT_RETRY_POLICY;
    this.#maxBytes = Math.min(opts.maxRequestBytes ?? DCS_MAX_REQUEST_BYTES, DCS_MAX_REQUEST_BYTES);
    this.#maxMessages = Math.max(1, opts.maxMessagesPerRequest ?? DEFAULT_MAX_MESSAGES_PER_REQUEST);
    if (this.#maxBytes <= REQUEST_OVERHEAD_BYTES) throw new Error(`maxRequestBytes ${this.#maxBytes} is too small for any message`);
  }

  /** The DCS batch endpoint this sink posts to. */
  get endpoint(): string {
    return this.#endpoint;
  }

  /**
   * Sends every record once, unless the deadline stops it first.
   *
   * @returns every input id in exactly one of `accepted`, `rejected`, `unsent`.
   * @throws StreamingDeliveryError when a failure cannot be waited out (bad connection id, dataset, schema, org,
   *   sandbox; a refused token; retries used up). Its `result` holds what was accepted before the stop.
   */
  async send(records: readonly SinkRecord[], opts: { deadlineMs?: number } = {}): Promise<SendResult> {
    const ledger = new Ledger(records);
    const deadlineMs = opts.deadlineMs;
    const pastDeadline = (): boolean => deadlineMs !== undefined && this.#now() >= deadlineMs;
    if (records.length === 0 || pastDeadline()) return ledger.result();

    let envelope: Envelope;
    try {
      envelope = await this.#getEnvelope();
    } catch (error) {
      throw new StreamingDeliveryError(
        `Streaming to connection ${this.#connection} could not start: ${sentence((error as Error).message)} Nothing was sent.`,
        ledger.result(),
        error,
      );
    }

    // Largest message that fits in a request alone.
    const maxMessageBytes = this.#maxBytes - REQUEST_OVERHEAD_BYTES;
    let cursor = 0;
    const nextBatch = (): Item[] | undefined => {
      const items: Item[] = [];
      let bytes = REQUEST_OVERHEAD_BYTES;
      while (cursor < records.length && items.length < this.#maxMessages) {
        const record = records[cursor] as SinkRecord;
        // Encoded once: its length packs the request, its bytes are copied into the body.
        const json = typeof record.json === 'string' ? Buffer.from(record.json, 'utf8') : record.json;
        const messageBytes = envelope.overheadBytes + json.length;
        if (messageBytes > maxMessageBytes) {
          ledger.reject(cursor, 'record-too-large');
          cursor++;
          continue;
        }
        const added = messageBytes + (items.length > 0 ? 1 : 0); // the comma between messages
        if (bytes + added > this.#maxBytes) break;
        items.push({ index: cursor, json });
        bytes += added;
        cursor++;
      }
      return items.length > 0 ? items : undefined;
    };

    let fatal: unknown;
    const worker = async (): Promise<void> => {
      while (fatal === undefined && !pastDeadline()) {
        const batch = nextBatch();
        if (batch === undefined) return;
        try {
          await this.#deliver(batch, ledger, deadlineMs, pastDeadline);
        } catch (error) {
          fatal ??= error;
        }
      }
    };
    const workers = Math.max(1, Math.min(this.#opts.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT, records.length));
    await Promise.all(Array.from({ length: workers }, worker));

    const result = ledger.result();
    if (fatal !== undefined) {
      throw new StreamingDeliveryError(
        `Streaming to connection ${this.#connection} stopped: ${sentence((fatal as Error).message)} ` +
          `${result.accepted.length} record(s) were accepted before the stop and ${result.unsent.length} were not sent; ` +
          'record the accepted ones and send the unsent ones again once the cause is fixed.',
        result,
        fatal,
      );
    }
    return result;
  }

  async #getEnvelope(): Promise<Envelope> {
    if (this.#envelope !== undefined) return this.#envelope;
    const { target } = this.#opts;
    const orgId = target.orgId ?? (await this.#opts.tokens.auth()).orgId;
    const contentType = target.schemaVersion === undefined
      ? XED_FULL_CONTENT_TYPE
      : `application/vnd.adobe.xed-full+json;version=${target.schemaVersion}`;
    const schemaRef = { id: target.schemaId, contentType };
    const header = {
      schemaRef,
      imsOrgId: orgId,
      datasetId: target.datasetId,
      flowId: target.flowId,
      source: { name: target.sourceName ?? DEFAULT_SOURCE_NAME },
    };
    const prefix = `{"header":${JSON.stringify(header)},"body":{"xdmMeta":{"schemaRef":${JSON.stringify(schemaRef)}},"xdmEntity":`;
    const suffix = '}}';
    const prefixBytes = Buffer.from(prefix, 'utf8');
    const suffixBytes = Buffer.from(suffix, 'utf8');
    this.#envelope = { prefix, suffix, prefixBytes, suffixBytes, overheadBytes: prefixBytes.length + suffixBytes.length };
    return this.#envelope;
  }

  /** Delivers one packed request, re-sending only what DCS asks to re-send, until every item has an outcome. */
  async #deliver(batch: Item[], ledger: Ledger, deadlineMs: number | undefined, pastDeadline: () => boolean): Promise<void> {
    let pending = batch;
    const delivery: Delivery = { ledger, pastDeadline, retrying: false, retryable: undefined, lastAnswer: new Map() };
    let lastVerdict: Verdict = { retry: false };
    const what = `DCS request to connection ${this.#connection}`;
    const classify = (error: unknown): Verdict => {
      if (error instanceof RetryableMessagesError) {
        lastVerdict = error.retryAfterMs === undefined ? { retry: true } : { retry: true, retryAfterMs: error.retryAfterMs };
      } else {
        lastVerdict = classifyAepFailure(error);
      }
      return lastVerdict;
    };
    try {
      await withRetry(
        what,
        async (attempt) => {
          delivery.retrying = attempt > 1;
          delivery.retryable = undefined;
          try {
            await this.#post(pending, delivery);
          } finally {
            pending = pending.filter((item) => ledger.outcome[item.index] === Outcome.Unsent);
          }
          // #post may have set it (TypeScript cannot see the mutation through the await).
          const retryable = delivery.retryable as Delivery['retryable'];
          if (pending.length > 0 && retryable !== undefined) {
            const { status, message, retryAfterMs } = retryable;
            throw new RetryableMessagesError(pending.length, status, message, retryAfterMs);
          }
        },
        {
          classify,
          policy: this.#policy,
          now: this.#now,
          ...(deadlineMs === undefined ? {} : { deadlineMs }),
          ...(this.#opts.sleep === undefined ? {} : { sleep: this.#opts.sleep }),
          ...(this.#opts.random === undefined ? {} : { random: this.#opts.random }),
          onRetry: ({ attempt, delayMs, error }) =>
            this.#opts.log?.warn('retrying DCS request', {
              connection: this.#connection,
              messages: pending.length,
              attempt,
              delayMs,
              reason: (error as Error).message,
            }),
        },
      );
    } catch (error) {
      if (error instanceof DeadlineReachedError) return;
      const verdict = lastVerdict as Verdict; // set by `classify` (TypeScript cannot see the closure's writes)
      if (
        error instanceof RetriesExhaustedError &&
        deadlineMs !== undefined &&
        error.attempts < this.#policy.maxAttempts &&
        verdict.retry &&
        (verdict.retryAfterMs ?? 0) <= this.#policy.maxRetryAfterMs
      ) {
        // The next wait would cross the deadline: what is still pending stays unsent for the next run.
        return;
      }
      if (error instanceof RetriesExhaustedError && error.cause instanceof RetryableMessagesError) {
        // Adobe describes a per-message 500 as "Error in processing payload … did not match the XDM definition":
        // once retries have not cured it, it is this record's problem, so it is rejected with Adobe's reason rather
        // than stopping the run. 429/502/503/504 are about capacity: those records stay unsent and the run stops.
        for (const item of pending) {
          const answer = delivery.lastAnswer.get(item.index);
          if (answer?.status === 500 && ledger.outcome[item.index] === Outcome.Unsent) {
            ledger.reject(item.index, `${answer.message || 'DCS answered 500'} (still failing after ${error.attempts} attempts)`, 500);
          }
        }
        if (pending.every((item) => ledger.outcome[item.index] !== Outcome.Unsent)) return;
      }
      throw error;
    }
  }

  /**
   * One HTTP request for `items` (split in two on 413). Records accepted/rejected outcomes in the ledger as soon as
   * they are known, so a later failure never loses them; items left `Unsent` are what the caller re-sends.
   */
  async #post(items: Item[], delivery: Delivery): Promise<void> {
    const { ledger } = delivery;
    // Never start a request after the deadline (in-flight ones finish; the rest stays unsent).
    if (delivery.pastDeadline()) throw new DeadlineReachedError();
    const body = requestBody(items, this.#envelope!, this.#freeBodies.pop()); // envelope: set by send() before any request is packed
    if (body.length > this.#maxBytes && items.length > 1) {
      // Cannot happen when packing counted right; splitting keeps the limit a hard guarantee anyway.
      await this.#split(items, delivery);
      return;
    }
    const what = `DCS request to connection ${this.#connection} (${items.length} messages, ${body.length} bytes)`;
    ledger.requests++;
    if (delivery.retrying) ledger.retried += items.length;
    ledger.maxRequestBytes = Math.max(ledger.maxRequestBytes, body.length);
    let response: Response;
    try {
      response = await authorizedFetch(
        {
          tokens: this.#opts.tokens,
          sandbox: this.#opts.target.sandbox,
          fetch: this.#fetch,
          timeoutMs: this.#opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
          onTokenRefused: (status) =>
            this.#opts.log?.warn('DCS refused the access token; renewing it and retrying once', { status }),
        },
        what,
        this.#endpoint,
        (headers) => ({
          method: 'POST',
          headers: { ...headers, 'content-type': 'application/json', accept: 'application/json', 'content-length': String(body.length) },
          // As a one-chunk stream: fetch copies a byte-array body first (the Fetch standard's "extract a body"), a
          // second megabyte per request that outlived young-generation collections; a stream is written as it is.
          // The explicit length keeps it one plain (not chunked) request.
          body: oneChunkStream(body),
          duplex: 'half',
        }),
      );
    } catch (error) {
      if (error instanceof AepNetworkError && error.mayHaveArrived) this.#markAmbiguous(items, ledger);
      throw error;
    }

    if (response.status === 207 || response.status === 200) {
      await this.#readMultiStatus(response, items, delivery, what);
      // The request is complete (its answer is read): its body's memory can carry the next one.
      if (body.buffer.byteLength === BODY_BLOCK_BYTES && body.byteOffset === 0) this.#freeBodies.push(Buffer.from(body.buffer, 0, BODY_BLOCK_BYTES));
      return;
    }
    if (response.status === 413) {
      await response.arrayBuffer().catch(() => undefined);
      if (items.length === 1) {
        ledger.reject((items[0] as Item).index, 'record-too-large', 413);
        return;
      }
      this.#opts.log?.warn('DCS answered 413; splitting the request', { messages: items.length, bytes: body.length });
      await this.#split(items, delivery);
      return;
    }
    const error = await httpErrorFrom(response, {
      what,
      service: 'dcs',
      hint: this.#hint(response.status),
      nowMs: this.#now(),
    });
    if (error.ambiguous) this.#markAmbiguous(items, ledger);
    throw error;
  }

  async #split(items: Item[], delivery: Delivery): Promise<void> {
    const half = Math.ceil(items.length / 2);
    await this.#post(items.slice(0, half), delivery);
    await this.#post(items.slice(half), delivery);
  }

  async #readMultiStatus(response: Response, items: Item[], delivery: Delivery, what: string): Promise<void> {
    const { ledger } = delivery;
    let parsed: { batchId?: unknown; responses?: unknown };
    try {
      parsed = (await response.json()) as typeof parsed;
    } catch (error) {
      // DCS processed the request but we cannot read which messages it took: never guess, never re-send blindly.
      this.#markAmbiguous(items, ledger);
      throw new AepHttpError({
        what,
        service: 'dcs',
        status: response.status,
        adobeMessage: `unreadable multi-status body (${(error as Error).message})`,
        hint: 'The outcome of these messages is unknown; check the dataset in AEP before sending them again.',
      });
    }
    if (typeof parsed.batchId === 'string') ledger.aepIds.push(parsed.batchId);
    const entries = Array.isArray(parsed.responses) ? (parsed.responses as unknown[]) : [];
    if (entries.length !== items.length) {
      this.#markAmbiguous(items, ledger);
      throw new AepHttpError({
        what,
        service: 'dcs',
        status: response.status,
        adobeMessage: `multi-status answer has ${entries.length} entries for ${items.length} messages`,
        hint: 'The outcome of these messages is unknown; check the dataset in AEP before sending them again.',
      });
    }
    const retryAfter = response.headers.get('retry-after');
    for (let i = 0; i < items.length; i++) {
      const item = items[i] as Item;
      const entry = (entries[i] ?? {}) as { xactionId?: unknown; statusCode?: unknown; message?: unknown };
      if (typeof entry.xactionId === 'string' && entry.xactionId !== '') {
        ledger.outcome[item.index] = Outcome.Accepted;
        continue;
      }
      const status = typeof entry.statusCode === 'number' ? entry.statusCode : Number(entry.statusCode);
      const message = typeof entry.message === 'string' ? entry.message : '';
      if (RETRYABLE_MESSAGE_STATUSES.has(status)) {
        delivery.lastAnswer.set(item.index, { status, message });
        delivery.retryable ??= { status, message, retryAfterMs: parseRetryAfter(retryAfter, this.#now()) };
        continue;
      }
      ledger.reject(
        item.index,
        message !== '' ? message : `DCS answered ${Number.isFinite(status) ? status : 'without an xactionId'}`,
        ...(Number.isFinite(status) ? [status] : []),
      );
    }
  }

  #markAmbiguous(items: Item[], ledger: Ledger): void {
    for (const item of items) ledger.ambiguous[item.index] = 1;
  }

  #hint(status: number): string {
    const t = this.#opts.target;
    switch (status) {
      case 400:
        return `DCS refused the whole request as malformed: check AEP_SCHEMA_ID (${t.schemaId}), AEP_DATASET_ID (${t.datasetId}) and the org id of the credential.`;
      case 401:
      case 403:
        return `The access token was refused even after renewing it: check the credential's org (x-gw-ims-org-id), that it may write to sandbox "${t.sandbox}" (AEP_SANDBOX), and that the connection in AEP_INLET_URL belongs to that org.`;
      case 404:
        return `No such streaming connection: check the connection id in AEP_INLET_URL (${this.#connection}).`;
      case 408:
      case 429:
      case 500:
      case 502:
      case 503:
      case 504:
        return 'DCS is throttling or unavailable; the records not accepted can be sent again later.';
      default:
        return `Check AEP_INLET_URL (connection ${this.#connection}), AEP_DATASET_ID, AEP_SCHEMA_ID, AEP_SANDBOX and the credential's org.`;
    }
  }
}

/**
 * `{"messages":[m1,m2,…]}` with each message `prefix + json + suffix`, copied straight from bytes: the same body as
 * encoding the joined text, without building that text (one copy of each record instead of three).
 */
function requestBody(items: readonly Item[], envelope: Envelope, reuse: Buffer | undefined): Buffer {
  const { prefixBytes, suffixBytes } = envelope;
  let length = REQUEST_OPEN_BYTES.length + REQUEST_CLOSE_BYTES.length + Math.max(0, items.length - 1);
  for (const item of items) length += prefixBytes.length + item.json.length + suffixBytes.length;
  // Bodies that fit a block are written into one (reused, or new and reusable later); a larger one (only ever to be
  // split) gets its own memory.
  const body = length > BODY_BLOCK_BYTES ? Buffer.allocUnsafe(length) : (reuse ?? Buffer.allocUnsafeSlow(BODY_BLOCK_BYTES)).subarray(0, length);
  let at = REQUEST_OPEN_BYTES.copy(body, 0);
  for (let i = 0; i < items.length; i++) {
    if (i > 0) body[at++] = COMMA;
    at += prefixBytes.copy(body, at);
    const json = (items[i] as Item).json;
    body.set(json, at);
    at += json.length;
    at += suffixBytes.copy(body, at);
  }
  REQUEST_CLOSE_BYTES.copy(body, at);
  return body;
}

/** A request body stream of exactly `bytes` (opened anew for every attempt). */
function oneChunkStream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
}

/** Ends `text` with a full stop so the next sentence of an error message reads right. */
function sentence(text: string): string {
  const trimmed = text.trim();
  return /[.!?]$/.test(trimmed) ? trimmed : `${trimmed}.`;
}
