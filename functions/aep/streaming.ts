/**
 * Streaming sink: sends already-mapped XDM records to an authenticated HTTP API streaming connection through the
 * DCS batch endpoint, as full as the 1 MB request limit allows, with bounded concurrency. Packing the requests is in
 * streaming-pack.ts, reading DCS answers in streaming-answer.ts; this module sends, retries and keeps the deadline.
 * Just over 400 lines: the retry rules, the deadline and the in-flight bookkeeping they share read as one unit.
 *
 * Adobe, AdobeDocs/experience-platform.en help/ingestion/tutorials/streaming-multiple-messages.md:
 * - `POST https://dcs.adobedc.net/collection/batch/{CONNECTION_ID}` with `{"messages":[...]}`;
 * - the answer is 207 whether all, some or none were accepted, with one `responses` entry per message in order:
 *   `{"xactionId"}` or `{"statusCode","message"}`; "when attempting to resend the failed messages, you do not need to
 *   re-include" the accepted ones;
 * - 413 "when the total payload request is greater than 1MB"; 429 too many requests; 503 "retry at least 3 times using
 *   an exponential back-off strategy"; 401/403 on authenticated connections when the token is missing or expired.
 */
import {
  DEFAULT_RETRY_POLICY,
  RetriesExhaustedError,
  type RetryPolicy,
  sleep,
  type Verdict,
  withRetry,
} from '#common/retry';
import type { Log } from '#common/log';
import { ConnectorError, kindFromCause } from '#common/errors';
import {
  AepNetworkError,
  classifyAepFailure,
  type EnvelopeFault,
  envelopeFault,
  httpErrorFrom,
  PlatformConfigurationError,
} from './errors.ts';
import { TokenBucket } from './rate-limit.ts';
import { authorizedFetch, type TokenSource } from './transport.ts';
import { type Delivery, Ledger, readMultiStatus, type SendResult } from './streaming-answer.ts';
import {
  BodyPool,
  DCS_MAX_REQUEST_BYTES,
  DEFAULT_MAX_MESSAGES_PER_REQUEST,
  type Envelope,
  envelopeFor,
  type Item,
  oneChunkStream,
  REQUEST_OVERHEAD_BYTES,
  RequestPacker,
  type SinkRecord,
  type StreamingTarget,
} from './streaming-pack.ts';

export type { RejectedRecord, SendResult } from './streaming-answer.ts';
export {
  DCS_MAX_REQUEST_BYTES,
  DEFAULT_MAX_MESSAGES_PER_REQUEST,
  DEFAULT_SOURCE_NAME,
  type SinkRecord,
  type StreamingTarget,
  XED_FULL_CONTENT_TYPE,
} from './streaming-pack.ts';

/** Requests in flight per `send`; far below the 1,000 requests/s guardrail (streaming-ingestion/overview.md). */
export const DEFAULT_MAX_IN_FLIGHT = 4;

const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;

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
  /**
   * Most messages sent per second, across every request of this sink (a token bucket): Real-Time Customer Profile's
   * streaming throughput when the dataset is enabled for Profile. @default no cap
   */
  readonly maxRecordsPerSecond?: number;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly random?: () => number;
  readonly log?: Log;
}

/**
 * The run stopped on a failure that waiting does not fix (or that outlasted the retry budget). `result` says what
 * happened to every record before it stopped: accepted ids must be recorded, unsent ones sent again later.
 */
export class StreamingDeliveryError extends ConnectorError {
  readonly result: SendResult;
  constructor(message: string, result: SendResult, cause: unknown) {
    super(kindFromCause(cause), message, { cause });
    this.name = 'StreamingDeliveryError';
    this.result = result;
  }
}

/** Some messages of a multi-status answer asked to be re-sent later (internal: drives the retry loop). */
class RetryableMessagesError extends ConnectorError {
  readonly retryAfterMs: number | undefined;
  constructor(count: number, status: number, message: string, retryAfterMs: number | undefined) {
    super('transient', `${count} message(s) were answered ${status}${message === '' ? '' : ` (${message})`}`);
    this.name = 'RetryableMessagesError';
    this.retryAfterMs = retryAfterMs;
  }
}

/** The deadline passed between two requests of one batch (internal: ends the batch, leaving the rest unsent). */
class DeadlineReachedError extends ConnectorError {
  constructor() {
    super('transient', 'deadline reached');
    this.name = 'DeadlineReachedError';
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
  /** Request bodies reused once their request is over (see BodyPool). */
  readonly #bodies = new BodyPool();
  readonly #rate: TokenBucket | undefined;
  readonly #sleep: (ms: number) => Promise<void>;

  constructor(opts: StreamingSinkOptions) {
    if (opts.target.flowId.trim() === '') throw new Error('A streaming target needs the dataflow id (AEP_FLOW_ID)');
    this.#opts = opts;
    this.#endpoint = batchEndpointOf(opts.target.inletUrl);
    this.#connection = new URL(this.#endpoint).pathname.split('/').filter(Boolean).pop() ?? '';
    this.#fetch = opts.fetch ?? globalThis.fetch;
    this.#now = opts.now ?? Date.now;
    this.#policy = opts.retry ?? DEFAULT_RETRY_POLICY;
    this.#sleep = opts.sleep ?? sleep;
    this.#rate =
      opts.maxRecordsPerSecond === undefined
        ? undefined
        : new TokenBucket({ ratePerSecond: opts.maxRecordsPerSecond, now: this.#now, sleep: this.#sleep });
    this.#maxBytes = Math.min(opts.maxRequestBytes ?? DCS_MAX_REQUEST_BYTES, DCS_MAX_REQUEST_BYTES);
    this.#maxMessages = Math.max(1, opts.maxMessagesPerRequest ?? DEFAULT_MAX_MESSAGES_PER_REQUEST);
    if (this.#maxBytes <= REQUEST_OVERHEAD_BYTES)
      throw new Error(`maxRequestBytes ${this.#maxBytes} is too small for any message`);
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
   *   sandbox; a refused token; retries used up). Its `result` holds what was accepted before the stop; its `cause` is
   *   a PlatformConfigurationError when Platform refused the request, or every message of it, for a configuration
   *   reason (then no record of that request is rejected).
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

    const packer = new RequestPacker(records, envelope, ledger, this.#maxBytes, this.#maxMessages);

    let fatal: unknown;
    const worker = async (): Promise<void> => {
      while (fatal === undefined && !pastDeadline()) {
        const batch = packer.next();
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
    this.#envelope = envelopeFor(target, orgId);
    return this.#envelope;
  }

  /** Delivers one packed request, re-sending only what DCS asks to re-send, until every item has an outcome. */
  async #deliver(
    batch: Item[],
    ledger: Ledger,
    deadlineMs: number | undefined,
    pastDeadline: () => boolean,
  ): Promise<void> {
    let pending = batch;
    const delivery: Delivery = {
      ledger,
      pastDeadline,
      deadlineMs,
      retrying: false,
      retryable: undefined,
      lastAnswer: new Map(),
    };
    let lastVerdict: Verdict = { retry: false };
    const what = `DCS request to connection ${this.#connection}`;
    const classify = (error: unknown): Verdict => {
      if (error instanceof RetryableMessagesError) {
        lastVerdict =
          error.retryAfterMs === undefined ? { retry: true } : { retry: true, retryAfterMs: error.retryAfterMs };
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
            pending = pending.filter((item) => ledger.isUnsent(item.index));
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
          if (answer?.status === 500 && ledger.isUnsent(item.index)) {
            ledger.reject(
              item.index,
              `${answer.message || 'DCS answered 500'} (still failing after ${error.attempts} attempts)`,
              500,
            );
          }
        }
        if (pending.every((item) => !ledger.isUnsent(item.index))) return;
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
    // The envelope is set by send() before any request is packed.
    const body = this.#bodies.body(items, this.#envelope!);
    if (body.length > this.#maxBytes && items.length > 1) {
      // Cannot happen when packing counted right; splitting keeps the limit a hard guarantee anyway.
      await this.#split(items, delivery);
      return;
    }
    // Profile's throughput: wait for the rate, unless that wait reaches the deadline (then the items stay unsent).
    if (this.#rate !== undefined && !(await this.#rate.take(items.length, delivery.deadlineMs))) {
      throw new DeadlineReachedError();
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
          headers: {
            ...headers,
            'content-type': 'application/json',
            accept: 'application/json',
            'content-length': String(body.length),
          },
          // As a one-chunk stream: fetch copies a byte-array body first (the Fetch standard's "extract a body"), a
          // second megabyte per request that outlived young-generation collections; a stream is written as it is.
          // The explicit length keeps it one plain (not chunked) request.
          body: oneChunkStream(body),
          duplex: 'half',
        }),
      );
    } catch (error) {
      if (error instanceof AepNetworkError && error.mayHaveArrived) ledger.markAmbiguous(items);
      throw error;
    }

    if (response.status === 207 || response.status === 200) {
      await readMultiStatus(response, items, delivery, what, this.#now);
      // The request is complete (its answer is read): its body's memory can carry the next one.
      this.#bodies.release(body);
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
    if (error.ambiguous) ledger.markAmbiguous(items);
    const fault = wholeRequestFault(error.status, error.adobeMessage);
    if (fault !== undefined) {
      throw new PlatformConfigurationError({
        what,
        fault,
        status: error.status,
        adobeMessage: error.adobeMessage,
        cause: error,
      });
    }
    throw error;
  }

  async #split(items: Item[], delivery: Delivery): Promise<void> {
    const half = Math.ceil(items.length / 2);
    await this.#post(items.slice(0, half), delivery);
    await this.#post(items.slice(half), delivery);
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
 * The configuration fault behind a refused request: 401/403 once the renewed token is refused too (auth or sandbox),
 * 404 for an unknown connection (streaming-multiple-messages.md, response codes; streaming-ingestion.yaml), and 400
 * when DCS names an envelope reason. Any other 400 (an unreadable body) is the connector's own fault.
 */
function wholeRequestFault(status: number, adobeMessage: string): EnvelopeFault | undefined {
  if (status === 404) return 'connection';
  if (status === 401 || status === 403) return envelopeFault(adobeMessage) === 'sandbox' ? 'sandbox' : 'auth';
  if (status === 400) return envelopeFault(adobeMessage);
  return undefined;
}

/** Ends `text` with a full stop so the next sentence of an error message reads right. */
function sentence(text: string): string {
  const trimmed = text.trim();
  return /[.!?]$/.test(trimmed) ? trimmed : `${trimmed}.`;
}
