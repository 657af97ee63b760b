/**
 * Re-sending a batch Platform failed (batch sink): a failed batch stored nothing (Catalog `failed` is final and its
 * data is not promoted, AdobeDocs/experience-platform.en help/ingestion/batch-ingestion/troubleshooting.md), so the
 * records the run had put in it are sent again, in a new batch, exactly those: each part's file is rebuilt from its
 * staged lines and its id ledger, as the forwarder built it. The run's batch.json then names the new batch (the failed
 * one kept in `previous`), the verdict goes back to pending and the verifier follows the new batch. Nothing Platform
 * stored is sent again: only a batch whose Catalog status is failed is re-sent, and the verdict's refused records
 * (rejected/ `platform-part-*`) are removed, since they are being delivered now.
 */
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { ConnectorError } from '#common/errors';
import { type BatchApi, type BatchState, uploadPartFile } from '#forward/batch-run';
import { PartLedger } from '#forward/ledger';
import type { WindowReceipt } from '#forward/receipt';
import type { ForwardDeps } from '#forward/window';
import type { Mapper } from '#mapping/mapper';
import { type Manifest, parseManifest } from '#staging/manifest';
import { getBytes, getJson, getText, putJson } from '#staging/s3';
import { markPending } from './pending.ts';
import { batchPhase } from '#aep/batch-status';
import type { PlatformReader } from './platform.ts';
import type { RunRef } from './verify-window.ts';

export class ResendRefusedError extends ConnectorError {
  constructor(message: string) {
    super('input', message);
    this.name = 'ResendRefusedError';
  }
}

export interface ResendDeps extends Pick<ForwardDeps, 's3' | 'bucket' | 'layout' | 'now' | 'log'> {
  readonly batches: BatchApi;
  readonly platform: PlatformReader;
  readonly mapperFor: (manifest: Manifest) => Mapper;
}

export interface ResendResult {
  readonly failedBatchId: string;
  readonly batchId: string;
  readonly records: number;
  readonly files: number;
}

/**
 * Sends the records of the run's failed batch again in a new batch, and marks the run pending verification.
 * @throws ResendRefusedError when the run has no batch, its batch did not fail, or its staging was replaced
 */
export async function resendFailedBatch(ref: RunRef, deps: ResendDeps): Promise<ResendResult> {
  const receiptKey = deps.layout.windowReceiptKey(ref);
  const receipt = await getJson<WindowReceipt>(deps.s3, deps.bucket, receiptKey);
  if (receipt?.sink !== 'batch') {
    throw new ResendRefusedError(`run ${ref.runId} of window ${ref.windowId} has no batch-sink reconciliation`);
  }
  const stateKey = deps.layout.batchStateKey(ref);
  const state = await getJson<BatchState>(deps.s3, deps.bucket, stateKey);
  if (state === undefined) throw new ResendRefusedError(`run ${ref.runId} created no batch: nothing to re-send`);
  const current = await deps.platform.getBatch(state.batchId);
  // A batch that was created and saved but never completed (an interrupted re-send) is filled and completed again.
  const unfinished = state.completedAt === undefined && state.previous !== undefined;
  if (!unfinished && batchPhase(current.status) !== 'failed') {
    throw new ResendRefusedError(
      `batch ${state.batchId} of window ${ref.windowId} is ${current.status}, not failed: re-sending it would store ` +
        'its records twice',
    );
  }
  const manifestKey = deps.layout.manifestKey(ref);
  const text = await getText(deps.s3, deps.bucket, manifestKey);
  const manifest = text === undefined ? undefined : parseManifest(text, manifestKey);
  if (manifest === undefined || manifest.runId !== ref.runId.replace(/\.replay-.*$/, '')) {
    throw new ResendRefusedError(
      `window ${ref.windowId} was re-exported after run ${ref.runId}: forward the current run instead`,
    );
  }

  const next: BatchState = unfinished
    ? state
    : {
        batchId: await deps.batches.createBatch(),
        status: 'loading',
        previous: [...(state.previous ?? []), { id: state.batchId, status: current.status }],
      };
  await putJson(deps.s3, deps.bucket, stateKey, next);
  const mapper = deps.mapperFor(manifest);
  let records = 0;
  let files = 0;
  for (let index = 0; index < manifest.parts.length; index++) {
    const part = manifest.parts[index]!;
    const bytes = await getBytes(deps.s3, deps.bucket, deps.layout.ledgerKey({ ...ref, part: index }));
    if (bytes === undefined || bytes.byteLength === 0) continue;
    const mine = new PartLedger(part.events);
    mine.addBytes(bytes);
    await uploadPartFile(deps.batches, next.batchId, index, deps, part, mapper, mine);
    records += mine.size;
    files++;
  }
  await deps.batches.completeBatch(next.batchId);
  const completed: BatchState = { ...next, completedAt: new Date(deps.now()).toISOString() };
  await putJson(deps.s3, deps.bucket, stateKey, completed);

  for (const key of receipt.platform?.rejectedKeys ?? []) {
    await deps.s3.send(new DeleteObjectCommand({ Bucket: deps.bucket, Key: key }));
  }
  const failedBatchId = completed.previous!.at(-1)!.id;
  await putJson(deps.s3, deps.bucket, receiptKey, {
    ...receipt,
    batch: { id: completed.batchId, status: completed.status },
    platform: {
      status: 'pending',
      ingested: 0,
      failed: 0,
      checkedAt: new Date(deps.now()).toISOString(),
      checks: receipt.platform?.checks ?? 0,
      detail: `re-sent as batch ${completed.batchId} after batch ${failedBatchId} failed`,
      batches: [...(completed.previous ?? []), { id: completed.batchId, status: completed.status }],
    },
  } satisfies WindowReceipt);
  await markPending(deps, ref);
  deps.log.info('failed batch re-sent', { window: ref.windowId, runId: ref.runId, failedBatchId, ...completed });
  return { failedBatchId, batchId: completed.batchId, records, files };
}
