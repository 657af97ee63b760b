/**
 * Batch Ingestion API (create a batch, upload JSON Lines files, signal COMPLETE) and the Catalog batch status.
 * https://github.com/AdobeDocs/experience-platform.en/blob/main/help/ingestion/batch-ingestion/api-overview.md
 * https://github.com/AdobeDocs/experience-platform-apis/blob/main/static/swagger-specs/batch-ingestion.yaml
 *
 * "The `200 OK` response from the API means that the batch has been accepted for processing - it is not active until
 * it transitions to its final state" (help/ingestion/batch-ingestion/troubleshooting.md, Batch States): after COMPLETE
 * a batch is `staging`, then `success` or `failed`, each step after `batchSettleDelayMs` (or at once on `settle()`).
 * A `promotion` fault makes it walk other documented states (`retrying`, `stalled`, `failure`, …).
 */
import { type CatalogBatch, newBatchId, type StoredFile } from './catalog.ts';
import { type EmulatorContext, reply } from './context.ts';
import { type Exchange, header, parseJson, readBody, readLines, sendJson } from './http.ts';
import type { IssuedToken } from './ims.ts';
import { checkXdmRecord, MAX_RECORD_BYTES, type XdmProblem } from './xdm-checks.ts';

/** "Due to gateway size and timeout limits, there is currently a size threshold of 256MB" per PUT (batch-ingestion.yaml).
 * 256 × 10^6 rather than 256 × 2^20: the stricter reading, so a file that fits here fits there. */
export const MAX_UPLOAD_BYTES = 256_000_000;
/** A batch-create body is a few fields; the bound is the emulator's. */
const MAX_CREATE_BYTES = 1024 * 1024;
/** Failed rows kept per error code as samples in the Catalog `errors` (the emulator's own detail field). */
const MAX_SAMPLES = 10;
const BLANK = /^\s*$/;

/** Error codes and descriptions Catalog reports for rows that fail.
 * https://github.com/AdobeDocs/experience-platform.en/blob/main/help/ingestion/batch-ingestion/partial.md */
const ERRORS = {
  corrupt: {
    code: 'INGEST-1401-400',
    description: 'The row has corrupted data and cannot be read or parsed. Fix the corrupted data and try again.',
  },
  missing: {
    code: 'INGEST-1555-400',
    description:
      'A required field is either missing or has a value of null. Add the required field to the input row and try again.',
  },
  /** Other schema violations: Adobe does not publish a code for them; this one is the emulator's. */
  schema: { code: 'EMULATOR-XDM-400', description: "The row does not conform to the dataset's XDM schema." },
  noDiagnostics: {
    code: 'INGEST-1211-400',
    description:
      'Encountered errors while parsing, converting or otherwise validating the data. Please resend the data with error diagnostics enabled to collect additional information on failure types',
  },
} as const;
type ErrorKind = 'corrupt' | 'missing' | 'schema';

/** "Dataset file is empty. Please upload file with data." fails the batch (troubleshooting.md, "What happens after a
 * batch fails?"; status code 106 "The dataset file is empty"). */
const EMPTY_FILE = {
  code: '106',
  description: 'Dataset file is empty. Please upload file with data.',
  rows: [] as string[],
};

/**
 * Enforced batch guardrails: "The maximum number of files per batch is 25,000" and "The maximum batch size is 1 TB",
 * beyond which a batch fails at ingestion with an error naming the threshold (AdobeDocs/experience-platform.en
 * help/ingestion/guardrails.md, "Guardrails for batch ingestion"; the error's example gives 1 TB as 1099511627776
 * bytes). Adobe shows no error code for it: the code is the emulator's.
 */
export const MAX_FILES_PER_BATCH = 25_000;
export const MAX_BATCH_BYTES = 1_099_511_627_776;

/** The failure of a completed batch over an enforced guardrail, worded as Platform words it; undefined within them. */
export function guardrailFailure(files: number, bytes: number): { code: string; description: string } | undefined {
  const over = [
    ...(files > MAX_FILES_PER_BATCH ? [`${files} files (over the ${MAX_FILES_PER_BATCH} threshold)`] : []),
    ...(bytes > MAX_BATCH_BYTES ? [`${bytes} bytes (over the ${MAX_BATCH_BYTES} threshold)`] : []),
  ];
  if (over.length === 0) return undefined;
  return { code: 'EMULATOR-GUARDRAIL', description: `Batch ingestion guardrails hit: ${over.join('; ')}` };
}

/** Codes inside a row error file's `_errors` (error-diagnostics.md shows `"code": "1401"` for a corrupt row). */
const ROW_ERROR_CODES: Record<ErrorKind, string> = { corrupt: '1401', missing: '1555', schema: 'EMULATOR-XDM' };

interface RowFailure {
  readonly row: number;
  readonly kind: ErrorKind;
  readonly message: string;
  /** The row's text (kept for the error diagnostics file). */
  readonly text: string | undefined;
}

interface BatchFile {
  readonly bytes: number;
  /** Lines holding a record (blank lines are not records). */
  readonly records: number;
  readonly ids: string[];
  /** Parsed records, kept only with `keep: 'records'`. */
  readonly entities: unknown[] | undefined;
  readonly failures: RowFailure[];
}

/** Catalog's status words (catalog.yaml `batchResponse.status`); the emulator reaches those listed here and
 * `loading`/`aborted`. */
export const PROMOTION_STATES = [
  'staging',
  'processing',
  'loaded',
  'queued',
  'retrying',
  'stalled',
  'success',
  'active',
  'failed',
  'failure',
  'abandoned',
] as const;
export type BatchStatus = 'loading' | 'aborted' | (typeof PROMOTION_STATES)[number];
/** States after which nothing changes any more. */
const _FINAL = new Set<BatchStatus>(['success', 'active', 'failed', 'failure', 'stalled', 'abandoned', 'aborted']);

interface Batch {
  readonly id: string;
  readonly datasetId: string;
  readonly orgId: string;
  readonly clientId: string;
  readonly created: number;
  updated: number;
  completed?: number;
  status: BatchStatus;
  readonly files: Map<string, BatchFile>;
  readonly partialIngestionPercent: number | undefined;
  readonly errorDiagnostics: boolean;
  readonly inputFormat: { format: string };
  metrics?: Record<string, number>;
  errors?: unknown[];
  /** Error diagnostics files (`row_errors` directory), once settled with diagnostics enabled. */
  rowErrors?: StoredFile[];
  /** After COMPLETE: the states still to walk, when the next one is due, and what the batch's data comes to. */
  promotion?: { states: BatchStatus[]; nextAt: number; readonly succeeded: boolean };
}

export class BatchIngestion {
  readonly #ctx: EmulatorContext;
  readonly #delayMs: number;
  readonly #batches = new Map<string, Batch>();
  /** States the next completed batch walks through instead of `staging` → outcome (a `promotion` fault). */
  readonly #nextPromotions: Array<{ states: BatchStatus[] }> = [];

  constructor(ctx: EmulatorContext, settleDelayMs = 0) {
    this.#ctx = ctx;
    this.#delayMs = settleDelayMs;
  }

  /** The next batch completed walks `states`; the last one is final (records are accepted only on success/active). */
  queuePromotion(states: BatchStatus[]): void {
    this.#nextPromotions.push({ states });
  }

  /** `POST /data/foundation/import/batches` */
  async create(ex: Exchange, grant: IssuedToken, nowMs: number): Promise<void> {
    const read = await readBody(ex, MAX_CREATE_BYTES);
    if (read.tooLarge) return sendJson(ex, 413, problem(413, 'Request body too large'));
    const parsed = parseJson(read.body);
    if (!parsed.ok) return sendJson(ex, 400, problem(400, `Request body is not valid JSON: ${parsed.error}`));
    const body = parsed.value as Record<string, unknown> | null;
    const datasetId = body?.datasetId;
    if (typeof datasetId !== 'string') return sendJson(ex, 400, problem(400, 'datasetId is required'));
    if (!this.#ctx.datasets.has(datasetId))
      return sendJson(ex, 400, problem(400, `Dataset ${datasetId} does not exist`));
    const inputFormat = body?.inputFormat as Record<string, unknown> | undefined;
    const format = typeof inputFormat?.format === 'string' ? inputFormat.format.toLowerCase() : undefined;
    if (format === undefined) return sendJson(ex, 400, problem(400, 'inputFormat.format is required'));
    if (format !== 'json') {
      return sendJson(
        ex,
        400,
        problem(400, `inputFormat.format ${format}: the emulator ingests JSON (JSON Lines) only`),
      );
    }
    if (inputFormat?.isMultiLineJson === true) {
      return sendJson(
        ex,
        400,
        problem(400, 'isMultiLineJson: the emulator ingests single-line JSON (JSON Lines) only'),
      );
    }
    // The current docs name it partialIngestionPercent; an older page says partialIngestionPercentage. Both are read.
    const percent = body?.partialIngestionPercent ?? body?.partialIngestionPercentage;
    if (percent !== undefined && (typeof percent !== 'number' || !(percent > 0 && percent <= 100))) {
      return sendJson(ex, 400, problem(400, 'partialIngestionPercent must be a number in (0, 100]'));
    }
    const batch: Batch = {
      id: newBatchId(nowMs),
      datasetId,
      orgId: grant.orgId,
      clientId: grant.clientId,
      created: nowMs,
      updated: nowMs,
      status: 'loading',
      files: new Map(),
      partialIngestionPercent: percent,
      errorDiagnostics: body?.enableErrorDiagnostics === true || percent !== undefined,
      inputFormat: { format },
    };
    this.#batches.set(batch.id, batch);
    sendJson(ex, 201, this.#describe(batch));
  }

  /** `PUT /data/foundation/import/batches/{batchId}/datasets/{datasetId}/files/{name}`: validates line by line. */
  async upload(
    ex: Exchange,
    grant: IssuedToken,
    batchId: string,
    datasetId: string,
    name: string,
    nowMs: number,
    /** An asynchronous `partial` fault: every Nth record of the file fails the schema check at COMPLETE. */
    refuse?: { readonly everyNth: number; readonly message?: string },
  ): Promise<void> {
    const batch = this.#find(batchId, grant);
    if (batch === undefined) return reply(ex, 404, problem(404, `Batch ${batchId} not found`));
    if (datasetId !== batch.datasetId)
      return reply(ex, 404, problem(404, `Dataset ${datasetId} is not part of batch ${batchId}`));
    // Files go into a batch while it is `loading` ("the client is currently writing data for the batch"); they must
    // all be uploaded before COMPLETE, and an aborted batch is over (troubleshooting.md, "Batch States" and "Why is
    // the uploaded data not appearing in the dataset?").
    if (batch.status !== 'loading') {
      return reply(
        ex,
        400,
        problem(400, `Batch ${batchId} is ${batch.status}: files can only be uploaded while it is loading`),
      );
    }
    if (name === '') return reply(ex, 400, problem(400, 'File name is required'));
    const contentType = (header(ex, 'content-type') ?? '').toLowerCase();
    if (!contentType.startsWith('application/octet-stream')) {
      return reply(
        ex,
        415,
        problem(415, `Content-Type must be application/octet-stream, got ${contentType || 'none'}`),
      );
    }

    const keepRecords = this.#ctx.accepted.keep === 'records';
    const ids: string[] = [];
    const entities: unknown[] | undefined = keepRecords ? [] : undefined;
    const failures: RowFailure[] = [];
    let records = 0;
    const schemaCheck = this.#ctx.schemaCheck === undefined ? {} : { schemaCheck: this.#ctx.schemaCheck, datasetId };
    const options = { tenant: this.#ctx.tenant, nowMs, allowEpochMillisTimestamp: true, ...schemaCheck };
    for await (const line of readLines(ex, MAX_RECORD_BYTES, MAX_UPLOAD_BYTES)) {
      if (line.text !== undefined && BLANK.test(line.text)) continue;
      records += 1;
      if (line.text === undefined) {
        failures.push({
          row: line.number,
          kind: 'schema',
          message: `record is ${line.bytes} bytes, over the ${MAX_RECORD_BYTES}-byte record limit`,
          text: undefined,
        });
        continue;
      }
      const parsed = parseJson(line.text);
      if (!parsed.ok) {
        failures.push({ row: line.number, kind: 'corrupt', message: parsed.error, text: line.text });
        continue;
      }
      const problems = checkXdmRecord(parsed.value, { ...options, sizeBytes: line.bytes });
      if (refuse !== undefined && records % refuse.everyNth === 0) {
        const message = refuse.message ?? 'the value does not match the schema';
        problems.push({ pointerToViolation: '#', keyword: 'type', message });
      }
      if (problems.length > 0) {
        const message = problems.map((p) => `${p.pointerToViolation}: ${p.message}`).join('; ');
        failures.push({ row: line.number, kind: classify(problems), message, text: line.text });
        continue;
      }
      ids.push((parsed.value as { _id: string })._id);
      entities?.push(parsed.value);
    }
    if (ex.bytes > MAX_UPLOAD_BYTES) {
      return sendJson(
        ex,
        413,
        problem(
          413,
          `File of ${ex.bytes} bytes is over the ${MAX_UPLOAD_BYTES}-byte limit of a single PUT; use the large file upload`,
        ),
      );
    }
    // PUT is idempotent on the file path: a re-upload replaces the file.
    batch.files.set(name, { bytes: ex.bytes, records, ids, entities, failures });
    batch.updated = nowMs;
    sendJson(ex, 200);
  }

  /** `POST /data/foundation/import/batches/{batchId}?action=COMPLETE|ABORT|FAIL` */
  async signal(ex: Exchange, grant: IssuedToken, batchId: string, action: string, nowMs: number): Promise<void> {
    const batch = this.#find(batchId, grant);
    if (batch === undefined) return reply(ex, 404, problem(404, `Batch ${batchId} not found`));
    switch (action.toUpperCase()) {
      case 'COMPLETE':
        if (batch.status === 'aborted') return reply(ex, 400, problem(400, `Batch ${batchId} was aborted`));
        // Safe to retry: a batch already signalled keeps its course, and its records are accepted only once.
        if (batch.status === 'loading') this.#complete(batch, nowMs);
        return reply(ex, 200);
      case 'ABORT':
      case 'FAIL': {
        const target = action.toUpperCase() === 'ABORT' ? 'aborted' : 'failed';
        if (batch.status === target) return reply(ex, 200);
        // "Once a batch is in the Loaded state, the batch cannot be aborted" (troubleshooting.md, Batch States).
        if (batch.status !== 'loading') {
          const why = `Batch ${batchId} is ${batch.status}: only a loading batch can be ${target}`;
          return reply(ex, 400, problem(400, why));
        }
        batch.status = target;
        batch.updated = nowMs;
        batch.completed = nowMs;
        return reply(ex, 200);
      }
      case 'REVERT':
        return reply(ex, 501, problem(501, 'action=REVERT is not emulated'));
      default:
        return reply(ex, 400, problem(400, `Unknown action ${action}: expected COMPLETE, ABORT, FAIL or REVERT`));
    }
  }

  /** Moves completed batches on to the states that are due (all of them with `all`). */
  advance(nowMs: number, all = false): void {
    for (const batch of this.#batches.values()) {
      const p = batch.promotion;
      while (p !== undefined && p.states.length > 0 && (all || nowMs >= p.nextAt)) {
        batch.status = p.states.shift() as BatchStatus;
        batch.updated = Math.max(nowMs, p.nextAt);
        p.nextAt = batch.updated + this.#delayMs;
        if (p.states.length === 0) this.#finish(batch, batch.updated, p.succeeded);
      }
    }
  }

  /** The batches as Catalog and the Data Access API see them. */
  catalogBatches(): CatalogBatch[] {
    return [...this.#batches.values()].map((batch) => this.#catalogView(batch));
  }

  find(batchId: string): CatalogBatch | undefined {
    const batch = this.#batches.get(batchId);
    return batch === undefined ? undefined : this.#catalogView(batch);
  }

  /** Batch id → status, file names and records currently in its files. */
  summary(): Record<string, { status: string; files: string[]; records: number }> {
    const out: Record<string, { status: string; files: string[]; records: number }> = {};
    for (const batch of this.#batches.values()) {
      let records = 0;
      for (const file of batch.files.values()) records += file.records;
      out[batch.id] = { status: batch.status, files: [...batch.files.keys()], records };
    }
    return out;
  }

  #find(batchId: string, grant: IssuedToken): Batch | undefined {
    const batch = this.#batches.get(batchId);
    return batch !== undefined && batch.orgId === grant.orgId ? batch : undefined;
  }

  #catalogView(batch: Batch): CatalogBatch {
    return {
      id: batch.id,
      orgId: batch.orgId,
      datasetId: batch.datasetId,
      created: batch.created,
      view: () => this.#describe(batch),
      failedFiles: [],
      metaFiles: batch.rowErrors === undefined ? new Map() : new Map([['row_errors', batch.rowErrors]]),
    };
  }

  /** COMPLETE: judges the data now, then lets the batch walk its states (`staging` → outcome unless a fault says). */
  #complete(batch: Batch, nowMs: number): void {
    const files = [...batch.files.values()];
    const input = files.reduce((n, f) => n + f.records, 0);
    const failed = files.reduce((n, f) => n + f.failures.length, 0);
    const withinThreshold =
      batch.partialIngestionPercent !== undefined && failed * 100 <= batch.partialIngestionPercent * input;
    const empty = files.length === 0 || files.some((f) => f.records === 0);
    const overGuardrail = guardrailFailure(files.length, bytesOf(files)) !== undefined;
    const succeeded = !empty && !overGuardrail && (failed === 0 || withinThreshold);
    const queued = this.#nextPromotions.shift();
    const states = queued?.states.slice() ?? ['staging', succeeded ? 'success' : 'failed'];
    batch.completed = nowMs;
    batch.updated = nowMs;
    batch.status = states.shift() as BatchStatus;
    const last = states.length === 0 ? batch.status : (states[states.length - 1] as BatchStatus);
    const ok = succeeded && (last === 'success' || last === 'active');
    batch.promotion = { states, nextAt: nowMs + this.#delayMs, succeeded: ok };
    if (states.length === 0) this.#finish(batch, nowMs, ok);
  }

  /** Final state reached: metrics, errors and error diagnostics; a successful batch's valid records are accepted. */
  #finish(batch: Batch, nowMs: number, succeeded: boolean): void {
    const files = [...batch.files.values()];
    const input = files.reduce((n, f) => n + f.records, 0);
    const failures = [...batch.files].flatMap(([file, f]) => f.failures.map((failure) => ({ ...failure, file })));
    const failed = failures.length;
    batch.completed = nowMs;
    batch.metrics = {
      inputByteSize: bytesOf(files),
      inputFileCount: files.length,
      inputRecordCount: input,
      outputRecordCount: succeeded ? input - failed : 0,
      failedRecordCount: failed,
    };
    const errors: unknown[] = [];
    if (files.length === 0) {
      errors.push({ code: 'EMULATOR-EMPTY-BATCH', description: `Batch ${batch.id} was completed without any file` });
    } else if (files.some((f) => f.records === 0)) {
      errors.push(EMPTY_FILE);
    }
    const guardrail = guardrailFailure(files.length, bytesOf(files));
    if (guardrail !== undefined) errors.push(guardrail);
    if (failed > 0 && !batch.errorDiagnostics) {
      errors.push(ERRORS.noDiagnostics);
    } else if (failed > 0) {
      if (succeeded) {
        errors.push({
          code: 'INGEST-1212-400',
          description: `Encountered ${failed} errors in the data. Successfully ingested ${input - failed} rows. Please review the associated diagnostic files for more details.`,
        });
      }
      for (const kind of ['corrupt', 'missing', 'schema'] as const) {
        const ofKind = failures.filter((f) => f.kind === kind);
        if (ofKind.length === 0) continue;
        errors.push({
          ...ERRORS[kind],
          recordCount: ofKind.length,
          samples: ofKind.slice(0, MAX_SAMPLES).map((f) => ({ file: f.file, row: f.row, message: f.message })),
        });
      }
      batch.rowErrors = rowErrorFiles(failures);
    }
    if (errors.length > 0) batch.errors = errors;
    if (!succeeded) return;
    for (const file of files) {
      for (const [i, id] of file.ids.entries()) this.#ctx.accepted.add(batch.datasetId, id, file.entities?.[i]);
    }
  }

  #describe(batch: Batch): Record<string, unknown> {
    const user = `${batch.clientId}@techacct.adobe.com`;
    const tags: Record<string, unknown> = {};
    if (batch.errorDiagnostics) tags.acp_enableErrorDiagnostics = true;
    if (batch.partialIngestionPercent !== undefined) tags.acp_partialIngestionPercent = batch.partialIngestionPercent;
    return {
      id: batch.id,
      externalId: batch.id,
      imsOrg: batch.orgId,
      status: batch.status,
      created: batch.created,
      updated: batch.updated,
      ...(batch.completed === undefined ? {} : { started: batch.completed, completed: batch.completed }),
      relatedObjects: [{ type: 'dataSet', id: batch.datasetId }],
      inputFormat: batch.inputFormat,
      tags,
      ...(batch.metrics === undefined ? {} : { metrics: batch.metrics }),
      ...(batch.errors === undefined ? {} : { errors: batch.errors }),
      version: '1.0.0',
      createdClient: batch.clientId,
      createdUser: user,
      updatedUser: user,
    };
  }
}

function bytesOf(files: readonly BatchFile[]): number {
  return files.reduce((n, f) => n + f.bytes, 0);
}

function classify(problems: XdmProblem[]): ErrorKind {
  return problems.some((p) => p.keyword === 'required' || p.message.startsWith('null value')) ? 'missing' : 'schema';
}

/** Platform-style problem body (the emulator's wording). */
function problem(status: number, detail: string): Record<string, unknown> {
  return { type: 'https://ns.adobe.com/aep/errors/batch-ingestion', status, title: titleOf(status), detail };
}

function titleOf(status: number): string {
  return (
    {
      400: 'Bad Request',
      404: 'Not Found',
      413: 'Payload Too Large',
      415: 'Unsupported Media Type',
      501: 'Not Implemented',
    }[status] ?? 'Error'
  );
}

/**
 * Error diagnostics files, `row_errors/parsing_errors_0.json` (unreadable rows, `_corrupt_record`) and
 * `row_errors/conversion_errors_0.json` (rows that do not fit the schema: the row with its `_errors`).
 * https://github.com/AdobeDocs/experience-platform.en/blob/main/help/ingestion/quality/error-diagnostics.md
 */
function rowErrorFiles(failures: Array<RowFailure & { file: string }>): StoredFile[] {
  const files: StoredFile[] = [];
  for (const [name, corrupt] of [
    ['parsing_errors_0.json', true],
    ['conversion_errors_0.json', false],
  ] as const) {
    const lines = failures
      .filter((f) => (f.kind === 'corrupt') === corrupt)
      .map((f) => {
        const parsed = corrupt || f.text === undefined ? undefined : parseJson(f.text);
        const row =
          parsed?.ok === true && typeof parsed.value === 'object' && parsed.value !== null ? parsed.value : {};
        const errors = [{ code: ROW_ERROR_CODES[f.kind], message: f.message }];
        return JSON.stringify(
          corrupt
            ? { _corrupt_record: f.text, _errors: errors, _filename: name }
            : { ...row, _errors: errors, _filename: name },
        );
      });
    if (lines.length > 0) files.push({ name, text: `${lines.join('\n')}\n` });
  }
  return files;
}
