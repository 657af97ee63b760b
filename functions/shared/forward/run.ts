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
import { gzipSync } from 'node:zlib';
import type { SendResult, SinkRecord } from '#shared/aep/streaming';
import type { Log } from '#shared/log';
import type { Mapper } from '#shared/mapping/mapper';
import type { PartRef, StagingLayout, WindowRef } from '#shared/staging/layout';
import { type Manifest, parseManifest } from '#shared/staging/manifest';
import { getBytes, getJson, getText, putJson } from '#shared/staging/s3';
import { IdLedger } from './ledger.ts';
import { readPartLines } from './part-reader.ts';
import type { Receipt } from './receipt.ts';

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

export class ManifestMissingError extends Error {
  constructor(key: string) {
    super(`no manifest at ${key}: the window is not committed (or was removed); nothing to forward`);
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

  // Ids this window already delivered, in any run or part, except the progress of this run's own parts.
  // Entries are tagged with the part of this run that delivered them (partTag), or -1 for other runs.
  const seen = new IdLedger(manifest.events);
  const own = new Map(manifest.parts.map((_, i) => [ledgerName(runId, i), partTag(i)]));
  if (!replay) await loadWindowLedgers(deps, ref, seen, own);

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
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < manifest.parts.length && complete) {
      const index = next++;
      const part: PartRef = { ...ref, runId, part: index };
      const receipt = await forwardPart(manifest, index, part, mapper, seen, deps, replay, batch?.batchId);
      if (receipt === 'skipped' || receipt.status === 'complete') {
        const r = receipt === 'skipped' ? await getJson<Receipt>(deps.s3, deps.bucket, deps.layout.receiptKey(part)) : receipt;
        if (receipt === 'skipped') totals.skipped++;
        if (r !== undefined) {
          totals.accepted += r.accepted;
          totals.rejected += r.rejected;
          totals.retried += r.retried;
          totals.ambiguous += r.ambiguous;
          for (const [k, v] of Object.entries(r.byReason)) totals.byReason[k] = (totals.byReason[k] ?? 0) + v;
        }
      } else {
        complete = false;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(deps.partConcurrency ?? PART_CONCURRENCY, manifest.parts.length) }, worker));

  if (batch !== undefined && deps.sink.kind === 'batch' && complete) {
    batch = await finishBatch(deps.sink.batches, batch, deps);
    await putJson(deps.s3, deps.bucket, batchKey, batch);
    if (batch.status === 'failed') deps.log.error('Platform failed the batch: check its errors in the Platform UI or the Catalog API', { batchId: batch.batchId, window: ref.windowId });
  }

  const result: WindowForwardResult = {
    manifestKey,
    window: ref.windowId,
    runId,
    events: manifest.events,
    parts: manifest.parts.length,
    partsSkipped: totals.skipped,
    accepted: totals.accepted,
    rejected: totals.rejected,
    byReason: totals.byReason,
    retried: totals.retried,
    ambiguous: totals.ambiguous,
    complete,
    replay,
    ...(batch !== undefined ? { batch: { id: batch.batchId, status: batch.status } } : {}),
  };
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

/** The tag of ids delivered by part `index` of the run being forwarded (other runs: -1). */
const partTag = (index: number): number => -(index + 2);

function ledgerName(runId: string, part: number): string {
  return `run=${runId}/part-${String(part).padStart(5, '0')}.ids`;
}

async function loadWindowLedgers(deps: ForwardDeps, ref: WindowRef, seen: IdLedger, own: Map<string, number>): Promise<void> {
  const prefix = deps.layout.deliveryPrefix(ref);
  let token: string | undefined;
  do {
    const page = await deps.s3.send(new ListObjectsV2Command({ Bucket: deps.bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) {
      const name = o.Key!.slice(prefix.length);
      if (!name.endsWith('.ids')) continue;
      const bytes = await getBytes(deps.s3, deps.bucket, o.Key!);
      if (bytes !== undefined) seen.addBytes(bytes, own.get(name) ?? -1);
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
 * @returns the final receipt, 'skipped' when a complete receipt existed, or a partial receipt when it stopped early
 */
async function forwardPart(
  manifest: Manifest,
  index: number,
  ref: PartRef,
  mapper: Mapper,
  seen: IdLedger,
  deps: ForwardDeps,
  replay: boolean,
  batchId?: string,
): Promise<Receipt | 'skipped'> {
  const part = manifest.parts[index]!;
  const receiptKey = deps.layout.receiptKey(ref);
  const ledgerKey = deps.layout.ledgerKey(ref);
  const previous = await getJson<Receipt>(deps.s3, deps.bucket, receiptKey);
  if (previous?.status === 'complete') return 'skipped';

  // This part's own delivered ids, with the line each came from (a resumed line whose id is here was delivered).
  const mine = new IdLedger(part.events);
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
    await deps.s3.send(new PutObjectCommand({ Bucket: deps.bucket, Key: ledgerKey, Body: mine.toBytes(), ContentType: 'application/octet-stream' }));
    const r = receipt(status);
    await putJson(deps.s3, deps.bucket, receiptKey, r);
    return r;
  };

  // The chunk being built: records to send, and rejections waiting for the chunk to settle.
  let chunk: SinkRecord[] = [];
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
      try {
        res = await deps.sink.send(chunk, deps.deadlineMs === undefined ? {} : { deadlineMs: deps.deadlineMs });
      } catch (error) {
        if (!hasResult(error)) throw error;
        res = error.result;
        failure = error;
      }
    }
    for (const id of res.accepted) {
      mine.add(id, chunkLine.get(id) ?? -1);
      counts.accepted++;
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
      const json = byId.get(r.id) ?? '';
      reject('aep-rejected', r.reason, '', { id: r.id, status: r.status, record: json });
    }
    counts.read += pendingCounts.read;
    counts.mapped += pendingCounts.mapped;
    counts.rejected += pendingCounts.rejected;
    for (const [k, v] of Object.entries(pendingCounts.byReason)) counts.byReason[k] = (counts.byReason[k] ?? 0) + v;
    if (pendingRejects.length > 0) {
      const key = deps.layout.rejectedKey(ref, rejectedKeys.length);
      await deps.s3.send(new PutObjectCommand({ Bucket: deps.bucket, Key: key, Body: gzipSync(pendingRejects.join('\n') + '\n'), ContentType: 'application/x-ndjson', ContentEncoding: 'gzip' }));
      rejectedKeys.push(key);
    }
    linesDone = endLine;
    chunk = [];
    chunkLine = new Map();
    pendingRejects = [];
    pendingCounts = { read: 0, mapped: 0, rejected: 0, byReason: {} };
    return true;
  };

  const chunkSize = deps.chunkRecords ?? CHUNK_RECORDS;
  const resumed = mine.size > 0;
  const myTag = partTag(index);
  for await (const batch of readPartLines(deps.s3, deps.bucket, part)) {
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
      const out = mapper(event);
      // Delivered by an earlier attempt of this part: already counted.
      if (out.ok && resumed && mine.lineOf(out.id) === n) continue;
      pendingCounts.read++;
      if (!out.ok) {
        reject(out.reason, out.detail, line);
        continue;
      }
      pendingCounts.mapped++;
      const tag = seen.lineOf(out.id);
      if ((tag !== undefined && tag !== myTag) || mine.has(out.id) || chunkLine.has(out.id)) {
        reject('duplicate', `_id ${out.id} was already delivered or seen in this window`, line, { id: out.id });
        continue;
      }
      seen.add(out.id, myTag);
      chunk.push({ id: out.id, json: out.json });
      chunkLine.set(out.id, n);
      if (chunk.length >= chunkSize) {
        if (!(await flush(n + 1))) return receipt('partial');
        await save('partial');
      }
    }
  }
  if (!(await flush(lineNo))) return receipt('partial');
  if (deps.sink.kind === 'batch' && batchId !== undefined) {
    // The file carries exactly the records this part accepted: re-read and re-mapped, so an upload can be retried.
    await deps.sink.batches.uploadFile(batchId, `part-${String(index).padStart(5, '0')}.json`, () => mappedLines(deps, part, mapper, mine));
    if (!aepIds.includes(batchId)) aepIds.push(batchId);
  }
  const final = await save('complete');
  if (final.read !== part.events || final.accepted + final.rejected !== final.read) {
    deps.log.error('receipt counts do not add up', { part: part.key, read: final.read, events: part.events, accepted: final.accepted, rejected: final.rejected });
  }
  return final;
}

/** The mapped JSON Lines of the records of `part` whose id this part delivered (replayable). */
async function* mappedLines(deps: ForwardDeps, part: Manifest['parts'][number], mapper: Mapper, mine: IdLedger): AsyncGenerator<string> {
  let n = 0;
  for await (const batch of readPartLines(deps.s3, deps.bucket, part)) {
    let out = '';
    for (const line of batch) {
      const here = n++;
      const m = mapper(JSON.parse(line));
      if (m.ok && mine.lineOf(m.id) === here) out += m.json + '\n';
    }
    if (out !== '') yield out;
  }
}

function hasResult(error: unknown): error is Error & FailureWithResult {
  return error instanceof Error && typeof (error as Partial<FailureWithResult>).result === 'object';
}
