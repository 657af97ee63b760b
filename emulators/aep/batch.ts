/**
 * Batch Ingestion API (create a batch, upload JSON Lines files, signal COMPLETE) and the Catalog batch status.
 * https://github.com/AdobeDocs/experience-platform.en/blob/main/help/ingestion/batch-ingestion/api-overview.md
 * https://github.com/AdobeDocs/experience-platform-apis/blob/main/static/swagger-specs/batch-ingestion.yaml
 *
 * Platform promotes a completed batch asynchronously (loading → staging → processing → success|failed). The emulator
 * settles it during the COMPLETE call, so the first Catalog read after COMPLETE already shows the final status.
 */
import { randomBytes } from 'node:crypto';
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
  corrupt: { code: 'INGEST-1401-400', description: 'The row has corrupted data and cannot be read or parsed. Fix the corrupted data and try again.' },
  missing: { code: 'INGEST-1555-400', description: 'A required field is either missing or has a value of null. Add the required field to the input row and try again.' },
  /** Other schema violations: Adobe does not publish a code for them; this one is the emulator's. */
  schema: { code: 'EMULATOR-XDM-400', description: "The row does not conform to the dataset's XDM schema." },
  noDiagnostics: {
    code: 'INGEST-1211-400',
    description: 'Encountered errors while parsing, converting or otherwise validating the data. Please resend the data with error diagnostics enabled to collect additional information on failure types',
  },
} as const;
type ErrorKind = 'corrupt' | 'missing' | 'schema';

interface RowFailure {
  readonly row: number;
  readonly kind: ErrorKind;
  readonly message: string;
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

export type BatchStatus = 'loading' | 'success' | 'failed' | 'aborted';

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
}

export class BatchIngestion {
  readonly #ctx: EmulatorContext;
  readonly #batches = new Map<string, Batch>();

  constructor(ctx: EmulatorContext) {
    this.#ctx = ctx;
  }

  /** `POST /data/foundation/import/batches` */
  async create(ex: Exchange, grant: IssuedToken, nowMs: number): Promise<void> {
    const read = await readBody(ex, MAX_CREATE_BYTES);
    if (read.tooLarge) return sendJson(ex, 413, problem(413, 'Request body too large'));
    const parsed = parseJson(read.body);
    if (!parsed.ok) return sendJson(ex, 400, problem(400, `Request body is not valid JSON: ${parsed.error}`));
    const body = parsed.value as Record<string, unknown> | null;
    const datasetId = body?.['datasetId'];
    if (typeof datasetId !== 'string') return sendJson(ex, 400, problem(400, 'datasetId is required'));
    if (!this.#ctx.datasets.has(datasetId)) return sendJson(ex, 400, problem(400, `Dataset ${datasetId} does not exist`));
    const inputFormat = body?.['inputFormat'] as Record<string, unknown> | undefined;
    const format = typeof inputFormat?.['format'] === 'string' ? inputFormat['format'].toLowerCase() : undefined;
    if (format === undefined) return sendJson(ex, 400, problem(400, 'inputFormat.format is required'));
    if (format !== 'json') {
      return sendJson(ex, 400, problem(400, `inputFormat.format ${format}: the emulator ingests JSON (JSON Lines) only`));
    }
    if (inputFormat?.['isMultiLineJson'] === true) {
      return sendJson(ex, 400, problem(400, 'isMultiLineJson: the emulator ingests single-line JSON (JSON Lines) only'));
    }
    // The current docs name it partialIngestionPercent; an older page says partialIngestionPercentage. Both are read.
    const percent = body?.['partialIngestionPercent'] ?? body?.['partialIngestionPercentage'];
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
      errorDiagnostics: body?.['enableErrorDiagnostics'] === true || percent !== undefined,
      inputFormat: { format },
    };
    this.#batches.set(batch.id, batch);
    sendJson(ex, 201, this.#describe(batch));
  }

  /** `PUT /data/foundation/import/batches/{batchId}/datasets/{datasetId}/files/{name}`: validates line by line. */
  async upload(ex: Exchange, grant: IssuedToken, batchId: string, datasetId: string, name: string, nowMs: number): Promise<void> {
    const batch = this.#find(batchId, grant);
    if (batch === undefined) return reply(ex, 404, problem(404, `Batch ${batchId} not found`));
    if (datasetId !== batch.datasetId) return reply(ex, 404, problem(404, `Dataset ${datasetId} is not part of batch ${batchId}`));
    if (batch.status !== 'loading') {
      return reply(ex, 400, problem(400, `Batch ${batchId} is ${batch.status}: files can only be uploaded while it is loading`));
    }
    if (name === '') return reply(ex, 400, problem(400, 'File name is required'));
    const contentType = (header(ex, 'content-type') ?? '').toLowerCase();
    if (!contentType.startsWith('application/octet-stream')) {
      return reply(ex, 415, problem(415, `Content-Type must be application/octet-stream, got ${contentType || 'none'}`));
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
        failures.push({ row: line.number, kind: 'schema', message: `record is ${line.bytes} bytes, over the ${MAX_RECORD_BYTES}-byte record limit` });
        continue;
      }
      const parsed = parseJson(line.text);
      if (!parsed.ok) {
        failures.push({ row: line.number, kind: 'corrupt', message: parsed.error });
        continue;
      }
      const problems = checkXdmRecord(parsed.value, { ...options, sizeBytes: line.bytes });
      if (problems.length > 0) {
        failures.push({ row: line.number, kind: classify(problems), message: problems.map((p) => `${p.pointerToViolation}: ${p.message}`).join('; ') });
        continue;
      }
      ids.push((parsed.value as { _id: string })._id);
      entities?.push(parsed.value);
    }
    if (ex.bytes > MAX_UPLOAD_BYTES) {
      return sendJson(ex, 413, problem(413, `File of ${ex.bytes} bytes is over the ${MAX_UPLOAD_BYTES}-byte limit of a single PUT; use the large file upload`));
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
        // Safe to retry: a batch that already settled keeps its outcome, and its records are accepted only once.
        if (batch.status === 'loading') this.#settle(batch, nowMs);
        return reply(ex, 200);
      case 'ABORT':
      case 'FAIL':
        if (batch.status === 'success') return reply(ex, 400, problem(400, `Batch ${batchId} already succeeded`));
        if (batch.status === 'loading') {
          batch.status = action.toUpperCase() === 'ABORT' ? 'aborted' : 'failed';
          batch.updated = nowMs;
          batch.completed = nowMs;
        }
        return reply(ex, 200);
      case 'REVERT':
        return reply(ex, 501, problem(501, 'action=REVERT is not emulated'));
      default:
        return reply(ex, 400, problem(400, `Unknown action ${action}: expected COMPLETE, ABORT, FAIL or REVERT`));
    }
  }

  /** `GET /data/foundation/catalog/batches/{batchId}` → `{"<batchId>": {...}}`
   * https://github.com/AdobeDocs/experience-platform.en/blob/main/help/ingestion/batch-ingestion/partial.md */
  async catalog(ex: Exchange, grant: IssuedToken, batchId: string): Promise<void> {
    const batch = this.#find(batchId, grant);
    if (batch === undefined) return reply(ex, 404, problem(404, `Batch ${batchId} not found`));
    return reply(ex, 200, { [batch.id]: this.#describe(batch) });
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

  #settle(batch: Batch, nowMs: number): void {
    const files = [...batch.files.values()];
    const input = files.reduce((n, f) => n + f.records, 0);
    const failures = [...batch.files].flatMap(([file, f]) => f.failures.map((failure) => ({ ...failure, file })));
    const failed = failures.length;
    const withinThreshold = batch.partialIngestionPercent !== undefined && failed * 100 <= batch.partialIngestionPercent * input;
    const succeeded = files.length > 0 && (failed === 0 || withinThreshold);

    batch.status = succeeded ? 'success' : 'failed';
    batch.updated = nowMs;
    batch.completed = nowMs;
    batch.metrics = {
      inputByteSize: files.reduce((n, f) => n + f.bytes, 0),
      inputFileCount: files.length,
      inputRecordCount: input,
      outputRecordCount: succeeded ? input - failed : 0,
      failedRecordCount: failed,
    };
    const errors: unknown[] = [];
    if (files.length === 0) {
      errors.push({ code: 'EMULATOR-EMPTY-BATCH', description: `Batch ${batch.id} was completed without any file` });
    } else if (failed > 0 && !batch.errorDiagnostics) {
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
    }
    if (errors.length > 0) batch.errors = errors;
    if (!succeeded) return;
    for (const file of files) {
      file.ids.forEach((id, i) => this.#ctx.accepted.add(batch.datasetId, id, file.entities?.[i]));
    }
  }

  #describe(batch: Batch): Record<string, unknown> {
    const user = `${batch.clientId}@techacct.adobe.com`;
    const tags: Record<string, unknown> = {};
    if (batch.errorDiagnostics) tags['acp_enableErrorDiagnostics'] = true;
    if (batch.partialIngestionPercent !== undefined) tags['acp_partialIngestionPercent'] = batch.partialIngestionPercent;
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

function classify(problems: XdmProblem[]): ErrorKind {
  return problems.some((p) => p.keyword === 'required' || p.message.startsWith('null value')) ? 'missing' : 'schema';
}

/** Platform-style problem body (the emulator's wording). */
function problem(status: number, detail: string): Record<string, unknown> {
  return { type: 'https://ns.adobe.com/aep/errors/batch-ingestion', status, title: titleOf(status), detail };
}

function titleOf(status: number): string {
  return { 400: 'Bad Request', 404: 'Not Found', 413: 'Payload Too Large', 415: 'Unsupported Media Type', 501: 'Not Implemented' }[status] ?? 'Error';
}

/** A ULID-shaped id like Catalog's (`01EQ1C48TR4GD4FE7NH2522TCQ`): 48-bit time, 80 random bits, Crockford base32. */
function newBatchId(nowMs: number): string {
  const alphabet = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
  let time = '';
  for (let t = nowMs, i = 0; i < 10; i += 1, t = Math.floor(t / 32)) time = alphabet[t % 32] + time;
  let random = '';
  for (const byte of randomBytes(16)) random += alphabet[byte % 32];
  return time + random;
}
