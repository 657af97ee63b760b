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
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { SendResult, SinkRecord } from '#aep/streaming';
import { ConnectorError, kindFromCause } from '#common/errors';
import type { Log } from '#common/log';
import type { Mapper } from '#mapping/mapper';
import type { PartRef, StagingLayout, WindowRef } from '#staging/layout';
import { type Manifest, parseManifest } from '#staging/manifest';
import { failureText, getBytes, getText, putJson } from '#staging/s3';
import { type BatchApi, type BatchState, batchStateKey, RunBatch } from './batch-run.ts';
import { WindowLease } from './lease.ts';
import { IdSet } from './ledger.ts';
import { loadNeighbourLedgers } from './neighbours.ts';
import { forwardPart } from './part.ts';
import type { WindowReceipt } from './receipt.ts';
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
}

export interface ForwardOptions {
  /** Re-send everything on purpose (operator replay): ignores earlier receipts, writes its own. */
  readonly replay?: boolean;
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
 * Forwards one committed window under its lease; resumes where an earlier attempt stopped.
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
    const [from, to] = [Date.parse(manifest.window.from), Date.parse(manifest.window.to)];
    const near = await loadNeighbourLedgers(deps.s3, deps.bucket, deps.layout, ref, from, to, seen);
    if (near.skipped > 0) {
      const why = 'neighbouring windows hold more ids than the memory budget';
      deps.log.warn(`${why}: duplicates are checked against the nearest ones only`, {
        window: ref.windowId,
        idsLoaded: near.ids,
        ledgersSkipped: near.skipped,
        horizonMinutes: Math.round(near.coveredMs / 60_000),
      });
    }
  }

  const runBatch =
    deps.sink.kind === 'batch'
      ? await RunBatch.load(deps.sink.batches, deps, batchStateKey(deps, ref, runId))
      : undefined;

  const byReason: Record<string, number> = {};
  const totals = {
    accepted: 0,
    rejected: 0,
    retried: 0,
    ambiguous: 0,
    withoutIdentity: 0,
    skipped: 0,
    byReason,
    sentFrom: '',
  };
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
      const job = { manifest, index, ref: part, mapper, seen, deps, replay, stop };
      const { receipt: r, skipped } = await forwardPart(runBatch === undefined ? job : { ...job, batch: runBatch });
      if (skipped) totals.skipped++;
      if (totals.sentFrom === '' || r.startedAt < totals.sentFrom) totals.sentFrom = r.startedAt;
      // An interrupted part counts what it settled so far (the result then says complete: false).
      totals.accepted += r.accepted;
      totals.rejected += r.rejected;
      totals.retried += r.retried;
      totals.ambiguous += r.ambiguous;
      totals.withoutIdentity += r.withoutIdentity ?? 0;
      for (const [k, v] of Object.entries(r.byReason)) totals.byReason[k] = (totals.byReason[k] ?? 0) + v;
      if (r.status !== 'complete') complete = false;
    }
  };
  const worker = (): Promise<void> => work().catch((error: unknown) => void (failure ??= error));
  const workers = Math.min(deps.partConcurrency ?? PART_CONCURRENCY, manifest.parts.length);
  await Promise.all(Array.from({ length: workers }, worker));
  if (failure !== undefined) throw failure;
  if (lease.lost) complete = false;

  // Batch sink: a run that had nothing to upload created no batch, and there is none to complete.
  const batch: BatchState | undefined = complete ? await runBatch?.close(ref.windowId) : runBatch?.state;

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
    withoutIdentity: totals.withoutIdentity,
    replay,
    ...(batch !== undefined ? { batch: { id: batch.batchId, status: batch.status } } : {}),
  };
  const result: WindowForwardResult = {
    manifestKey,
    window: ref.windowId,
    runId,
    ...tally,
    partsSkipped: totals.skipped,
    complete,
  };
  if (complete) {
    // The window's reconciliation, next to its part receipts. What Platform makes of the accepted records is found
    // out later by the verifier (functions/verify): the run is marked pending for it, after window.json exists.
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
  deps.log.info(complete ? 'window forwarded' : 'window forward interrupted; it resumes on redelivery', { ...result });
  return result;
}

async function loadWindowLedgers(deps: ForwardDeps, ref: WindowRef, seen: IdSet): Promise<void> {
  const prefix = deps.layout.deliveryPrefix(ref);
  let token: string | undefined;
  do {
    const list = new ListObjectsV2Command({ Bucket: deps.bucket, Prefix: prefix, ContinuationToken: token });
    const page = await deps.s3.send(list);
    for (const o of page.Contents ?? []) {
      if (!o.Key!.endsWith('.ids')) continue;
      const bytes = await getBytes(deps.s3, deps.bucket, o.Key!);
      if (bytes !== undefined) seen.addBytes(bytes);
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
}
