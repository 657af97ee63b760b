/**
 * Batch sink: the Batch Ingestion API for large volumes (create a batch, upload JSON Lines files, complete it) and the
 * Catalog for its status.
 *
 * Adobe, AdobeDocs/experience-platform.en help/ingestion/batch-ingestion/api-overview.md and
 * AdobeDocs/experience-platform-apis static/swagger-specs/batch-ingestion.yaml:
 * - `POST /data/foundation/import/batches` `{"datasetId","inputFormat":{"format":"json"}}` → 201 `{"id",...}`;
 * - `PUT /data/foundation/import/batches/{batchId}/datasets/{datasetId}/files/{filePath}` (`application/octet-stream`)
 *   "creates or updates the entire request stream as the file bytes … and is idempotent", below a 256MB threshold;
 * - `POST /data/foundation/import/batches/{batchId}?action=COMPLETE` (or `ABORT`);
 * - status: `GET /data/foundation/catalog/batches/{batchId}` → `{"<batchId>": {"status","metrics","errors",...}}`.
 */
import { Buffer } from 'node:buffer';
import { DEFAULT_RETRY_POLICY, withRetry, type RetryPolicy, type Verdict } from '#common/retry';
import type { Log } from '#common/log';
import { ConnectorError } from '#common/errors';
import { AepHttpError, classifyAepFailure, httpErrorFrom, type AepService } from './errors.ts';
import { authorizedFetch, type TokenSource } from './transport.ts';
import { type BatchFileBody, bodySource } from './batch-body.ts';
import { type BatchStatus, parseBatchStatus } from './batch-status.ts';

export type { BatchFileBody } from './batch-body.ts';
export type { BatchErrorEntry, BatchStatus } from './batch-status.ts';

/**
 * Largest file one `PUT` may carry: batch-ingestion.yaml says "there is currently a size threshold of 256MB. If the file
 * is larger than that, you **must** use the large file upload mechanism". Adobe counts its other byte limits in decimal
 * (PATCH "0-512000000 bytes"), so we take 256 × 10^6, the smaller reading.
 */
export const MAX_SMALL_FILE_BYTES = 256_000_000;

const IMPORT_PATH = '/data/foundation/import/batches';
const CATALOG_PATH = '/data/foundation/catalog/batches';
const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
/** A 256 MB upload at a modest 5 MB/s takes ~50 s; leave room, but stay inside a 15-minute Lambda. */
const DEFAULT_UPLOAD_TIMEOUT_MS = 10 * 60_000;

export interface BatchTarget {
  /** `AEP_PLATFORM_URL`, e.g. `https://platform.adobe.io`. */
  readonly platformUrl: string;
  readonly datasetId: string;
  readonly sandbox: string;
}

export interface CreateBatchOptions {
  /**
   * Partial batch ingestion (AdobeDocs/experience-platform.en help/ingestion/batch-ingestion/partial.md): let Platform
   * generate detailed error messages for the batch.
   */
  readonly enableErrorDiagnostics?: boolean;
  /** Percentage of bad rows tolerated before the whole batch fails (partial.md); implies partial ingestion. */
  readonly partialIngestionPercent?: number;
  /** Client batch id "expected to be unique within your organization" (batch-ingestion.yaml `IngestBatch.externalId`). */
  readonly externalId?: string;
  readonly tags?: Readonly<Record<string, readonly string[]>>;
}

export interface UploadOptions {
  /** Byte size, when known: sent as `Content-Length` and checked against {@link MAX_SMALL_FILE_BYTES} before sending. */
  readonly sizeBytes?: number;
}

export interface BatchSinkOptions {
  readonly target: BatchTarget;
  readonly tokens: TokenSource;
  readonly fetch?: typeof fetch;
  /** @default DEFAULT_RETRY_POLICY */
  readonly retry?: RetryPolicy;
  /** Per request except uploads. @default 60 s */
  readonly requestTimeoutMs?: number;
  /** Per file upload. @default 10 minutes */
  readonly uploadTimeoutMs?: number;
  /** Largest file accepted by {@link BatchSink.uploadFile}; can only be lowered. @default MAX_SMALL_FILE_BYTES */
  readonly maxFileBytes?: number;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly random?: () => number;
  readonly log?: Log;
}

/** The file is bigger than one `PUT` may carry: split it (the caller writes several files into the batch). */
export class BatchFileTooLargeError extends ConnectorError {
  readonly limitBytes: number;
  constructor(name: string, limitBytes: number, sizeBytes?: number) {
    const size = sizeBytes === undefined ? 'more than' : `${sizeBytes} bytes, more than`;
    super(
      'permanent',
      `Batch file ${name} is ${size} the ${limitBytes}-byte limit of a single upload (batch-ingestion.yaml, 256MB threshold); split it into several files of the same batch.`,
    );
    this.name = 'BatchFileTooLargeError';
    this.limitBytes = limitBytes;
  }
}

/** A failed upload whose body was a one-shot stream that was already read, so it cannot be sent again. */
export class BatchBodyNotReplayableError extends ConnectorError {
  constructor(name: string, cause: unknown) {
    super(
      'permanent',
      `Upload of batch file ${name} failed after its one-shot stream was read, so it cannot be retried: ${(cause as Error)?.message ?? String(cause)} ` +
        'Pass a function that re-opens the stream (e.g. re-reads the S3 object) to let the upload be retried.',
      { cause },
    );
    this.name = 'BatchBodyNotReplayableError';
  }
}

/** Creates, fills and completes batches of one dataset. */
export class BatchSink {
  readonly #opts: BatchSinkOptions;
  readonly #base: string;
  readonly #fetch: typeof fetch;
  readonly #now: () => number;
  readonly #maxFileBytes: number;

  constructor(opts: BatchSinkOptions) {
    this.#opts = opts;
    this.#maxFileBytes = Math.min(opts.maxFileBytes ?? MAX_SMALL_FILE_BYTES, MAX_SMALL_FILE_BYTES);
    this.#base = opts.target.platformUrl.replace(/\/+$/, '');
    this.#fetch = opts.fetch ?? globalThis.fetch;
    this.#now = opts.now ?? Date.now;
  }

  /**
   * Creates a batch for the dataset, JSON (one record per line) as input format.
   * Not idempotent: a retry after a lost answer can leave an empty batch behind, which Platform never promotes.
   * @returns the batch id.
   */
  async createBatch(opts: CreateBatchOptions = {}): Promise<string> {
    const { datasetId } = this.#opts.target;
    const body = JSON.stringify({
      datasetId,
      inputFormat: { format: 'json' },
      ...(opts.enableErrorDiagnostics === undefined ? {} : { enableErrorDiagnostics: opts.enableErrorDiagnostics }),
      ...(opts.partialIngestionPercent === undefined ? {} : { partialIngestionPercent: opts.partialIngestionPercent }),
      ...(opts.externalId === undefined ? {} : { externalId: opts.externalId }),
      ...(opts.tags === undefined ? {} : { tags: opts.tags }),
    });
    const what = `create batch for dataset ${datasetId}`;
    const created = await this.#call(what, 'batch', `${this.#base}${IMPORT_PATH}`, () => ({
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body,
    }));
    const id = (created as { id?: unknown }).id;
    if (typeof id !== 'string' || id === '') {
      throw new AepHttpError({
        what,
        service: 'batch',
        status: 201,
        adobeMessage: 'answer has no batch id',
        hint: 'Check AEP_PLATFORM_URL points at the Platform API host.',
      });
    }
    this.#opts.log?.info('created AEP batch', { batchId: id, datasetId });
    return id;
  }

  /**
   * Uploads one file into the batch with a single streamed `PUT` (the body is never buffered whole). Re-uploading the
   * same name replaces the file, so retries never double records.
   * @throws BatchFileTooLargeError above {@link MAX_SMALL_FILE_BYTES} or `maxFileBytes` (checked up front when the size is known,
   *   otherwise while streaming, aborting the request).
   */
  async uploadFile(
    batchId: string,
    name: string,
    body: BatchFileBody,
    opts: UploadOptions = {},
  ): Promise<{ bytes: number }> {
    if (name === '' || name.split('/').some((segment) => segment === '' || segment === '.' || segment === '..')) {
      throw new Error(`Batch file name "${name}" is not a valid relative path.`);
    }
    const source = bodySource(body);
    const knownSize = opts.sizeBytes ?? source.size;
    const limit = this.#maxFileBytes;
    if (knownSize !== undefined && knownSize > limit) {
      throw new BatchFileTooLargeError(name, limit, knownSize);
    }
    const { datasetId } = this.#opts.target;
    const filePath = name.split('/').map(encodeURIComponent).join('/');
    const url = `${this.#base}${IMPORT_PATH}/${encodeURIComponent(batchId)}/datasets/${encodeURIComponent(datasetId)}/files/${filePath}`;
    const what = `upload of ${name} to batch ${batchId}`;
    let sent = 0;
    let tooLarge: BatchFileTooLargeError | undefined;
    await this.#call(
      what,
      'batch',
      url,
      () => {
        const opened = source.open();
        const headers: Record<string, string> = { 'content-type': 'application/octet-stream' };
        if (knownSize !== undefined) headers['content-length'] = String(knownSize);
        if (opened instanceof Uint8Array) {
          sent = opened.length;
          return { method: 'PUT', headers, body: opened };
        }
        sent = 0;
        const iterator = opened[Symbol.asyncIterator]();
        const stream = new ReadableStream<Uint8Array>({
          async pull(controller) {
            try {
              const next = await iterator.next();
              if (next.done === true) {
                controller.close();
                return;
              }
              const chunk = typeof next.value === 'string' ? Buffer.from(next.value, 'utf8') : next.value;
              sent += chunk.length;
              if (sent > limit) {
                tooLarge = new BatchFileTooLargeError(name, limit);
                controller.error(tooLarge);
                await iterator.return?.();
                return;
              }
              controller.enqueue(chunk);
            } catch (error) {
              controller.error(error);
            }
          },
          async cancel() {
            await iterator.return?.();
          },
        });
        return { method: 'PUT', headers, body: stream, duplex: 'half' } as RequestInit;
      },
      {
        timeoutMs: this.#opts.uploadTimeoutMs ?? DEFAULT_UPLOAD_TIMEOUT_MS,
        rethrow: (error) => {
          if (tooLarge !== undefined) return tooLarge;
          if (!source.replayable && source.opened > 0 && classifyAepFailure(error).retry) {
            return new BatchBodyNotReplayableError(name, error);
          }
          return undefined;
        },
      },
    );
    this.#opts.log?.info('uploaded AEP batch file', { batchId, name, bytes: sent });
    return { bytes: sent };
  }

  /**
   * Signals that every file is uploaded, so Platform promotes the batch. Safe to call again: when a retry is refused
   * because the first call did go through, the Catalog status decides (anything but `loading` means completed).
   */
  async completeBatch(batchId: string): Promise<void> {
    const what = `complete batch ${batchId}`;
    let attempts = 0;
    try {
      await this.#call(
        what,
        'batch',
        `${this.#base}${IMPORT_PATH}/${encodeURIComponent(batchId)}?action=COMPLETE`,
        () => {
          attempts++;
          return { method: 'POST', headers: { accept: 'application/json' } };
        },
      );
    } catch (error) {
      if (attempts > 1 && error instanceof AepHttpError && error.status >= 400 && error.status < 500) {
        const status = await this.batchStatus(batchId);
        if (status.status !== 'loading') return;
      }
      throw error;
    }
    this.#opts.log?.info('completed AEP batch', { batchId });
  }

  /** Abandons a batch (e.g. when its files cannot all be uploaded), so it is never promoted half-filled. */
  async abortBatch(batchId: string): Promise<void> {
    await this.#call(
      `abort batch ${batchId}`,
      'batch',
      `${this.#base}${IMPORT_PATH}/${encodeURIComponent(batchId)}?action=ABORT`,
      () => ({ method: 'POST', headers: { accept: 'application/json' } }),
    );
  }

  /** The batch as the Catalog sees it. */
  async batchStatus(batchId: string): Promise<BatchStatus> {
    const what = `status of batch ${batchId}`;
    const answer = await this.#call(
      what,
      'catalog',
      `${this.#base}${CATALOG_PATH}/${encodeURIComponent(batchId)}`,
      () => ({
        method: 'GET',
        headers: { accept: 'application/json' },
      }),
    );
    return parseBatchStatus(batchId, answer, what);
  }

  /** One call with the token rule, retries on 408/429/5xx/network errors, and errors that say what to check. */
  async #call(
    what: string,
    service: AepService,
    url: string,
    init: () => RequestInit,
    extra: { timeoutMs?: number; rethrow?: (error: unknown) => Error | undefined } = {},
  ): Promise<unknown> {
    const classify = (error: unknown): Verdict => {
      if (extra.rethrow?.(error) !== undefined) return { retry: false };
      return classifyAepFailure(error);
    };
    try {
      return await withRetry(
        what,
        async () => {
          const response = await authorizedFetch(
            {
              tokens: this.#opts.tokens,
              sandbox: this.#opts.target.sandbox,
              fetch: this.#fetch,
              timeoutMs: extra.timeoutMs ?? this.#opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS,
              onTokenRefused: (status) =>
                this.#opts.log?.warn('Platform refused the access token; renewing it and retrying once', {
                  status,
                  what,
                }),
            },
            what,
            url,
            (headers) => {
              const request = init();
              return { ...request, headers: { ...headers, ...(request.headers as Record<string, string>) } };
            },
          );
          if (!response.ok) {
            throw await httpErrorFrom(response, {
              what,
              service,
              hint: this.#hint(response.status, service),
              nowMs: this.#now(),
            });
          }
          const text = await response.text();
          if (text.trim() === '') return {};
          try {
            return JSON.parse(text) as unknown;
          } catch {
            return {};
          }
        },
        {
          classify,
          policy: this.#opts.retry ?? DEFAULT_RETRY_POLICY,
          now: this.#now,
          ...(this.#opts.sleep === undefined ? {} : { sleep: this.#opts.sleep }),
          ...(this.#opts.random === undefined ? {} : { random: this.#opts.random }),
          onRetry: ({ attempt, delayMs, error }) =>
            this.#opts.log?.warn('retrying AEP batch ingestion call', {
              what,
              attempt,
              delayMs,
              reason: (error as Error).message,
            }),
        },
      );
    } catch (error) {
      throw extra.rethrow?.(error) ?? error;
    }
  }

  #hint(status: number, service: AepService): string {
    const { datasetId, sandbox } = this.#opts.target;
    switch (status) {
      case 400:
        return `Check the request matches the dataset ${datasetId} (AEP_DATASET_ID) and that the batch is still open (status loading).`;
      case 401:
      case 403:
        return `The access token was refused even after renewing it: check the credential's org (AEP_ORG_ID), its API key, and that its role may write to datasets in sandbox "${sandbox}" (AEP_SANDBOX).`;
      case 404:
        return service === 'catalog'
          ? `No such batch in sandbox "${sandbox}": check AEP_SANDBOX and the batch id.`
          : `Check AEP_DATASET_ID (${datasetId}), AEP_SANDBOX ("${sandbox}") and the batch id.`;
      case 413:
        return 'The file is too large for a single upload; split it into several files of the same batch.';
      case 415:
        return 'Platform does not accept this media type; files are sent as application/octet-stream JSON Lines.';
      case 408:
      case 429:
      case 500:
      case 502:
      case 503:
      case 504:
        return 'Platform is throttling or unavailable; try again later (uploads of the same file name replace it, so re-running is safe).';
      default:
        return `Check AEP_PLATFORM_URL, AEP_DATASET_ID (${datasetId}) and AEP_SANDBOX ("${sandbox}").`;
    }
  }
}
