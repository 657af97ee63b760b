/**
 * Reading what Platform stored: Catalog batches of a dataset and, through the Data Access API, the records a batch
 * could not ingest (failed streaming records, batch ingestion error diagnostics). The verifier calls this after a
 * window is forwarded; nothing here writes to Platform.
 *
 * Adobe:
 * - Catalog `GET /data/foundation/catalog/batches` (AdobeDocs/experience-platform-apis static/swagger-specs/catalog.yaml
 *   `listBatches`): an object keyed by batch id; filters `dataSet`, `createdAfter`/`createdBefore` (exclusive, Unix
 *   ms), `status`; `limit` (default 20, at most 100), `start` (zero-based offset), `orderBy=asc:created`
 *   (AdobeDocs/experience-platform.en help/catalog/api/filter-data.md, "Limit returned objects", "Offset starting
 *   index", "Sort by property").
 * - Data Access `GET /data/foundation/export/batches/{batchId}/failed` and `.../meta?path=row_errors` (static/
 *   swagger-specs/data-access.yaml `retrieveFailedBatch`, `retrieveBatchMeta`): a listing `{data: [{name, length,
 *   _links.self.href}], _page}` of at most 100 files, paged with `start`/`limit`; the same URL with `path=<file>`
 *   downloads a file (help/ingestion/quality/retrieve-failed-batches.md; help/ingestion/quality/error-diagnostics.md,
 *   "Unparsable rows"). Files are JSON Lines: the record with `_errors` or `_validationErrors`.
 */
import { DEFAULT_RETRY_POLICY, type RetryPolicy, withRetry } from '#common/retry';
import type { Log } from '#common/log';
import { AepNetworkError, type AepService, classifyAepFailure, httpErrorFrom } from './errors.ts';
import { authorizedFetch, type TokenSource } from './transport.ts';
import { type BatchStatus, parseBatchStatus } from './batch-status.ts';

/** catalog.yaml `listBatches` `limit`: "The maximum number of objects that can be returned is 100". */
export const CATALOG_MAX_LIMIT = 100;
/** data-access.yaml: "100 failed files is the maximum number of files that can be returned in a single API request". */
export const DATA_ACCESS_MAX_LIMIT = 100;

/** Catalog base path (catalog.yaml "Base path for this API: /data/foundation/catalog"). */
const CATALOG_BATCHES = '/data/foundation/catalog/batches';
/** Data Access base path (data-access.yaml "Base path for this API: /data/foundation/export"). */
const EXPORT_BATCHES = '/data/foundation/export/batches';
/** The error diagnostics directory under a batch's meta files (data-access.yaml `retrieveBatchMeta`, `path`). */
const ROW_ERRORS_DIR = 'row_errors';
/** A Spark job's completion marker, listed next to the part files and always empty (retrieve-failed-batches.md). */
const SUCCESS_MARKER = '_SUCCESS';
const DEFAULT_TIMEOUT_MS = 60_000;
const DEFAULT_DOWNLOAD_TIMEOUT_MS = 5 * 60_000;

export interface PlatformCatalogOptions {
  /** `AEP_PLATFORM_URL` and `AEP_SANDBOX`. */
  readonly target: { readonly platformUrl: string; readonly sandbox: string };
  readonly tokens: TokenSource;
  readonly fetch?: typeof fetch;
  /** @default DEFAULT_RETRY_POLICY */
  readonly retry?: RetryPolicy;
  /** Per Catalog request or file listing, its body included. @default 60 s */
  readonly requestTimeoutMs?: number;
  /** Per file download, its body included. @default 5 minutes */
  readonly downloadTimeoutMs?: number;
  /** Batches per Catalog page, 1 to {@link CATALOG_MAX_LIMIT}. @default 100 */
  readonly pageSize?: number;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly random?: () => number;
  readonly log?: Log;
}

/** `relatedObjects` entry of a Catalog batch (catalog.yaml `batchResponse`). */
export interface RelatedObject {
  readonly type: string;
  readonly id: string;
}

/** A Catalog batch: its status as {@link parseBatchStatus} reads it, plus its times and related objects. */
export interface CatalogBatch extends BatchStatus {
  /** Unix ms (catalog.yaml: `created`, `updated`, `started`, `completed`). */
  readonly created?: number;
  readonly updated?: number;
  readonly started?: number;
  readonly completed?: number;
  readonly relatedObjects: readonly RelatedObject[];
  /** The datasets among `relatedObjects` (type `dataSet`). */
  readonly datasetIds: readonly string[];
}

export interface ListBatchesQuery {
  readonly datasetId: string;
  /** Exclusive lower bound on `created`, Unix ms. */
  readonly createdAfter?: number;
  /** Exclusive upper bound on `created`, Unix ms. */
  readonly createdBefore?: number;
  /** One status or several (any of them, filter-data.md "Using simple filters"). */
  readonly status?: string | readonly string[];
}

/** One line of a Data Access file. */
export interface DataAccessLine {
  /** The file's name in the listing. */
  readonly file: string;
  /** 1-based line number within the file. */
  readonly line: number;
  /** The line as a JSON object; undefined when it is not one (then see `text`). */
  readonly record: Record<string, unknown> | undefined;
  readonly text: string;
}

/** One error Platform attached to a failed record or row. */
export interface PlatformRecordError {
  readonly code?: string;
  readonly message: string;
  /** JSON pointer of the offending field, when Platform gave one (`pointerToViolation`). */
  readonly path?: string;
}

interface FileEntry {
  readonly name: string;
  readonly length: number | undefined;
  readonly href: string | undefined;
}

/** Read-only client of Catalog batches and the Data Access API files of a batch. */
export class PlatformCatalog {
  readonly #o: PlatformCatalogOptions;
  readonly #base: string;
  readonly #pageSize: number;

  constructor(options: PlatformCatalogOptions) {
    const pageSize = options.pageSize ?? CATALOG_MAX_LIMIT;
    if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > CATALOG_MAX_LIMIT) {
      throw new RangeError(`pageSize must be a whole number from 1 to ${CATALOG_MAX_LIMIT}, got ${pageSize}`);
    }
    this.#o = options;
    this.#base = options.target.platformUrl.replace(/\/+$/, '');
    this.#pageSize = pageSize;
  }

  /**
   * Every batch of a dataset that matches the query, oldest first, fetched a page at a time. Pages are offsets over
   * `created` ascending, so batches created while paging land after the ones already read; a batch seen twice (ties
   * on `created` reordered between pages) is yielded once.
   */
  async *listBatches(query: ListBatchesQuery): AsyncGenerator<CatalogBatch> {
    const filters = new URLSearchParams({ dataSet: query.datasetId });
    if (query.createdAfter !== undefined) filters.set('createdAfter', String(Math.floor(query.createdAfter)));
    if (query.createdBefore !== undefined) filters.set('createdBefore', String(Math.ceil(query.createdBefore)));
    if (query.status !== undefined) {
      filters.set('status', typeof query.status === 'string' ? query.status : query.status.join(','));
    }
    filters.set('orderBy', 'asc:created');
    filters.set('limit', String(this.#pageSize));
    const seen = new Set<string>();
    for (let start = 0; ; start += this.#pageSize) {
      filters.set('start', String(start));
      const what = `list batches of dataset ${query.datasetId} (from ${start})`;
      const page = await this.#json(what, 'catalog', `${this.#base}${CATALOG_BATCHES}?${filters}`);
      const entries = Object.entries(isObject(page) ? page : {}).filter(([, raw]) => isObject(raw));
      for (const [id, raw] of entries) {
        if (seen.has(id)) continue;
        seen.add(id);
        yield catalogBatch(id, raw as Record<string, unknown>, what);
      }
      if (entries.length < this.#pageSize) return;
    }
  }

  /** One batch as Catalog reports it (`GET /catalog/batches/{batchId}`, api-overview.md "Check batch status"). */
  async getBatch(batchId: string): Promise<CatalogBatch> {
    const what = `status of batch ${batchId}`;
    const answer = await this.#json(what, 'catalog', `${this.#base}${CATALOG_BATCHES}/${encodeURIComponent(batchId)}`);
    const status = parseBatchStatus(batchId, answer, what);
    return catalogBatch(status.id, status.raw, what);
  }

  /**
   * The records of a batch that Platform could not ingest — for a streaming dataset, those its asynchronous XDM
   * validation refused — line by line over every file of `GET /export/batches/{id}/failed`. No files (or a 404 for
   * the listing) yields nothing.
   */
  failedRecords(batchId: string): AsyncGenerator<DataAccessLine> {
    return this.#lines(batchId, 'failed', undefined);
  }

  /**
   * The rows a batch ingestion batch refused, from its error diagnostics (`GET /export/batches/{id}/meta?path=
   * row_errors`): parsing errors carry `_corrupt_record`, conversion errors the row itself, both with `_errors`.
   * Only batches created with error diagnostics have them (help/ingestion/batch-ingestion/partial.md); without, and
   * for a 404 of the directory, this yields nothing.
   */
  rowErrors(batchId: string): AsyncGenerator<DataAccessLine> {
    return this.#lines(batchId, 'meta', ROW_ERRORS_DIR);
  }

  async *#lines(batchId: string, kind: 'failed' | 'meta', dir: string | undefined): AsyncGenerator<DataAccessLine> {
    const root = `${this.#base}${EXPORT_BATCHES}/${encodeURIComponent(batchId)}/${kind}`;
    const files: FileEntry[] = [];
    for (let start = 0; ; start += DATA_ACCESS_MAX_LIMIT) {
      const query = new URLSearchParams({ start: String(start), limit: String(DATA_ACCESS_MAX_LIMIT) });
      if (dir !== undefined) query.set('path', dir);
      const what = `list ${dir ?? kind} files of batch ${batchId}`;
      const listing = await this.#json(what, 'data-access', `${root}?${query}`, { absentOn404: true });
      const data = isObject(listing) && Array.isArray(listing.data) ? listing.data : [];
      files.push(...data.map(fileEntry).filter((f): f is FileEntry => f !== undefined));
      if (data.length < DATA_ACCESS_MAX_LIMIT) break;
    }
    for (const file of files) {
      if (file.name === SUCCESS_MARKER || file.length === 0) continue;
      const path = dir === undefined ? file.name : `${dir}/${file.name}`;
      const what = `download ${path} of batch ${batchId}`;
      // The file is JSON Lines served as application/octet-stream (data-access.yaml `retrieveFailedBatch`).
      const response = await this.#get(what, 'data-access', this.#downloadUrl(file, root, path), {
        accept: '*/*',
        timeoutMs: this.#o.downloadTimeoutMs ?? DEFAULT_DOWNLOAD_TIMEOUT_MS,
      });
      if (response === undefined) continue;
      let line = 0;
      for await (const text of readLines(response, what)) {
        line += 1;
        if (text.trim() === '') continue;
        yield { file: file.name, line, record: parseObject(text), text };
      }
    }
  }

  /**
   * The listing's own link when it points at the configured Platform host, else the documented `?path=` form: the
   * access token is only ever sent to `AEP_PLATFORM_URL`.
   */
  #downloadUrl(file: FileEntry, root: string, path: string): string {
    if (file.href !== undefined && URL.canParse(file.href)) {
      const href = new URL(file.href);
      if (href.origin === new URL(this.#base).origin) return href.toString();
    }
    return `${root}?${new URLSearchParams({ path })}`;
  }

  async #json(what: string, service: AepService, url: string, opts: { absentOn404?: boolean } = {}): Promise<unknown> {
    const response = await this.#get(what, service, url, {
      accept: 'application/json',
      timeoutMs: this.#o.requestTimeoutMs ?? DEFAULT_TIMEOUT_MS,
      absentOn404: opts.absentOn404 === true,
    });
    if (response === undefined) return undefined;
    const text = await response.text();
    if (text.trim() === '') return undefined;
    try {
      return JSON.parse(text) as unknown;
    } catch {
      return undefined;
    }
  }

  /** A GET with the Platform headers, retried on 408/429/5xx and network errors; 404 is `undefined` when allowed. */
  async #get(
    what: string,
    service: AepService,
    url: string,
    opts: { readonly accept: string; readonly timeoutMs: number; readonly absentOn404?: boolean },
  ): Promise<Response | undefined> {
    const { accept, timeoutMs, absentOn404 = false } = opts;
    const o = this.#o;
    const send = async (): Promise<Response | undefined> => {
      const call = {
        tokens: o.tokens,
        sandbox: o.target.sandbox,
        fetch: o.fetch ?? globalThis.fetch,
        timeoutMs,
        onTokenRefused: (status: number) =>
          o.log?.warn('Platform refused the access token; renewed it', { what, status }),
      };
      const response = await authorizedFetch(call, what, url, (headers) => ({
        method: 'GET',
        headers: { ...headers, accept },
      }));
      if (response.ok) return response;
      if (absentOn404 && response.status === 404) {
        await response.arrayBuffer().catch(() => undefined);
        return undefined;
      }
      const nowMs = o.now === undefined ? {} : { nowMs: o.now() };
      throw await httpErrorFrom(response, {
        what,
        service,
        hint: hintFor(response.status, o.target.sandbox),
        ...nowMs,
      });
    };
    return withRetry(what, send, {
      classify: classifyAepFailure,
      policy: o.retry ?? DEFAULT_RETRY_POLICY,
      ...(o.now === undefined ? {} : { now: o.now }),
      ...(o.sleep === undefined ? {} : { sleep: o.sleep }),
      ...(o.random === undefined ? {} : { random: o.random }),
      onRetry: ({ attempt, delayMs, error }) =>
        o.log?.warn('retrying a Platform read', { what, attempt, delayMs, reason: (error as Error).message }),
    });
  }
}

/**
 * The errors Platform attached to a failed record or row, in the shapes its docs show: `_validationErrors: [{keyword,
 * message, pointerToViolation}]` and `_errors: {_streamingValidation: [{message}]}` for streaming
 * (retrieve-failed-batches.md), `_errors: [{code, message}]` for batch rows (error-diagnostics.md).
 */
export function platformErrors(record: Record<string, unknown> | undefined): PlatformRecordError[] {
  if (record === undefined) return [];
  const out: PlatformRecordError[] = [];
  const add = (items: unknown, code?: string): void => {
    if (!Array.isArray(items)) return;
    for (const item of items) {
      if (!isObject(item)) continue;
      const message = typeof item.message === 'string' ? item.message : JSON.stringify(item);
      const own = item.code ?? item.keyword ?? code;
      const path = item.pointerToViolation;
      out.push({
        ...(own === undefined ? {} : { code: String(own) }),
        message,
        ...(typeof path === 'string' ? { path } : {}),
      });
    }
  };
  add(record._validationErrors);
  const errors = record._errors;
  if (Array.isArray(errors)) add(errors);
  else if (isObject(errors)) for (const [key, items] of Object.entries(errors)) add(items, key.replace(/^_/, ''));
  return out;
}

function catalogBatch(id: string, raw: Record<string, unknown>, what: string): CatalogBatch {
  const status = parseBatchStatus(id, { [id]: raw }, what);
  const relatedObjects = (Array.isArray(raw.relatedObjects) ? raw.relatedObjects : [])
    .filter(isObject)
    .filter((o) => typeof o.type === 'string' && typeof o.id === 'string')
    .map((o): RelatedObject => ({ type: o.type as string, id: o.id as string }));
  const time = (key: string): Record<string, number> => {
    const value = raw[key];
    return typeof value === 'number' && Number.isFinite(value) ? { [key]: value } : {};
  };
  return {
    ...status,
    ...time('created'),
    ...time('updated'),
    ...time('started'),
    ...time('completed'),
    relatedObjects,
    datasetIds: relatedObjects.filter((o) => o.type === 'dataSet').map((o) => o.id),
  };
}

function fileEntry(item: unknown): FileEntry | undefined {
  if (!isObject(item) || typeof item.name !== 'string' || item.name === '') return undefined;
  const length = Number(item.length);
  const links = isObject(item._links) && isObject(item._links.self) ? item._links.self : {};
  return {
    name: item.name,
    length: item.length === undefined || !Number.isFinite(length) ? undefined : length,
    href: typeof links.href === 'string' ? links.href : undefined,
  };
}

/** The lines of a response body, decoded as UTF-8 as they arrive (a failed-records file is never held whole). */
async function* readLines(response: Response, what: string): AsyncGenerator<string> {
  if (response.body === null) return;
  const decoder = new TextDecoder();
  let rest = '';
  try {
    for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
      rest += decoder.decode(chunk, { stream: true });
      const lines = rest.split('\n');
      rest = lines.pop() ?? '';
      yield* lines;
    }
  } catch (error) {
    throw new AepNetworkError(what, error);
  }
  rest += decoder.decode();
  if (rest !== '') yield rest;
}

function parseObject(text: string): Record<string, unknown> | undefined {
  try {
    const value = JSON.parse(text) as unknown;
    return isObject(value) ? value : undefined;
  } catch {
    return undefined;
  }
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function hintFor(status: number, sandbox: string): string {
  if (status === 401 || status === 403) {
    return `The credential may not read batches in sandbox "${sandbox}": give its role (product profile) read access to datasets and their batches there (AEP_SANDBOX, AEP_ORG_ID).`;
  }
  if (status === 404) return `Not found in sandbox "${sandbox}": check AEP_SANDBOX, AEP_PLATFORM_URL and the batch id.`;
  if (status === 400) return 'Platform refused the query: the message above says which parameter.';
  return 'Platform is throttling or unavailable; the next verification run reads it again.';
}
