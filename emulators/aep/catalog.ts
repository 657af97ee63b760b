/**
 * Catalog batches (`GET /data/foundation/catalog/batches[/{id}]`) and the Data Access API files of a batch
 * (`GET /data/foundation/export/batches/{id}/failed|meta[?path=]`), over the batches of both ingestion paths.
 * https://github.com/AdobeDocs/experience-platform-apis/blob/main/static/swagger-specs/catalog.yaml
 * https://github.com/AdobeDocs/experience-platform-apis/blob/main/static/swagger-specs/data-access.yaml
 */
import { randomBytes } from 'node:crypto';
import { reply } from './context.ts';
import type { Exchange } from './http.ts';
import type { IssuedToken } from './ims.ts';

/** A file the Data Access API serves: JSON Lines text. */
export interface StoredFile {
  readonly name: string;
  readonly text: string;
}

/** One batch as Catalog and the Data Access API see it. */
export interface CatalogBatch {
  readonly id: string;
  readonly orgId: string;
  readonly datasetId: string;
  readonly created: number;
  /** The `batchResponse` object of catalog.yaml. */
  view(): Record<string, unknown>;
  /** `/batches/{id}/failed`: the records Platform could not ingest (streaming validation failures). */
  readonly failedFiles: readonly StoredFile[];
  /** `/batches/{id}/meta`: directory (`row_errors`) → files (batch ingestion error diagnostics). */
  readonly metaFiles: ReadonlyMap<string, readonly StoredFile[]>;
}

/** Catalog's page bound: "The maximum number of objects that can be returned is 100" (catalog.yaml, `limit`). */
export const MAX_CATALOG_LIMIT = 100;
/** Page size when `limit` is absent: Adobe does not document it; the example value of `limit` (20) is used. */
export const DEFAULT_CATALOG_LIMIT = 20;
/** Data Access lists at most 100 files per call (data-access.yaml, `/batches/{batchId}/failed`). */
const MAX_FILES_PER_PAGE = 100;

type Filter = (batch: Record<string, unknown>, value: string) => boolean;
const num = (v: unknown): number => (typeof v === 'number' ? v : Number.NaN);
const dataSetOf = (b: Record<string, unknown>): unknown =>
  (b.relatedObjects as Array<{ type: string; id: string }> | undefined)?.find((o) => o.type === 'dataSet')?.id;

/** Filters of `GET /catalog/batches` the emulator applies (catalog.yaml `listBatches`; `createdAfter` and
 * `createdBefore` are exclusive, as documented). */
const FILTERS: Record<string, Filter> = {
  createdAfter: (b, v) => num(b.created) > Number(v),
  createdBefore: (b, v) => num(b.created) < Number(v),
  created: (b, v) => num(b.created) === Number(v),
  updated: (b, v) => num(b.updated) === Number(v),
  started: (b, v) => num(b.started) === Number(v),
  completed: (b, v) => num(b.completed) === Number(v),
  createdClient: (b, v) => b.createdClient === v,
  createdUser: (b, v) => b.createdUser === v,
  updatedUser: (b, v) => b.updatedUser === v,
  // "Filter by the current (mutable) status": a comma-separated list matches any of its words.
  status: (b, v) => v.split(',').includes(String(b.status)),
  dataSet: (b, v) => dataSetOf(b) === v,
  batch: (b, v) => b.id === v,
  externalId: (b, v) => b.externalId === v,
  version: (b, v) => b.version === v,
};
const INTEGER_FILTERS = new Set(['createdAfter', 'createdBefore', 'created', 'updated', 'started', 'completed']);
/** Documented parameters the emulator does not implement: answered 501 rather than silently ignored. */
const NOT_EMULATED = new Set([
  'tags',
  'recordCount',
  'failedRecordCount',
  'size',
  'startAfter',
  'startBefore',
  'endAfter',
  'endBefore',
  'property',
]);
const SORTABLE = new Set(['created', 'updated', 'started', 'completed', 'id']);

function problem(status: number, title: string, detail: string): Record<string, unknown> {
  return { type: 'https://ns.adobe.com/aep/errors/catalog', status, title, detail };
}

/** `GET /data/foundation/catalog/batches`: an object keyed by batch id, filtered, ordered and paged. */
export function serveBatchList(ex: Exchange, grant: IssuedToken, batches: Iterable<CatalogBatch>): Promise<void> {
  const filters: Array<[Filter, string]> = [];
  let limit = DEFAULT_CATALOG_LIMIT;
  let start = 0;
  let order: Array<{ field: string; desc: boolean }> = [];
  let properties: string[] | undefined;
  for (const [name, value] of ex.query) {
    const bad = (why: string): Promise<void> => reply(ex, 400, problem(400, 'Bad Request', `${name}=${value}: ${why}`));
    if (name === 'limit') {
      limit = Number(value);
      if (!Number.isInteger(limit) || limit < 1 || limit > MAX_CATALOG_LIMIT) {
        return bad(`limit must be an integer from 1 to ${MAX_CATALOG_LIMIT}`);
      }
    } else if (name === 'start') {
      start = Number(value);
      if (!Number.isInteger(start) || start < 0) return bad('start must be a non-negative integer');
    } else if (name === 'orderBy') {
      // "orderBy=asc:created,updated": a direction applies to the fields after it until the next one.
      let desc = false;
      order = [];
      for (const part of value.split(',')) {
        const m = /^(?:(asc|desc):)?(\w+)$/.exec(part.trim());
        if (m === null || !SORTABLE.has(m[2] as string)) return bad(`cannot order by ${part}`);
        if (m[1] !== undefined) desc = m[1] === 'desc';
        order.push({ field: m[2] as string, desc });
      }
    } else if (name === 'properties') {
      properties = value
        .split(',')
        .map((p) => p.trim())
        .filter((p) => p !== '');
    } else if (FILTERS[name] !== undefined) {
      if (INTEGER_FILTERS.has(name) && !/^\d+$/.test(value)) return bad('expected a Unix time in milliseconds');
      filters.push([FILTERS[name], value]);
    } else if (NOT_EMULATED.has(name)) {
      return reply(ex, 501, problem(501, 'Not Implemented', `the ${name} filter is not emulated`));
    } else {
      return bad('unknown query parameter');
    }
  }
  const views = [...batches]
    .filter((b) => b.orgId === grant.orgId)
    .map((b) => b.view())
    .filter((view) => filters.every(([accept, value]) => accept(view, value)));
  if (order.length > 0) {
    views.sort((a, b) => {
      for (const { field, desc } of order) {
        const [x, y] = [a[field], b[field]] as [number | string, number | string];
        if (x !== y) return (x < y ? -1 : 1) * (desc ? -1 : 1);
      }
      return 0;
    });
  }
  const out: Record<string, unknown> = {};
  for (const view of views.slice(start, start + limit)) {
    out[view.id as string] = properties === undefined ? view : pick(view, properties);
  }
  return reply(ex, 200, out);
}

function pick(view: Record<string, unknown>, keys: string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => k in view).map((k) => [k, view[k]]));
}

/** `GET /data/foundation/catalog/batches/{id}` → `{"<id>": {...}}`. */
export function serveBatch(
  ex: Exchange,
  grant: IssuedToken,
  batch: CatalogBatch | undefined,
  id: string,
): Promise<void> {
  if (batch === undefined || batch.orgId !== grant.orgId) {
    return reply(ex, 404, problem(404, 'Not Found', `Batch ${id} not found`));
  }
  return reply(ex, 200, { [batch.id]: batch.view() });
}

/**
 * `GET /data/foundation/export/batches/{id}/failed|meta`: without `path`, the listing `{data: [{name, length,
 * _links}], _page}`; with `path`, the file itself (JSON Lines).
 * https://github.com/AdobeDocs/experience-platform.en/blob/main/help/ingestion/quality/retrieve-failed-batches.md
 * https://github.com/AdobeDocs/experience-platform.en/blob/main/help/ingestion/quality/error-diagnostics.md
 */
export function serveBatchFiles(
  ex: Exchange,
  grant: IssuedToken,
  batch: CatalogBatch | undefined,
  id: string,
  kind: 'failed' | 'meta',
): Promise<void> {
  if (batch === undefined || batch.orgId !== grant.orgId) {
    return reply(ex, 404, problem(404, 'Not Found', `Batch ${id} not found`));
  }
  const path = ex.query.get('path');
  const self = (p: string): string =>
    `http://${ex.req.headers.host ?? 'localhost'}/data/foundation/export/batches/${id}/${kind}?path=${encodeURIComponent(p)}`;
  let dir = '';
  let files: readonly StoredFile[];
  if (kind === 'failed') {
    files = batch.failedFiles;
  } else {
    // meta: `path=row_errors` lists the directory, `path=row_errors/<file>` downloads one file.
    if (path === null) return reply(ex, 400, problem(400, 'Bad Request', 'path is required (e.g. path=row_errors)'));
    dir = path.includes('/') ? path.slice(0, path.indexOf('/')) : path;
    files = batch.metaFiles.get(dir) ?? [];
    if (!batch.metaFiles.has(dir)) return reply(ex, 404, problem(404, 'Not Found', `No ${path} in batch ${id}`));
  }
  const wanted = kind === 'meta' ? (path?.includes('/') ? path.slice(dir.length + 1) : null) : path;
  if (wanted !== null) {
    const file = files.find((f) => f.name === wanted);
    if (file === undefined) return reply(ex, 404, problem(404, 'Not Found', `No file ${wanted} in batch ${id}`));
    ex.res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': String(Buffer.byteLength(file.text)),
    });
    ex.res.end(file.text);
    return Promise.resolve();
  }
  const start = Number(ex.query.get('start') ?? 0) || 0;
  const limit = Math.min(Number(ex.query.get('limit') ?? MAX_FILES_PER_PAGE) || MAX_FILES_PER_PAGE, MAX_FILES_PER_PAGE);
  const page = files.slice(start, start + limit);
  return reply(ex, 200, {
    data: page.map((f) => ({
      name: f.name,
      length: String(Buffer.byteLength(f.text)),
      _links: { self: { href: self(dir === '' ? f.name : `${dir}/${f.name}`) } },
    })),
    _page: { limit, count: page.length },
  });
}

/** A Spark-style part file name, as in Adobe's example (`part-00000-<uuid>-c000.json`). */
export function partFileName(index: number): string {
  const hex = randomBytes(16).toString('hex');
  const uuid = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
  return `part-${String(index).padStart(5, '0')}-${uuid}-c000.json`;
}

/** A ULID-shaped id like Catalog's (`01EQ1C48TR4GD4FE7NH2522TCQ`): 48-bit time, 80 random bits, Crockford base32. */
export function newBatchId(nowMs: number): string {
  const alphabet = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
  let time = '';
  for (let t = nowMs, i = 0; i < 10; i += 1, t = Math.floor(t / 32)) time = alphabet[t % 32] + time;
  let random = '';
  for (const byte of randomBytes(16)) random += alphabet[byte % 32];
  return time + random;
}
