/**
 * What Platform does with streamed messages after DCS answered: "All data that is sent to Platform (successfully or
 * otherwise) is stored as batch files before being persisted in datasets", and under asynchronous validation "the
 * data is sent to a failed batch in Data Lake" (help/ingestion/streaming-ingestion/troubleshooting.md,
 * help/ingestion/quality/streaming-validation.md).
 *
 * Rule (Adobe does not publish how streamed data is cut into batches; this is the emulator's): messages are grouped
 * per dataset per time slice of `streamingSliceMs`; once a slice has ended its records become one `success` batch
 * (the valid ones) and one `failed` batch (the invalid ones, each with its `_validationErrors`), both listed by
 * Catalog with the dataset in `relatedObjects`; the failed records are downloadable with the Data Access API.
 */
import { type CatalogBatch, newBatchId, partFileName, type StoredFile } from './catalog.ts';

/** A record Platform's asynchronous validation refused, as the failed file holds it: the record with its errors.
 * https://github.com/AdobeDocs/experience-platform.en/blob/main/help/ingestion/quality/retrieve-failed-batches.md */
export interface FailedRecord {
  /** The `xdmEntity` when it was a JSON object (so a reader finds its `_id`), else undefined. */
  readonly entity: Record<string, unknown> | undefined;
  /** Keys the failed file line adds: `_validationErrors` or `_errors`. */
  readonly errors: Record<string, unknown>;
}

/** Adobe publishes no Catalog error code for streaming validation failures; this one is the emulator's. */
export const STREAMING_VALIDATION_ERROR = 'EMULATOR-STREAMING-VALIDATION';

interface Slice {
  readonly datasetId: string;
  readonly orgId: string;
  readonly endsAt: number;
  readonly firstAt: number;
  lastAt: number;
  valid: number;
  readonly failed: FailedRecord[];
}

export class StreamingBatches {
  readonly #sliceMs: number;
  readonly #open = new Map<string, Slice>();
  readonly #batches: CatalogBatch[] = [];

  constructor(sliceMs: number) {
    this.#sliceMs = sliceMs;
  }

  /** Counts a valid record into its slice (the record itself is kept by the accepted store at receipt). */
  accepted(datasetId: string, orgId: string, nowMs: number): void {
    this.#slice(datasetId, orgId, nowMs).valid += 1;
  }

  /** Puts a refused record into its slice's failed batch. */
  failed(datasetId: string, orgId: string, record: FailedRecord, nowMs: number): void {
    this.#slice(datasetId, orgId, nowMs).failed.push(record);
  }

  /** Turns every slice that has ended (or every slice, with `all`) into Catalog batches. */
  settle(nowMs: number, all = false): void {
    for (const [key, slice] of this.#open) {
      if (!all && slice.endsAt > nowMs) continue;
      this.#open.delete(key);
      const completed = Math.max(nowMs, slice.lastAt);
      if (slice.valid > 0) this.#batches.push(successBatch(slice, completed));
      if (slice.failed.length > 0) this.#batches.push(failedBatch(slice, completed));
    }
  }

  batches(): readonly CatalogBatch[] {
    return this.#batches;
  }

  /** Records waiting in open slices. */
  get pending(): number {
    let n = 0;
    for (const slice of this.#open.values()) n += slice.valid + slice.failed.length;
    return n;
  }

  #slice(datasetId: string, orgId: string, nowMs: number): Slice {
    const start = Math.floor(nowMs / this.#sliceMs) * this.#sliceMs;
    const key = `${orgId}\u0000${datasetId}\u0000${start}`;
    let slice = this.#open.get(key);
    if (slice === undefined) {
      slice = { datasetId, orgId, endsAt: start + this.#sliceMs, firstAt: nowMs, lastAt: nowMs, valid: 0, failed: [] };
      this.#open.set(key, slice);
    }
    slice.lastAt = nowMs;
    return slice;
  }
}

function streamingView(
  slice: Slice,
  id: string,
  completed: number,
  status: 'success' | 'failed',
  extra: Record<string, unknown>,
): () => Record<string, unknown> {
  return () => ({
    id,
    externalId: id,
    imsOrg: slice.orgId,
    status,
    created: slice.firstAt,
    updated: completed,
    started: slice.firstAt,
    completed,
    relatedObjects: [{ type: 'dataSet', id: slice.datasetId }],
    inputFormat: { format: 'json' },
    tags: { acp_stagePath: [`streaming/${slice.datasetId}`] },
    version: '1.0.0',
    createdClient: 'acp_streaming_ingestion',
    createdUser: 'acp_streaming_ingestion@AdobeID',
    updatedUser: 'acp_streaming_ingestion@AdobeID',
    ...extra,
  });
}

function successBatch(slice: Slice, completed: number): CatalogBatch {
  const id = newBatchId(slice.firstAt);
  const metrics = { inputRecordCount: slice.valid, outputRecordCount: slice.valid, failedRecordCount: 0 };
  return {
    id,
    orgId: slice.orgId,
    datasetId: slice.datasetId,
    created: slice.firstAt,
    view: streamingView(slice, id, completed, 'success', { recordCount: slice.valid, failedRecordCount: 0, metrics }),
    failedFiles: [],
    metaFiles: new Map(),
  };
}

function failedBatch(slice: Slice, completed: number): CatalogBatch {
  const id = newBatchId(slice.firstAt);
  const n = slice.failed.length;
  const lines = slice.failed.map((r) => JSON.stringify({ ...r.entity, ...r.errors }));
  // Adobe's example listing holds an empty `_SUCCESS` marker next to the part file.
  const files: StoredFile[] = [
    { name: '_SUCCESS', text: '' },
    { name: partFileName(0), text: `${lines.join('\n')}\n` },
  ];
  return {
    id,
    orgId: slice.orgId,
    datasetId: slice.datasetId,
    created: slice.firstAt,
    view: streamingView(slice, id, completed, 'failed', {
      recordCount: n,
      failedRecordCount: n,
      metrics: { inputRecordCount: n, outputRecordCount: 0, failedRecordCount: n },
      errors: [
        { code: STREAMING_VALIDATION_ERROR, description: `${n} record(s) failed XDM validation`, recordCount: n },
      ],
    }),
    failedFiles: files,
    metaFiles: new Map(),
  };
}
