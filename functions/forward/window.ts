/**
 * Forwards one committed window: reads its manifest and parts, maps each staged event to XDM, sends it once, and
 * writes a receipt per part. Exactly-once machinery:
 * - per partition (forward/partition.ts), a ledger of delivered ids (from every earlier run's and part's receipts)
 *   turns repeats into `duplicate` rejections (kept in rejected/), so a forced re-export or an SQS redelivery sends
 *   nothing twice;
 * - a part that is cut short (deadline, error) saves its progress — the resume line and the ids it already
 *   delivered — and the next attempt continues from there.
 * Every staged line ends as accepted or as rejected with a reason: `manifest.events = Σ accepted + Σ rejected`.
 */
import { ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { SendResult, SinkRecord } from '#aep/streaming';
import { ConnectorError, kindFromCause } from '#common/errors';
import type { Log } from '#common/log';
import type { Mapper } from '#mapping/mapper';
import type { PartRef, StagingLayout, WindowRef } from '#staging/layout';
import { type Manifest, parseManifest, partitionCount } from '#staging/manifest';
import { failureText, getJson, getText, putJson } from '#staging/s3';
import { type BatchApi, type BatchState, batchStateKey, RunBatch } from './batch-run.ts';
import { LeaseHeldError, WindowLease } from './lease.ts';
import { forwardPartition } from './partition.ts';
import type { Receipt, WindowReceipt } from './receipt.ts';
import { markPending } from '#verify/pending';

/** Parts forwarded at the same time by one invocation (each has its own requests in flight). */
export const PART_CONCURRENCY = 2;

/** What the forwarder needs from a sink: streaming (DCS batch endpoint) or Platform batch ingestion. */
export type RecordSink =
  | {
      readonly kind: 'streaming';
      send(records: readonly SinkRecord[], opts: { deadlineMs?: number }): Promise<SendResult>;
    }
  | { readonly kind: 'batch'; readonly batches: BatchApi };

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
  /**
   * Sends the partition messages of a partitioned window to the forward queue (fan-out). Absent: the invocation
   * forwards every partition itself, one after the other.
   */
  readonly fanOut?: (messages: readonly PartitionMessage[]) => Promise<void>;
}

/** The forward queue's message for one partition of a committed run (docs/architecture.md#trigger-and-answer). */
export interface PartitionMessage {
  readonly window: WindowRef;
  readonly runId: string;
  readonly partition: number;
}

export interface ForwardOptions {
  /** Re-send everything on purpose (operator replay): ignores earlier receipts, writes its own. */
  readonly replay?: boolean;
  /** Forward this partition only (a partition message); `runId` must be the manifest's, else nothing is sent. */
  readonly partition?: number;
  readonly runId?: string;
}

export interface WindowForwardResult {
  readonly manifestKey: string;
  readonly window: string;
  readonly runId: string;
  /** Reconciliation: lines Mixpanel returned = events + quarantined = accepted + rejected + quarantined (once
   * complete). */
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
  /** Accepted records without any identity (Real-Time Customer Profile cannot use them). */
  readonly withoutIdentity: number;
  /** False when the deadline stopped it: the caller reports the message for redelivery. */
  readonly complete: boolean;
  readonly replay: boolean;
  /** Batch sink: the Platform batch of this run and its last known status. */
  readonly batch?: { readonly id: string; readonly status: string };
  /** The partitions this invocation forwarded, when not the whole window (the counts are theirs). */
  readonly partitions?: readonly number[];
  /** The window's partitions were sent as messages of their own; nothing was forwarded here. */
  readonly fannedOut?: number;
  /** A partition message of a run the window no longer has (re-exported since): nothing was forwarded. */
  readonly stale?: boolean;
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

/**
 * Forwards one committed window under its lease, partition after partition (or the one partition `opts.partition`
 * names); resumes where an earlier attempt stopped. With a partition sender (`deps.fanOut`), a partitioned window's
 * notification only sends one message per partition and each is forwarded by its own invocation.
 * @throws ManifestMissingError when the window is not committed; WindowForwardError when it could not be finished
 */
export async function forwardWindow(
  ref: WindowRef,
  deps: ForwardDeps,
  opts: ForwardOptions = {},
): Promise<WindowForwardResult> {
  const manifestKey = deps.layout.manifestKey(ref);
  const text = await getText(deps.s3, deps.bucket, manifestKey);
  if (text === undefined) throw new ManifestMissingError(manifestKey);
  const manifest = parseManifest(text, manifestKey);
  const replay = opts.replay === true;
  const stamp = new Date(deps.now()).toISOString().replace(/[-:.]/g, '');
  const runId = replay ? `${manifest.runId}.replay-${stamp}` : manifest.runId;
  const partitions = partitionCount(manifest);
  if (opts.partition !== undefined && (opts.runId !== manifest.runId || opts.partition >= partitions)) {
    // A partition message of an earlier export of the window (re-exported since): the new run has its own messages.
    deps.log.warn("partition message of a run that is no longer the window's; nothing to forward", {
      window: ref.windowId,
      runId: opts.runId,
      current: manifest.runId,
    });
    return { ...emptyResult(manifestKey, manifest, ref, runId, replay), stale: true };
  }
  if (opts.partition === undefined && partitions > 1 && !replay && deps.fanOut) {
    // Batch sink: the run's one batch is created here, before any partition message exists, so the partition
    // invocations only ever read its id (docs/architecture.md#fan-out). A redelivered notification finds it saved.
    if (deps.sink.kind === 'batch')
      await (await RunBatch.load(deps.sink.batches, deps, batchStateKey(deps, ref, runId))).id();
    await deps.fanOut(Array.from({ length: partitions }, (_, partition) => ({ window: ref, runId, partition })));
    deps.log.info('window fanned out: one message per partition', { window: ref.windowId, runId, partitions });
    return { ...emptyResult(manifestKey, manifest, ref, runId, replay), fannedOut: partitions };
  }
  const mapper = deps.mapperFor(manifest);

  // One forwarder per window (a partition message: per partition) at a time; ledgers are read once the lease is held.
  const lease = await WindowLease.acquire({
    ...leaseOptions(ref, deps),
    ...(opts.partition !== undefined
      ? { key: deps.layout.partitionLeaseKey(ref, opts.partition), window: `${ref.windowId}#${opts.partition}` }
      : {}),
  });
  try {
    const ks = opts.partition !== undefined ? [opts.partition] : Array.from({ length: partitions }, (_, k) => k);
    return await forwardLeased(ref, manifestKey, manifest, runId, replay, mapper, lease, deps, ks);
  } catch (error) {
    throw forwardFailure(ref, runId, error, deps.bucket);
  } finally {
    await lease.release();
  }
}

function leaseOptions(ref: WindowRef, deps: ForwardDeps) {
  return {
    s3: deps.s3,
    bucket: deps.bucket,
    key: deps.layout.leaseKey(ref),
    window: ref.windowId,
    now: deps.now,
    ...(deps.deadlineMs !== undefined ? { deadlineMs: deps.deadlineMs } : {}),
    log: deps.log,
  };
}

/** The result of an invocation that forwarded nothing itself (fan-out, stale partition message). */
function emptyResult(
  manifestKey: string,
  manifest: Manifest,
  ref: WindowRef,
  runId: string,
  replay: boolean,
): WindowForwardResult {
  return {
    manifestKey,
    window: ref.windowId,
    runId,
    exported: manifest.lines,
    quarantined: manifest.quarantined,
    events: manifest.events,
    parts: manifest.parts.length,
    partsSkipped: 0,
    accepted: 0,
    rejected: 0,
    byReason: {},
    retried: 0,
    ambiguous: 0,
    withoutIdentity: 0,
    complete: true,
    replay,
  };
}

/** The failure of a window's forward, in words that say what failed, what was kept and what happens next. */
function forwardFailure(ref: WindowRef, runId: string, error: unknown, bucket: string): WindowForwardError {
  const check = 'check the forwarder may read staging/ and write delivery/ and rejected/, and S3 health';
  const why = failureText(error, bucket, check);
  return new WindowForwardError(
    ref.windowId,
    `window ${ref.windowId} (run ${runId}) was not completely forwarded: ${why}. ` +
      'What was delivered is recorded in its receipts; the message is redelivered and resumes there ' +
      '(after repeated failures it goes to the dead-letter queue: fix the cause, then redrive it).',
    error,
  );
}

/** Sums of part receipts, as the result and the window's reconciliation report them. */
function sumReceipts(receipts: Iterable<Receipt>) {
  const t = { accepted: 0, rejected: 0, retried: 0, ambiguous: 0, withoutIdentity: 0, sentFrom: '' };
  const byReason: Record<string, number> = {};
  for (const r of receipts) {
    if (t.sentFrom === '' || r.startedAt < t.sentFrom) t.sentFrom = r.startedAt;
    // An interrupted part counts what it settled so far (the result then says complete: false).
    t.accepted += r.accepted;
    t.rejected += r.rejected;
    t.retried += r.retried;
    t.ambiguous += r.ambiguous;
    t.withoutIdentity += r.withoutIdentity ?? 0;
    for (const [k, v] of Object.entries(r.byReason)) byReason[k] = (byReason[k] ?? 0) + v;
  }
  return { ...t, byReason };
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
  ks: readonly number[],
): Promise<WindowForwardResult> {
  const runBatch =
    deps.sink.kind === 'batch'
      ? await RunBatch.load(deps.sink.batches, deps, batchStateKey(deps, ref, runId))
      : undefined;

  const partitions = partitionCount(manifest);
  const receipts = new Map<number, Receipt>();
  let skipped = 0;
  let complete = true;
  for (const k of ks) {
    if (!complete || lease.lost) break;
    // A whole-window forward of a partitioned window also holds each partition's lease, as a partition message does.
    const own =
      partitions > 1 && ks.length > 1
        ? await WindowLease.acquire({
            ...leaseOptions(ref, deps),
            key: deps.layout.partitionLeaseKey(ref, k),
            window: `${ref.windowId}#${k}`,
          })
        : undefined;
    try {
      const lost = (): boolean => lease.lost || own?.lost === true;
      const job = { ref, manifest, runId, replay, mapper, partition: k, deps, lost };
      const out = await forwardPartition(runBatch === undefined ? job : { ...job, batch: runBatch });
      for (const [i, r] of out.receipts) receipts.set(i, r);
      skipped += out.skipped;
      if (!out.complete) complete = false;
    } finally {
      await own?.release();
    }
  }
  if (lease.lost) complete = false;
  const totals = sumReceipts(receipts.values());

  // The window is done once every part's receipt is complete. A partition invocation marks its partition done, then
  // reads the others' receipts only once every partition is marked: receipts are final then, never being written.
  let windowReceipts = receipts;
  if (complete && receipts.size < manifest.parts.length) {
    windowReceipts = new Map(receipts);
    const doneKey = (k: number) => deps.layout.partitionDoneKey({ ...ref, runId }, k);
    for (const k of ks) await putText(deps.s3, deps.bucket, doneKey(k), '');
    const marked = await listKeys(deps, deps.layout.partitionDonePrefix({ ...ref, runId }));
    const allMarked = Array.from({ length: partitions }, (_, k) => doneKey(k)).every((key) => marked.has(key));
    for (let i = 0; allMarked && i < manifest.parts.length; i++) {
      if (windowReceipts.has(i)) continue;
      const r = await otherReceipt(deps, { ...ref, runId, part: i });
      if (r?.status !== 'complete') break;
      windowReceipts.set(i, r);
    }
  }
  const all = windowReceipts === receipts ? totals : sumReceipts(windowReceipts.values());
  // A partition invocation closes the window under the window's lease (a whole-window forward holds it already): of
  // two that find every partition done at the same moment, one completes the batch and writes window.json, and the
  // other leaves both to it. Only then is the batch signalled COMPLETE, once.
  const finished = complete && windowReceipts.size === manifest.parts.length;
  const closer = finished && ks.length < partitions ? await closingLease(ref, deps) : undefined;
  const windowDone = finished && (ks.length === partitions || closer !== undefined);
  try {
    // Batch sink: a run that had nothing to upload created no batch, or aborts the one its fan-out opened.
    const batch: BatchState | undefined = windowDone
      ? await runBatch?.close(ref.windowId, { empty: all.accepted === 0 })
      : runBatch?.state;
    const sent = batch !== undefined && batch.status !== 'aborted' ? batch : undefined;

    // What the result and the window's reconciliation both report: exported = accepted + rejected + quarantined.
    const tallyOf = (t: ReturnType<typeof sumReceipts>) => ({
      exported: manifest.lines,
      quarantined: manifest.quarantined,
      events: manifest.events,
      parts: manifest.parts.length,
      accepted: t.accepted,
      rejected: t.rejected,
      byReason: t.byReason,
      retried: t.retried,
      ambiguous: t.ambiguous,
      withoutIdentity: t.withoutIdentity,
      replay,
      ...(sent !== undefined ? { batch: { id: sent.batchId, status: sent.status } } : {}),
    });
    const result: WindowForwardResult = {
      manifestKey,
      window: ref.windowId,
      runId,
      ...tallyOf(totals),
      partsSkipped: skipped,
      complete,
      ...(ks.length < partitions ? { partitions: ks } : {}),
    };
    if (windowDone) await reconcile(ref, manifest, runId, tallyOf(all), all, deps);
    deps.log.info(complete ? 'window forwarded' : 'window forward interrupted; it resumes on redelivery', {
      ...result,
    });
    return result;
  } finally {
    await closer?.release();
  }
}

/** The window's lease, to close it; undefined when another invocation holds it (that one closes the window). */
async function closingLease(ref: WindowRef, deps: ForwardDeps): Promise<WindowLease | undefined> {
  try {
    return await WindowLease.acquire(leaseOptions(ref, deps));
  } catch (error) {
    if (!(error instanceof LeaseHeldError)) throw error;
    deps.log.info('every partition is done; another invocation holds the window and closes it', {
      window: ref.windowId,
    });
    return undefined;
  }
}

/** The keys under `prefix` (one page: a run has at most 16 partition markers). */
async function listKeys(deps: ForwardDeps, prefix: string): Promise<Set<string>> {
  const page = await deps.s3.send(new ListObjectsV2Command({ Bucket: deps.bucket, Prefix: prefix }));
  return new Set((page.Contents ?? []).map((o) => o.Key!));
}

async function putText(s3: S3Client, bucket: string, key: string, body: string): Promise<void> {
  // The length stated: for an empty body (a done marker) the SDK sends none and warns of a stream of unknown length.
  const length = Buffer.byteLength(body);
  await s3.send(
    new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: 'text/plain', ContentLength: length }),
  );
}

/** Another partition's part receipt; unreadable counts as not complete (its own invocation then reconciles). */
async function otherReceipt(deps: ForwardDeps, part: PartRef): Promise<Receipt | undefined> {
  try {
    return await getJson<Receipt>(deps.s3, deps.bucket, deps.layout.receiptKey(part));
  } catch (error) {
    deps.log.warn('could not read the receipt of a part of another partition; its forwarder reconciles the window', {
      part: part.part,
      reason: (error as Error).message,
    });
    return undefined;
  }
}

/**
 * The window's reconciliation, next to its part receipts, written by whichever invocation finds every part complete
 * (idempotent: the same sums from the same receipts). What Platform makes of the accepted records is found out later
 * by the verifier (functions/verify): the run is marked pending for it, after window.json exists.
 */
async function reconcile(
  ref: WindowRef,
  manifest: Manifest,
  runId: string,
  tally: Omit<
    WindowReceipt,
    'version' | 'projectId' | 'mode' | 'window' | 'runId' | 'sink' | 'forwardedAt' | 'platform'
  >,
  totals: ReturnType<typeof sumReceipts>,
  deps: ForwardDeps,
): Promise<void> {
  const forwardedAt = new Date(deps.now()).toISOString();
  const reconciliation: WindowReceipt = {
    version: 1,
    projectId: manifest.projectId,
    mode: manifest.mode,
    window: ref.windowId,
    runId,
    sink: deps.sink.kind,
    ...tally,
    ...(manifest.quarantinedByReason !== undefined ? { quarantinedByReason: manifest.quarantinedByReason } : {}),
    ...(totals.sentFrom !== '' ? { sentFrom: totals.sentFrom } : {}),
    forwardedAt,
    platform: {
      status: totals.accepted === 0 ? 'verified' : 'pending',
      ingested: 0,
      failed: 0,
      checkedAt: forwardedAt,
      ...(totals.accepted === 0 ? { detail: 'nothing was sent' } : {}),
    },
  };
  await putJson(deps.s3, deps.bucket, deps.layout.windowReceiptKey({ ...ref, runId }), reconciliation);
  if (totals.accepted > 0) await markPending(deps, { ...ref, runId });
}
