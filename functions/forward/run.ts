/**
 * Forwards one committed window: reads its manifest and parts, maps each staged event to XDM, sends it once, and
 * writes a receipt per part. Exactly-once machinery:
 * - a window-wide ledger of delivered ids (from every earlier run's and part's receipts) turns repeats into
 *   `duplicate` rejections (kept in rejected/), so a forced re-export or an SQS redelivery sends nothing twice;
 * - a part that is cut short (deadline, error) saves its progress — the resume line and the ids it already
 *   delivered — and the next attempt continues from there.
 * Every staged line ends as accepted or as rejected with a reason: `manifest.events = Σ accepted + Σ rejected`.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { Buffer } from 'node:buffer';
import { gzipSync } from 'node:zlib';
import type { SendResult, SinkRecord } from '#aep/streaming';
import type { Log } from '#common/log';
import type { Mapper } from '#mapping/mapper';
import type { PartRef, StagingLayout, WindowRef } from '#staging/layout';
import { type Manifest, parseManifest } from '#staging/manifest';
import { failureText, getBytes, getJson, getText, putJson } from '#staging/s3';
import { type RetryPolicy, withRetry } from '#common/retry';
import { ConnectorError, kindFromCause } from '#common/errors';
import { ChunkArena } from './arena.ts';
import { WindowLease } from './lease.ts';
import { IdSet, PartLedger } from './ledger.ts';
import { loadNeighbourLedgers } from './neighbours.ts';
import { readPartLines } from './part-reader.ts';
import type { Receipt, WindowReceipt } from './receipt.ts';

/** Records handed to the sink at once; progress is saved after each chunk. */
export const CHUNK_RECORDS = 5_000;
/** Parts forwarded at the same time by one invocation (each has its own requests in flight). */
export const PART_CONCURRENCY = 2;

/** What the forwarder needs from a sink: streaming (DCS batch endpoint) or Platform batch ingestion. */
export type RecordSink =
  | { readonly kind: 'streaming'; send(records: readonly SinkRecord[], opts: { deadlineMs?: number }): Promise<SendResult> }
  | { readonly kind: 'batch'; readonly batches: BatchApi };

/** The part of the Batch Ingestion client the forwarder uses (see aep/batch.ts). */
export interface BatchApi {
  createBatch(): Promise<string>;
  uploadFile(batchId: string, name: string, body: () => AsyncIterable<string>): Promise<unknown>;
  completeBatch(batchId: string): Promise<void>;
  batchStatus(batchId: string): Promise<{ readonly status: string }>;
}

/** How long the forwarder waits for Platform to finish a completed batch before it reports it as still loading. */
export const BATCH_STATUS_WAIT_MS = 60_000;

/**
 * Progress saves (ledger, receipt, rejects) are retried beyond the S3 client's own 3 attempts: a save that is given up
 * after records were accepted means those records are sent again on the next attempt. Bounded by the deadline plus
 * this grace (the handler keeps 30 s between the sending deadline and the Lambda timeout).
 */
export const SAVE_RETRY: RetryPolicy = { maxAttempts: 6, baseDelayMs: 500, maxDelayMs: 8_000, maxRetryAfterMs: 8_000 };
export const SAVE_GRACE_MS = 20_000;

/** A sink failure that carries what was settled before it (e.g. `StreamingDeliveryError`). */
interface FailureWithResult {
  readonly result: SendResult;
}

export interface ForwardDeps {
  readonly s3: S3Client;
  readonly bucket: string;
  readonly layout: StagingLayout;
  readonly sink: RecordSink;
  /** The mapper for a manifest's project settings (compiled once per project). */
  readonly mapperFor: (manifest: Manifest) => Mapper;
  readonly now: () => number;
  readonly log: Log;
  /** Waits between retries of a progress save (real timers by default). */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Absolute epoch ms by which the invocation must have stopped sending. */
  readonly deadlineMs?: number;
  readonly partConcurrency?: number;
  readonly chunkRecords?: number;
}

export interface ForwardOptions {
  /** Re-send everything on purpose (operator replay): ignores earlier receipts, writes its own. */
  readonly replay?: boolean;
}

export interface WindowForwardResult {
  readonly manifestKey: string;
  readonly window: string;
  readonly runId: string;
  /** Reconciliation: lines Mixpanel returned = events + quarantined = accepted + rejected + quarantined (once complete). */
  readonly exported: number;
  readonly quarantined: number;
  readonly events: number;
  readonly parts: number;
  readonly partsSkipped: number;
  readonly accepted: number;
  readonly rejected: number;
  readonly byReason: Record<string, number>;
  readonly retried: number;
  readonly ambiguous: number;
  /** False when the deadline stopped it: the caller reports the message for redelivery. */
  readonly complete: boolean;
  readonly replay: boolean;
  /** Batch sink: the Platform batch of this run and its last known status. */
  readonly batch?: { readonly id: string; readonly status: string };
}

interface BatchState {
  batchId: string;
  status: string;
  completedAt?: string;
}

/**
 * A window could not be forwarded completely. What was delivered is recorded in its receipts and ledgers; SQS
 * redelivers the message and the next attempt resumes there. `cause` is the original failure.
 */
export class WindowForwardError extends ConnectorError {
  readonly window: string;
  constructor(window: string, message: string, cause: unknown) {
    super(kindFromCause(cause), message, { cause });
    this.name = 'WindowForwardError';
    this.window = window;
  }
}

export class ManifestMissingError extends ConnectorError {
  constructor(key: string) {
    super('permanent', `no manifest at ${key}: the window is not committed (or was removed); nothing to forward`);
    this.name = 'ManifestMissingError';
  }
}

export async function forwardWindow(ref: WindowRef, deps: ForwardDeps, opts: ForwardOptions = {}): Promise<WindowForwardResult> {
  const manifestKey = deps.layout.manifestKey(ref);
  const text = await getText(deps.s3, deps.bucket, manifestKey);
  if (text === undefined) throw new ManifestMissingError(manifestKey);
  const manifest = parseManifest(text, manifestKey);
  const replay = opts.replay === true;
  const runId = replay ? `${manifest.runId}.replay-${new Date(deps.now()).toISOString().replace(/[-:.]/g, '')}` : manifest.runId;
  const mapper = deps.mapperFor(manifest);

  // One forwarder per window at a time; the ledgers are read only once the lease is held.
  const lease = await WindowLease.acquire({
    s3: deps.s3,
    bucket: deps.bucket,
    key: deps.layout.leaseKey(ref),
    window: ref.windowId,
    now: deps.now,
    ...(deps.deadlineMs !== undefined ? { deadlineMs: deps.deadlineMs } : {}),
    log: deps.log,
  });
  try {
    return await forwardLeased(ref, manifestKey, manifest, runId, replay, mapper, lease, deps);
  } catch (error) {
    throw forwardFailure(ref, runId, error, deps.bucket);
  } finally {
    await lease.release();
  }
}

/** The failure of a window's forward, in words that say what failed, what was kept and what happens next. */
function forwardFailure(ref: WindowRef, runId: string, error: unknown, bucket: string): WindowForwardError {
  const why = failureText(error, bucket, 'check the forwarder may read staging/ and write delivery/ and rejected/, and S3 health');
  return new WindowForwardError(
    ref.windowId,
    `window ${ref.windowId} (run ${runId}) was not completely forwarded: ${why}. ` +
      'What was delivered is recorded in its receipts; the message is redelivered and resumes there (after repeated failures ' +
      'it goes to the dead-letter queue: fix the cause, then redrive it).',
    error,
  );
}

async function forwardLeased(
  ref: WindowRef,
  manifestKey: string,
  manifest: Manifest,
  runId: string,
  replay: boolean,
  mapper: Mapper,
  lease: WindowLease,
  deps: ForwardDeps,
): Promise<WindowForwardResult> {
  // Every id this window delivered (any run or part, this run's own progress included) or is about to send: an id
  // seen before is a duplicate. A resumed part first skips its own delivered lines (its ledger knows their lines).
  const seen = new IdSet(manifest.events);
  if (!replay) {
    await loadWindowLedgers(deps, ref, seen);
    // Mixpanel's retries of one event can land in neighbouring windows: what those delivered is not sent again.
    const near = await loadNeighbourLedgers(deps.s3, deps.bucket, deps.layout, ref, Date.parse(manifest.window.from), Date.parse(manifest.window.to), seen);
    if (near.skipped > 0) {
      deps.log.warn('neighbouring windows hold more ids than the memory budget: duplicates are checked against the nearest ones only', {
        window: ref.windowId,
        idsLoaded: near.ids,
        ledgersSkipped: near.skipped,
        horizonMinutes: Math.round(near.coveredMs / 60_000),
      });
    }
  }

  let batch: BatchState | undefined;
  const batchKey = `${deps.layout.deliveryPrefix(ref)}run=${runId}/batch.json`;
  if (deps.sink.kind === 'batch') {
    batch = await getJson<BatchState>(deps.s3, deps.bucket, batchKey);
    if (batch === undefined) {
      batch = { batchId: await deps.sink.batches.createBatch(), status: 'loading' };
      await putJson(deps.s3, deps.bucket, batchKey, batch);
    }
  }

  const totals = { accepted: 0, rejected: 0, retried: 0, ambiguous: 0, skipped: 0, byReason: {} as Record<string, number> };
  let complete = true;
  let failure: unknown;
  // A part that fails (or a lost lease) stops the others at their next chunk, and every worker has finished before
  // this function returns: nothing keeps sending after the invocation answered (a frozen Lambda would resume it later).
  const stop = (): boolean => failure !== undefined || lease.lost;
  let next = 0;
  const work = async (): Promise<void> => {
    while (next < manifest.parts.length && complete && !stop()) {
      const index = next++;
      const part: PartRef = { ...ref, runId, part: index };
      const { receipt: r, skipped } = await forwardPart(manifest, index, part, mapper, seen, deps, replay, stop, batch?.batchId);
      if (skipped) totals.skipped++;
      // An interrupted part counts what it settled so far (the result then says complete: false).
      totals.accepted += r.accepted;
      totals.rejected += r.rejected;
      totals.retried += r.retried;
      totals.ambiguous += r.ambiguous;
      for (const [k, v] of Object.entries(r.byReason)) totals.byReason[k] = (totals.byReason[k] ?? 0) + v;
      if (r.status !== 'complete') complete = false;
    }
  };
  const worker = (): Promise<void> => work().catch((error: unknown) => void (failure ??= error));
  await Promise.all(Array.from({ length: Math.min(deps.partConcurrency ?? PART_CONCURRENCY, manifest.parts.length) }, worker));
  if (failure !== undefined) throw failure;
  if (lease.lost) complete = false;

  if (batch !== undefined && deps.sink.kind === 'batch' && complete) {
    batch = await finishBatch(deps.sink.batches, batch, deps);
    await putJson(deps.s3, deps.bucket, batchKey, batch);
    if (batch.status === 'failed') deps.log.error('Platform failed the batch: check its errors in the Platform UI or the Catalog API', { batchId: batch.batchId, window: ref.windowId });
  }

  // What the result and the window's reconciliation both report: exported = accepted + rejected + quarantined.
  const tally = {
    exported: manifest.lines,
    quarantined: manifest.quarantined,
    events: manifest.events,
    parts: manifest.parts.length,
    accepted: totals.accepted,
    rejected: totals.rejected,
    byReason: totals.byReason,
    retried: totals.retried,
    ambiguous: totals.ambiguous,
    replay,
    ...(batch !== undefined ? { batch: { id: batch.batchId, status: batch.status } } : {}),
  };
  const result: WindowForwardResult = { manifestKey, window: ref.windowId, runId, ...tally, partsSkipped: totals.skipped, complete };
  if (complete) {
    // The window's reconciliation, next to its part receipts.
    const reconciliation: WindowReceipt = {
      version: 1,
      projectId: manifest.projectId,
      mode: manifest.mode,
      window: ref.windowId,
      runId,
      sink: deps.sink.kind,
      ...tally,
      ...(manifest.quarantinedByReason !== undefined ? { quarantinedByReason: manifest.quarantinedByReason } : {}),
      forwardedAt: new Date(deps.now()).toISOString(),
    };
    await putJson(deps.s3, deps.bucket, deps.layout.windowReceiptKey({ ...ref, runId }), reconciliation);
  }
  deps.log.info(complete ? 'window forwarded' : 'window forward interrupted; it resumes on redelivery', { ...result });
  return result;
}

/** Completes the batch (idempotent) and waits a bounded time for Platform's verdict. */
async function finishBatch(api: BatchApi, state: BatchState, deps: ForwardDeps): Promise<BatchState> {
  if (state.completedAt === undefined) {
    await api.completeBatch(state.batchId);
    state = { ...state, completedAt: new Date(deps.now()).toISOString() };
  }
  const until = Math.min(deps.now() + BATCH_STATUS_WAIT_MS, deps.deadlineMs ?? Number.POSITIVE_INFINITY);
  let delay = 250;
  for (;;) {
    const { status } = await api.batchStatus(state.batchId);
    state = { ...state, status };
    if (['success', 'failed', 'aborted', 'abandoned', 'inactive'].includes(status) || deps.now() + delay >= until) return state;
    await new Promise((resolve) => setTimeout(resolve, delay));
    delay = Math.min(delay * 2, 5_000);
  }
}

async function loadWindowLedgers(deps: ForwardDeps, ref: WindowRef, seen: IdSet): Promise<void> {
  const prefix = deps.layout.deliveryPrefix(ref);
  let token: string | undefined;
  do {
    const page = await deps.s3.send(new ListObjectsV2Command({ Bucket: deps.bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) {
      if (!o.Key!.endsWith('.ids')) continue;
      const bytes = await getBytes(deps.s3, deps.bucket, o.Key!);
      if (bytes !== undefined) seen.addBytes(bytes);
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
}

interface Counts {
  read: number;
  mapped: number;
  accepted: number;
  rejected: number;
  retried: number;
  ambiguous: number;
  byReason: Record<string, number>;
}

/**
 * One part: resumes from its progress, maps, dedupes, sends in chunks, saves progress after every chunk.
 * @returns the final receipt (`skipped` when it existed already), or a partial receipt when it stopped early
 */
async function forwardPart(
  manifest: Manifest,
  index: number,
  ref: PartRef,
  mapper: Mapper,
  seen: IdSet,
  deps: ForwardDeps,
  replay: boolean,
  stop: () => boolean,
  batchId?: string,
): Promise<{ receipt: Receipt; skipped: boolean }> {
  const part = manifest.parts[index]!;
  const receiptKey = deps.layout.receiptKey(ref);
  const ledgerKey = deps.layout.ledgerKey(ref);
  const previous = await getJson<Receipt>(deps.s3, deps.bucket, receiptKey);
  // Already delivered: its receipt is the answer (read once, not again by the caller).
  if (previous?.status === 'complete') return { receipt: previous, skipped: true };

  // What this part delivered so far: its saved ledger, and the lines it came from (a resumed part skips those lines).
  const mine = new PartLedger(part.events);
  if (previous !== undefined) {
    const bytes = await getBytes(deps.s3, deps.bucket, ledgerKey);
    if (bytes !== undefined) mine.addBytes(bytes);
  }
  const counts: Counts = previous
    ? { read: previous.read, mapped: previous.mapped, accepted: previous.accepted, rejected: previous.rejected, retried: previous.retried, ambiguous: previous.ambiguous, byReason: { ...previous.byReason } }
    : { read: 0, mapped: 0, accepted: 0, rejected: 0, retried: 0, ambiguous: 0, byReason: {} };
  const rejectedKeys = [...(previous?.rejectedKeys ?? [])];
  const aepIds = [...(previous?.aepIds ?? [])];
  const startedAt = previous?.startedAt ?? new Date(deps.now()).toISOString();
  let linesDone = previous?.linesDone ?? 0;
  // Lines whose records were being sent when an earlier attempt stopped without recording the answer (a crash):
  // DCS may hold them already, so those sent again are counted as ambiguous.
  const inFlight = previous?.inFlight;
  if (inFlight !== undefined) {
    deps.log.warn('records were in flight when the previous attempt stopped; they are sent again and Platform may hold them twice (counted as ambiguous)', {
      part: part.key,
      fromLine: inFlight.fromLine,
      toLine: inFlight.toLine,
      records: inFlight.records,
    });
  }
  const durable = <T>(what: string, write: () => Promise<T>): Promise<T> =>
    withRetry(`saving ${what} of part ${part.key}`, write, {
      policy: SAVE_RETRY,
      classify: (error) => (isTransientS3(error) ? { retry: true } : { retry: false }),
      now: deps.now,
      ...(deps.sleep !== undefined ? { sleep: deps.sleep } : {}),
      ...(deps.deadlineMs !== undefined ? { deadlineMs: deps.deadlineMs + SAVE_GRACE_MS } : {}),
      onRetry: ({ attempt, delayMs, error }) => deps.log.warn('retrying a progress save', { what, part: part.key, attempt, delayMs, reason: (error as Error).message }),
    });

  const stopped = () => ({ receipt: receipt('partial'), skipped: false });
  const receipt = (status: Receipt['status']): Receipt => ({
    version: 1,
    status,
    projectId: manifest.projectId,
    mode: manifest.mode,
    window: manifest.window.id,
    runId: ref.runId,
    part: index,
    partKey: part.key,
    sink: deps.sink.kind,
    replay,
    linesDone,
    read: counts.read,
    mapped: counts.mapped,
    accepted: counts.accepted,
    rejected: counts.rejected,
    byReason: counts.byReason,
    retried: counts.retried,
    ambiguous: counts.ambiguous,
    aepIds,
    rejectedKeys,
    ledgerKey,
    startedAt,
    updatedAt: new Date(deps.now()).toISOString(),
  });
  const save = async (status: Receipt['status']): Promise<Receipt> => {
    // Ledger first: a receipt never claims ids its ledger does not hold.
    const ids = mine.bytesView(); // written out before the next add
    await durable('the id ledger', () => deps.s3.send(new PutObjectCommand({ Bucket: deps.bucket, Key: ledgerKey, Body: ids, ContentType: 'application/octet-stream' })));
    const r = receipt(status);
    await durable('the receipt', () => putJson(deps.s3, deps.bucket, receiptKey, r));
    return r;
  };

  // The chunk being built: records to send (their bytes in the arena), and rejections waiting for the chunk to settle.
  const arena = new ChunkArena();
  let chunk: Array<SinkRecord & { json: Buffer }> = [];
  let chunkLine = new Map<string, number>();
  let pendingRejects: string[] = [];
  let pendingCounts = { read: 0, mapped: 0, rejected: 0, byReason: {} as Record<string, number> };
  let lineNo = 0;

  const reject = (reason: string, detail: string, line: string, extra?: Record<string, unknown>): void => {
    pendingCounts.rejected++;
    pendingCounts.byReason[reason] = (pendingCounts.byReason[reason] ?? 0) + 1;
    pendingRejects.push(JSON.stringify({ reason, detail, window: manifest.window.id, part: part.key, line, ...extra }));
  };

  /** Sends the chunk; returns false when it could not all be settled (deadline or failure) and progress was saved. */
  const flush = async (endLine: number): Promise<boolean> => {
    let res: SendResult;
    let failure: unknown;
    if (chunk.length === 0 || deps.sink.kind === 'batch') {
      // Batch sink: records are uploaded as one file per part when the part is done (see below).
      res = { accepted: chunk.map((r) => r.id), rejected: [], unsent: [], ambiguous: [], aepIds: [], retried: 0, requests: 0, maxRequestBytes: 0 };
    } else {
      // Intent: which lines are about to be sent, so that a crash before the answer is recorded is visible on resume.
      await durable('the receipt', () =>
        putJson(deps.s3, deps.bucket, receiptKey, { ...receipt('partial'), inFlight: { fromLine: linesDone, toLine: endLine, records: chunk.length } }),
      );
      try {
        res = await deps.sink.send(chunk, deps.deadlineMs === undefined ? {} : { deadlineMs: deps.deadlineMs });
      } catch (error) {
        if (!hasResult(error)) throw error;
        res = error.result;
        failure = error;
      }
    }
    const unsure = new Set(res.ambiguous);
    for (const id of res.accepted) {
      const line = chunkLine.get(id) ?? -1;
      mine.add(id, line);
      counts.accepted++;
      if (inFlight !== undefined && line >= inFlight.fromLine && line < inFlight.toLine && !unsure.has(id)) counts.ambiguous++;
    }
    counts.retried += res.retried;
    counts.ambiguous += res.ambiguous.length;
    aepIds.push(...res.aepIds);
    const settled = res.unsent.length === 0 && failure === undefined;
    if (!settled) {
      // Accepted ids of this chunk count as read and mapped now; everything else of the chunk is redone on resume.
      counts.read += res.accepted.length;
      counts.mapped += res.accepted.length;
      await save('partial');
      if (failure !== undefined) throw failure;
      return false;
    }
    const byId = new Map(chunk.map((r) => [r.id, r.json]));
    for (const r of res.rejected) {
      const json = byId.get(r.id);
      reject('aep-rejected', r.reason, '', { id: r.id, status: r.status, record: json?.toString('utf8') ?? '' });
    }
    counts.read += pendingCounts.read;
    counts.mapped += pendingCounts.mapped;
    counts.rejected += pendingCounts.rejected;
    for (const [k, v] of Object.entries(pendingCounts.byReason)) counts.byReason[k] = (counts.byReason[k] ?? 0) + v;
    if (pendingRejects.length > 0) {
      const key = deps.layout.rejectedKey(ref, rejectedKeys.length);
      const body = gzipSync(pendingRejects.join('\n') + '\n');
      await durable('rejected records', () => deps.s3.send(new PutObjectCommand({ Bucket: deps.bucket, Key: key, Body: body, ContentType: 'application/x-ndjson', ContentEncoding: 'gzip' })));
      rejectedKeys.push(key);
    }
    linesDone = endLine;
    chunk = [];
    arena.reset();
    chunkLine = new Map();
    pendingRejects = [];
    pendingCounts = { read: 0, mapped: 0, rejected: 0, byReason: {} };
    return true;
  };

  const chunkSize = deps.chunkRecords ?? CHUNK_RECORDS;
  const resumed = mine.size > 0;
  for await (const batch of readPartLines(deps.s3, deps.bucket, part)) {
    // Platform refuses ExperienceEvents dated in the future, asynchronously (into a failed batch, after DCS accepted
    // them): they are caught here instead, against this forwarder's clock, and kept in rejected/ with the reason.
    const nowIso = new Date(deps.now()).toISOString();
    for (const line of batch) {
      const n = lineNo++;
      if (n < linesDone) continue;
      let event: unknown;
      try {
        event = JSON.parse(line);
      } catch {
        pendingCounts.read++;
        reject('not-json', 'the staged line is not valid JSON', line);
        continue;
      }
      let out: ReturnType<Mapper>;
      try {
        out = mapper(event);
      } catch (error) {
        // The mapper rejects bad input instead of throwing; should a line still make it throw, that line alone is
        // kept in rejected/ with the error, rather than failing the part on every redelivery.
        pendingCounts.read++;
        reject('unmappable', `the mapper failed on this line: ${(error as Error).message}`, line);
        continue;
      }
      // Delivered by an earlier attempt of this part: already counted.
      if (out.ok && resumed && mine.delivered(n)) continue;
      pendingCounts.read++;
      if (!out.ok) {
        reject(out.reason, out.detail, line);
        continue;
      }
      // ISO-8601 UTC strings compare as times; a year past 9999 is written "+0YYYYY-…".
      const ts = out.record.timestamp;
      if (ts > nowIso || ts.charCodeAt(0) === 43) {
        reject('future-time', `the event time ${ts} is later than now (${nowIso}); Platform refuses ExperienceEvents dated in the future`, line, { id: out.id });
        continue;
      }
      pendingCounts.mapped++;
      if (!seen.add(out.id)) {
        reject('duplicate', `_id ${out.id} was already delivered or seen in this window`, line, { id: out.id });
        continue;
      }
      chunk.push({ id: out.id, json: arena.put(out.json) });
      chunkLine.set(out.id, n);
      if (chunk.length >= chunkSize) {
        // Another part failed: stop here; the progress saved after the last chunk is where the next attempt resumes.
        if (stop()) return stopped();
        if (!(await flush(n + 1))) return stopped();
        await save('partial');
      }
    }
  }
  if (stop()) return stopped();
  if (!(await flush(lineNo))) return stopped();
  if (deps.sink.kind === 'batch' && batchId !== undefined) {
    // The file carries exactly the records this part accepted: re-read and re-mapped, so an upload can be retried.
    await deps.sink.batches.uploadFile(batchId, `part-${String(index).padStart(5, '0')}.json`, () => mappedLines(deps, part, mapper, mine));
    if (!aepIds.includes(batchId)) aepIds.push(batchId);
  }
  const final = await save('complete');
  if (final.read !== part.events || final.accepted + final.rejected !== final.read) {
    deps.log.error('receipt counts do not add up', { part: part.key, read: final.read, events: part.events, accepted: final.accepted, rejected: final.rejected });
  }
  return { receipt: final, skipped: false };
}

/** The mapped JSON Lines of the records of `part` whose id this part delivered (replayable). */
async function* mappedLines(deps: ForwardDeps, part: Manifest['parts'][number], mapper: Mapper, mine: PartLedger): AsyncGenerator<string> {
  let n = 0;
  for await (const batch of readPartLines(deps.s3, deps.bucket, part)) {
    let out = '';
    for (const line of batch) {
      const here = n++;
      const m = mapper(JSON.parse(line));
      if (m.ok && mine.delivered(here)) out += m.json + '\n';
    }
    if (out !== '') yield out;
  }
}

/** S3 failures worth another attempt: throttling, 5xx, timeouts and broken connections (no HTTP answer). */
function isTransientS3(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number }; $retryable?: unknown };
  const status = e?.$metadata?.httpStatusCode;
  if (e?.$retryable !== undefined) return true;
  if (status === undefined) return e?.$metadata !== undefined || /ECONNRESET|EPIPE|ETIMEDOUT|socket hang up|TimeoutError|NetworkingError/i.test(`${e?.name} ${(error as Error)?.message}`);
  return status >= 500 || status === 429 || e.name === 'SlowDown' || e.name === 'RequestTimeout';
}

function hasResult(error: unknown): error is Error & FailureWithResult {
  return error instanceof Error && typeof (error as Partial<FailureWithResult>).result === 'object';
}
