/**
 * What the verifier reads from Platform, and how it reads Platform's error files. The calls are Catalog's batch
 * listing and the Data Access API's failed-records and error-diagnostics files (`PlatformCatalog` in
 * `functions/aep/catalog.ts`); this module names only the part of it the verifier uses.
 */
import { digest } from '#forward/ledger';

/** A Catalog batch as the verifier needs it. */
export interface PlatformBatch {
  readonly id: string;
  readonly status: string;
  /** Epoch ms (Catalog's `created`). */
  readonly created?: number;
  readonly recordCount?: number;
  readonly failedRecordCount?: number;
  readonly errors?: ReadonlyArray<{ readonly code?: string; readonly description?: string }>;
}

export interface PlatformReader {
  /** Batches of a dataset created in `(createdAfter, createdBefore)` (Catalog `GET /batches`, every page). */
  listBatches(q: {
    readonly datasetId: string;
    readonly createdAfter: number;
    readonly createdBefore: number;
  }): AsyncIterable<PlatformBatch>;
  getBatch(batchId: string): Promise<PlatformBatch>;
  /** The lines of a batch's failed files (streaming validation failures). */
  failedRecords(batchId: string): AsyncIterable<{ readonly text: string }>;
  /** The lines of a batch's error diagnostics (`row_errors`) files. */
  rowErrors(batchId: string): AsyncIterable<{ readonly text: string }>;
}

/** A record Platform refused, as its error file tells it. */
export interface Refusal {
  /** The record's `_id`, when the error file carries it. */
  readonly id: string | undefined;
  readonly code: string;
  readonly message: string;
  readonly batchId: string;
}

/** The digest key of an `_id`, as the part ledgers store it. */
export function idKey(id: string): string {
  const [hi, lo] = digest(id);
  return `${hi | 0}:${lo | 0}`;
}

const ID_IN_TEXT = /"_id"\s*:\s*"((?:[^"\\]|\\.)*)"/;

/**
 * Reads one line of a failed-records or row-errors file: the record (or, for a row Platform could not parse, its text
 * in `_corrupt_record`) with Platform's errors in `_validationErrors`, `_errors` or `_errors._streamingValidation`
 * (AdobeDocs/experience-platform.en help/ingestion/quality/retrieve-failed-batches.md, error-diagnostics.md).
 */
export function readRefusal(line: string, batchId: string): Refusal | undefined {
  if (line.trim() === '') return undefined;
  let row: Record<string, unknown>;
  try {
    const parsed: unknown = JSON.parse(line);
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return undefined;
    row = parsed as Record<string, unknown>;
  } catch {
    return undefined;
  }
  let id = typeof row._id === 'string' ? row._id : undefined;
  if (id === undefined && typeof row._corrupt_record === 'string') {
    const m = ID_IN_TEXT.exec(row._corrupt_record);
    if (m !== null) id = JSON.parse(`"${m[1]}"`) as string;
  }
  const first = firstError(row);
  return { id, code: first.code, message: first.message, batchId };
}

function firstError(row: Record<string, unknown>): { code: string; message: string } {
  const nested = row._errors as Record<string, unknown> | undefined;
  const lists = [row._validationErrors, row._errors, nested?._streamingValidation];
  for (const list of lists) {
    if (!Array.isArray(list) || list.length === 0) continue;
    const e = (list[0] ?? {}) as Record<string, unknown>;
    const code = String(e.code ?? e.keyword ?? 'unknown');
    const at = e.pointerToViolation;
    const where = typeof at === 'string' && at !== '#' ? ` at ${at}` : '';
    const more = list.length > 1 ? ` (+${list.length - 1} more)` : '';
    return { code, message: `${String(e.message ?? 'no message')}${where}${more}` };
  }
  return { code: 'unknown', message: 'Platform refused the record without saying why' };
}
