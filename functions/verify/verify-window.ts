/**
 * Platform's verdict on one forwarded run of a window: what Platform stored of the records the forwarder sent, and
 * what it refused after accepting them.
 * - Streaming: DCS validates XDM asynchronously and puts refused records into failed batches of the dataset
 *   (AdobeDocs/experience-platform.en help/ingestion/quality/streaming-validation.md, retrieve-failed-batches.md).
 *   Once Platform's data-lake latency has passed (< 60 minutes, help/ingestion/streaming-ingestion/overview.md) and
 *   every batch of the dataset created while the run was sending is final, the failed records whose `_id` this run
 *   delivered are its refusals; the rest is ingested.
 * - Batch: the run's batch is followed to a final Catalog state (help/ingestion/batch-ingestion/api-overview.md); a
 *   failed batch refuses every record in it; a successful one with failed rows (partial ingestion) refuses the rows
 *   its error diagnostics list (help/ingestion/batch-ingestion/partial.md).
 * Each refused record is written to rejected/ (`platform-part-NNNNN.jsonl.gz`) with Platform's code and message; the
 * verdict goes into the run's window.json. Idempotent: a verdict is computed afresh from Platform's answers each time,
 * and every file it writes has a fixed key.
 */
import { gzipSync } from 'node:zlib';
import { PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { getBytes, getJson, getText, putJson } from '#staging/s3';
import type { PartRef, StagingLayout, WindowRef } from '#staging/layout';
import { type Manifest, parseManifest } from '#staging/manifest';
import type { Log } from '#common/log';
import { ConnectorError } from '#common/errors';
import { readPartLines } from '#forward/part-reader';
import type { BatchState } from '#forward/batch-run';
import type { PlatformVerdict, Receipt, WindowReceipt } from '#forward/receipt';
import { batchPhase } from '#aep/batch-status';
import { type PlatformReader, type Refusal, idKey, readRefusal } from './platform.ts';

/** Platform's data-lake latency for streamed data: "< 60 minutes" (help/ingestion/streaming-ingestion/overview.md). */
export const STREAMING_SETTLE_MS = 60 * 60_000;
/** How long the verifier keeps asking before it calls a run's verdict failed for want of an answer. */
export const VERIFY_HORIZON_MS = 24 * 60 * 60_000;

/** Reasons of Platform's refusals (rejected/ and the verdict's `byReason`). */
export const PLATFORM_REASONS = {
  validation: 'platform-validation',
  row: 'platform-row-error',
  batch: 'platform-batch-failed',
} as const;

export interface VerifyDeps {
  readonly s3: S3Client;
  readonly bucket: string;
  readonly layout: StagingLayout;
  readonly platform: PlatformReader;
  readonly datasetId: string;
  readonly now: () => number;
  readonly log: Log;
  /** @default STREAMING_SETTLE_MS */
  readonly streamingSettleMs?: number;
  /** @default VERIFY_HORIZON_MS */
  readonly horizonMs?: number;
}

export type RunRef = WindowRef & { readonly runId: string };

export interface RunVerdict {
  readonly ref: RunRef;
  readonly verdict: PlatformVerdict;
  /** True when this check moved the verdict from pending to final (what metrics count, once). */
  readonly settledNow: boolean;
  readonly receipt: WindowReceipt;
}

export class WindowNotForwardedError extends ConnectorError {
  constructor(key: string) {
    super('input', `no reconciliation at ${key}: the run was not forwarded completely, so there is nothing to verify`);
    this.name = 'WindowNotForwardedError';
  }
}

/** A refusal traced to the staged line it came from. */
interface Traced {
  readonly part: number;
  readonly line: number;
  readonly refusal: Refusal;
  readonly reason: string;
}

/** What one check found: still waiting, or the refusals of a final verdict. */
type Finding =
  | { readonly kind: 'pending'; readonly detail: string; readonly batches?: PlatformVerdict['batches'] }
  | {
      readonly kind: 'final';
      readonly status: 'verified' | 'failed';
      /** The run's parts (read once: tracing and writing the refusals both need them). */
      readonly manifest?: Manifest;
      readonly traced: readonly Traced[];
      readonly untraced: number;
      readonly detail?: string;
      readonly batches?: PlatformVerdict['batches'];
    };

/**
 * Checks one forwarded run with Platform and saves the verdict in its window.json.
 * @throws WindowNotForwardedError when the run has no window.json
 */
export async function verifyRun(ref: RunRef, deps: VerifyDeps): Promise<RunVerdict> {
  const key = deps.layout.windowReceiptKey(ref);
  const receipt = await getJson<WindowReceipt>(deps.s3, deps.bucket, key);
  if (receipt === undefined) throw new WindowNotForwardedError(key);
  const before = receipt.platform;
  const checks = (before?.checks ?? 0) + 1;
  const checkedAt = new Date(deps.now()).toISOString();
  const finding = receipt.accepted === 0 ? nothingSent() : await find(ref, receipt, deps);

  let verdict: PlatformVerdict;
  if (finding.kind === 'pending') {
    const age = deps.now() - Date.parse(receipt.forwardedAt);
    const gaveUp = age > (deps.horizonMs ?? VERIFY_HORIZON_MS);
    verdict = {
      status: gaveUp ? 'failed' : 'pending',
      ingested: 0,
      failed: 0,
      checkedAt,
      checks,
      detail: gaveUp
        ? `no final verdict from Platform ${Math.round(age / 3_600_000)} h after forwarding (${finding.detail}); ` +
          'check the dataset’s batches in Platform, then re-check with `verify --window`'
        : finding.detail,
      ...(finding.batches !== undefined ? { batches: finding.batches } : {}),
    };
  } else {
    const rejectedKeys = await writeRefused(ref, receipt, finding.manifest, finding.traced, deps);
    const failed = finding.traced.length + finding.untraced;
    const byReason: Record<string, number> = {};
    for (const t of finding.traced) byReason[t.reason] = (byReason[t.reason] ?? 0) + 1;
    verdict = {
      status: finding.status,
      ingested: Math.max(0, receipt.accepted - failed),
      failed,
      checkedAt,
      checks,
      byReason,
      ...(finding.untraced > 0 ? { untraced: finding.untraced } : {}),
      ...(finding.detail !== undefined ? { detail: finding.detail } : {}),
      rejectedKeys,
      ...(finding.batches !== undefined ? { batches: finding.batches } : {}),
    };
  }
  const updated: WindowReceipt = { ...receipt, platform: verdict };
  await putJson(deps.s3, deps.bucket, key, updated);
  const settledNow = verdict.status !== 'pending' && before?.status !== verdict.status;
  if (settledNow && verdict.failed > 0) {
    deps.log.error('Platform refused records it had accepted: they are in rejected/ with Platform’s reason', {
      window: ref.windowId,
      runId: ref.runId,
      failed: verdict.failed,
      byReason: verdict.byReason,
      status: verdict.status,
    });
  }
  return { ref, verdict, settledNow, receipt: updated };
}

const nothingSent = (): Finding => ({ kind: 'final', status: 'verified', traced: [], untraced: 0 });

async function find(ref: RunRef, receipt: WindowReceipt, deps: VerifyDeps): Promise<Finding> {
  return receipt.sink === 'batch' ? findBatch(ref, deps) : findStreaming(ref, receipt, deps);
}

/** Streaming: wait out the data-lake latency and every open batch, then collect the failed records of the dataset. */
async function findStreaming(ref: RunRef, receipt: WindowReceipt, deps: VerifyDeps): Promise<Finding> {
  const settleMs = deps.streamingSettleMs ?? STREAMING_SETTLE_MS;
  const sentTo = Date.parse(receipt.forwardedAt);
  const sentFrom = receipt.sentFrom === undefined ? sentTo : Date.parse(receipt.sentFrom);
  const readyAt = sentTo + settleMs;
  if (deps.now() < readyAt) {
    return {
      kind: 'pending',
      detail: `waiting for Platform’s data-lake latency until ${new Date(readyAt).toISOString()}`,
    };
  }
  // A streaming batch holding this run's records was opened before its last send; one opened more than the data
  // lake's latency before the first send was closed before it. Catalog's bounds are exclusive.
  const refusals = new Map<string, Refusal>();
  let open = 0;
  for await (const b of deps.platform.listBatches({
    datasetId: deps.datasetId,
    createdAfter: sentFrom - STREAMING_SETTLE_MS - 1,
    createdBefore: sentTo + 1,
  })) {
    const phase = batchPhase(b.status);
    if (phase === 'in-progress' || phase === 'unknown') {
      open++;
      continue;
    }
    if (phase === 'failed' || (b.failedRecordCount ?? 0) > 0) {
      for await (const { text } of deps.platform.failedRecords(b.id)) {
        const r = readRefusal(text, b.id);
        if (r?.id !== undefined) refusals.set(idKey(r.id), r);
      }
    }
  }
  if (open > 0) return { kind: 'pending', detail: `${open} Platform batch(es) of the send time not final yet` };
  const { manifest, traced } = await trace(ref, deps, (k) => refusals.get(k), PLATFORM_REASONS.validation);
  return { kind: 'final', status: 'verified', manifest, traced, untraced: 0 };
}

/** Batch: the run's batch (the re-sent one, after `resend`) to a final state, then its failed rows. */
async function findBatch(ref: RunRef, deps: VerifyDeps): Promise<Finding> {
  const state = await getJson<BatchState>(deps.s3, deps.bucket, deps.layout.batchStateKey(ref));
  if (state === undefined) return { kind: 'final', status: 'verified', traced: [], untraced: 0 };
  const b = await deps.platform.getBatch(state.batchId);
  const history = [...(state.previous ?? []), { id: b.id, status: b.status }];
  const phase = batchPhase(b.status);
  if (phase === 'in-progress' || phase === 'unknown') {
    return { kind: 'pending', detail: `batch ${b.id} is ${b.status}`, batches: history };
  }
  if (phase === 'failed') {
    const why = (b.errors ?? []).map((e) => `${e.code ?? 'error'}: ${e.description ?? ''}`.trim()).join('; ');
    const refusal: Refusal = {
      id: undefined,
      code: b.errors?.[0]?.code ?? b.status,
      message: why || `batch ${b.id} ${b.status}`,
      batchId: b.id,
    };
    const { manifest, traced } = await trace(ref, deps, () => refusal, PLATFORM_REASONS.batch);
    const detail = `batch ${b.id} ${b.status}${why ? `: ${why}` : ''}; re-send it with \`resend --window\``;
    return { kind: 'final', status: 'failed', manifest, traced, untraced: 0, detail, batches: history };
  }
  const refusals = new Map<string, Refusal>();
  let rows = 0;
  if ((b.failedRecordCount ?? 0) > 0) {
    for await (const { text } of deps.platform.rowErrors(b.id)) {
      const r = readRefusal(text, b.id);
      if (r === undefined) continue;
      rows++;
      if (r.id !== undefined) refusals.set(idKey(r.id), r);
    }
  }
  const { manifest, traced } = await trace(ref, deps, (k) => refusals.get(k), PLATFORM_REASONS.row);
  // Rows Platform counted as failed but whose record its diagnostics do not identify.
  const untraced = Math.max(0, Math.max(b.failedRecordCount ?? 0, rows) - traced.length);
  return { kind: 'final', status: 'verified', manifest, traced, untraced, batches: history };
}

/** Goes through the run's part ledgers and keeps the delivered records `refusalOf` names. */
async function trace(
  ref: RunRef,
  deps: VerifyDeps,
  refusalOf: (key: string) => Refusal | undefined,
  reason: string,
): Promise<{ manifest: Manifest; traced: Traced[] }> {
  const manifest = await runManifest(ref, deps);
  const traced: Traced[] = [];
  for (let part = 0; part < manifest.parts.length; part++) {
    const bytes = await getBytes(deps.s3, deps.bucket, deps.layout.ledgerKey({ ...ref, part }));
    if (bytes === undefined) continue;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let o = 0; o + 12 <= bytes.byteLength; o += 12) {
      const refusal = refusalOf(`${view.getInt32(o, true)}:${view.getInt32(o + 4, true)}`);
      if (refusal !== undefined) traced.push({ part, line: view.getInt32(o + 8, true), refusal, reason });
    }
  }
  return { manifest, traced };
}

/** The manifest of the run (the window's current one, or — after a forced re-export — the run's own parts). */
async function runManifest(ref: RunRef, deps: VerifyDeps): Promise<Manifest> {
  const key = deps.layout.manifestKey(ref);
  const text = await getText(deps.s3, deps.bucket, key);
  if (text === undefined) throw new WindowNotForwardedError(key);
  const manifest = parseManifest(text, key);
  if (manifest.runId === ref.runId || ref.runId.startsWith(`${manifest.runId}.replay-`)) return manifest;
  // A later export replaced the manifest: the run's parts are still under its run= folder, one receipt each.
  const parts: Manifest['parts'] = [];
  for (let part = 0; ; part++) {
    const r = await getJson<Receipt>(deps.s3, deps.bucket, deps.layout.receiptKey({ ...ref, part }));
    if (r === undefined) break;
    parts.push({ key: r.partKey, events: r.read, bytes: 0, sha256: '' } as Manifest['parts'][number]);
  }
  return { ...manifest, runId: ref.runId, parts };
}

/** Writes the refused records, each with its staged line, Platform's code and message; one file per part. */
async function writeRefused(
  ref: RunRef,
  receipt: WindowReceipt,
  manifest: Manifest | undefined,
  traced: readonly Traced[],
  deps: VerifyDeps,
): Promise<string[]> {
  if (traced.length === 0 || manifest === undefined) return [];
  const byPart = new Map<number, Map<number, Traced>>();
  for (const t of traced) {
    let lines = byPart.get(t.part);
    if (lines === undefined) byPart.set(t.part, (lines = new Map()));
    lines.set(t.line, t);
  }
  const keys: string[] = [];
  for (const [part, lines] of [...byPart].sort((a, b) => a[0] - b[0])) {
    const meta = manifest.parts[part]!;
    const out: string[] = [];
    let n = 0;
    for await (const batch of readPartLines(deps.s3, deps.bucket, meta, 1024, meta.sha256 !== '')) {
      for (const line of batch) {
        const t = lines.get(n++);
        if (t === undefined) continue;
        const r = t.refusal;
        out.push(
          JSON.stringify({
            reason: t.reason,
            detail: `${r.code}: ${r.message}`,
            window: receipt.window,
            part: meta.key,
            line,
            batchId: r.batchId,
            code: r.code,
          }),
        );
      }
    }
    const pref: PartRef = { ...ref, part };
    const key = deps.layout.platformRejectedKey(pref);
    await deps.s3.send(
      new PutObjectCommand({
        Bucket: deps.bucket,
        Key: key,
        Body: gzipSync(`${out.join('\n')}\n`),
        ContentType: 'application/x-ndjson',
        ContentEncoding: 'gzip',
      }),
    );
    keys.push(key);
  }
  return keys;
}
