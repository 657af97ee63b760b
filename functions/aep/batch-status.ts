/**
 * Reading a batch's Catalog entry: `GET /data/foundation/catalog/batches/{batchId}` answers
 * `{"<batchId>": {"status","metrics","errors",...}}` (AdobeDocs/experience-platform.en
 * help/ingestion/batch-ingestion/api-overview.md; partial.md for `errors`).
 */
import { AepHttpError } from './errors.ts';

/** Where a batch stands, from Platform's point of view, once its Catalog status word is read. */
export type BatchPhase = 'in-progress' | 'succeeded' | 'failed' | 'unknown';

/**
 * Every status word Catalog may report for a batch, and its phase. The words are the `status` enum of
 * `batchResponse` in AdobeDocs/experience-platform-apis static/swagger-specs/catalog.yaml, plus `archived` and
 * `retained` from the "Batch States" table of AdobeDocs/experience-platform.en
 * help/ingestion/batch-ingestion/troubleshooting.md, which also gives their meaning:
 * - in progress: `loading` (files still being written), `loaded`/`staged` (written, ready for promotion), `staging`
 *   and `processing` (signalled, being promoted), `queued`, `retrying` (a transient promotion error Platform retries
 *   on its own: "requires no customer intervention");
 * - succeeded: `success`/`active` ("used interchangeably": promoted to master); `inactive` (promoted, then reverted or
 *   expired), `archived` and `retained` (promoted, later moved to cold storage): the delivery itself succeeded;
 * - failed: `failed`/`failure` ("a terminal state that results from either bad configuration and/or bad data"),
 *   `aborted` (the client aborted it), `abandoned` (never completed in time), `stalled` (promotion retries exhausted),
 *   `deleted` (removed from Catalog: nothing of it can be counted as stored).
 * The docs write the words capitalised in prose ("Active", "Failure") and lowercase in answers: read in any case.
 */
export const BATCH_STATUS_PHASES: Readonly<Record<string, Exclude<BatchPhase, 'unknown'>>> = {
  loading: 'in-progress',
  loaded: 'in-progress',
  staged: 'in-progress',
  staging: 'in-progress',
  processing: 'in-progress',
  queued: 'in-progress',
  retrying: 'in-progress',
  success: 'succeeded',
  active: 'succeeded',
  inactive: 'succeeded',
  archived: 'succeeded',
  retained: 'succeeded',
  failed: 'failed',
  failure: 'failed',
  aborted: 'failed',
  abandoned: 'failed',
  stalled: 'failed',
  deleted: 'failed',
};

/**
 * The phase of a batch from its Catalog status word (see {@link BATCH_STATUS_PHASES} for the table and its sources).
 * @returns `unknown` for a word the docs do not list (the caller keeps treating the batch as unsettled)
 */
export function batchPhase(status: string): BatchPhase {
  return Object.hasOwn(BATCH_STATUS_PHASES, status.toLowerCase())
    ? (BATCH_STATUS_PHASES[status.toLowerCase()] as BatchPhase)
    : 'unknown';
}

export interface BatchErrorEntry {
  readonly code?: string;
  readonly description?: string;
  readonly rows?: readonly string[];
}

export interface BatchStatus {
  readonly id: string;
  /** `loading`, `staging`, `processing`, `success`, `failed`, … as the Catalog reports it. */
  readonly status: string;
  readonly recordCount?: number;
  readonly failedRecordCount?: number;
  readonly metrics?: Readonly<Record<string, unknown>>;
  readonly errors?: readonly BatchErrorEntry[];
  /** The Catalog object as returned, for anything not lifted above. */
  readonly raw: Readonly<Record<string, unknown>>;
}

/** The batch status in a Catalog answer, or an error naming what to check when the batch is not in it. */
export function parseBatchStatus(batchId: string, answer: unknown, what: string): BatchStatus {
  const container = (answer ?? {}) as Record<string, unknown>;
  // The Catalog answers `{ "<batchId>": {...} }`; accept a bare batch object too.
  let entry = container[batchId];
  const missing = (value: unknown): boolean => value === undefined || value === null || typeof value !== 'object';
  if (missing(entry) && typeof container.status === 'string') entry = container;
  if (missing(entry)) {
    throw new AepHttpError({
      what,
      service: 'catalog',
      status: 200,
      adobeMessage: 'answer does not contain the batch',
      hint: 'Check AEP_PLATFORM_URL points at the Platform API host and AEP_SANDBOX is the batch’s sandbox.',
    });
  }
  const raw = entry as Record<string, unknown>;
  const errors = Array.isArray(raw.errors)
    ? (raw.errors as unknown[]).map((e): BatchErrorEntry => {
        const o = (e ?? {}) as Record<string, unknown>;
        return {
          ...(o.code === undefined ? {} : { code: String(o.code) }),
          ...(typeof o.description === 'string'
            ? { description: o.description }
            : typeof o.message === 'string'
              ? { description: o.message }
              : {}),
          ...(Array.isArray(o.rows) ? { rows: (o.rows as unknown[]).map(String) } : {}),
        };
      })
    : undefined;
  const metrics =
    raw.metrics !== null && typeof raw.metrics === 'object' ? (raw.metrics as Record<string, unknown>) : undefined;
  const recordCount = numberOf(raw.recordCount) ?? numberOf(metrics?.inputRecordCount);
  const failedRecordCount = numberOf(raw.failedRecordCount) ?? numberOf(metrics?.failedRecordCount);
  return {
    id: typeof raw.id === 'string' ? raw.id : batchId,
    status: typeof raw.status === 'string' ? raw.status : 'unknown',
    ...(recordCount === undefined ? {} : { recordCount }),
    ...(failedRecordCount === undefined ? {} : { failedRecordCount }),
    ...(metrics === undefined ? {} : { metrics }),
    ...(errors === undefined ? {} : { errors }),
    raw,
  };
}

function numberOf(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}
