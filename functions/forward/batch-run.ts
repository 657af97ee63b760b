/**
 * The batch sink's side of a window run: at most one Platform batch per run, created when the first part has records
 * to upload — or, for a window fanned out to partition invocations, by the notification's invocation before it fans
 * out — its id saved next to the receipts (so a resumed run and every partition fill the same batch), one file per
 * part that has records (never an empty file), then COMPLETE (or ABORT when the run sent nothing) and a bounded wait
 * for Platform's verdict.
 * The Batch Ingestion calls themselves live in aep/batch.ts (AdobeDocs/experience-platform.en
 * help/ingestion/batch-ingestion/api-overview.md; the COMPLETE and ABORT actions: AdobeDocs/experience-platform-apis
 * static/swagger-specs/batch-ingestion.yaml, `action` of the batch signal).
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { batchPhase } from '#aep/batch-status';
import { ConnectorError } from '#common/errors';
import type { Mapper } from '#mapping/mapper';
import type { WindowRef } from '#staging/layout';
import type { Manifest } from '#staging/manifest';
import { getJson, putJson } from '#staging/s3';
import { RetriesExhaustedError, type RetryPolicy, withRetry } from '#common/retry';
import { isPreconditionFailed } from './lease.ts';
import type { PartLedger } from './ledger.ts';
import { readPartLines } from './part-reader.ts';
import type { ForwardDeps } from './window.ts';

/** The part of the Batch Ingestion client the forwarder uses (see aep/batch.ts). */
export interface BatchApi {
  createBatch(): Promise<string>;
  uploadFile(batchId: string, name: string, body: () => AsyncIterable<string>): Promise<unknown>;
  completeBatch(batchId: string): Promise<void>;
  abortBatch(batchId: string): Promise<void>;
  batchStatus(batchId: string): Promise<{ readonly status: string }>;
}

/** How long the forwarder waits for Platform to finish a completed batch before it reports it as still loading. */
export const BATCH_STATUS_WAIT_MS = 60_000;

/** Status polls: 250 ms doubling to 5 s (no jitter: one poller per batch), bounded by time, not by attempts. */
const STATUS_POLL: RetryPolicy = {
  maxAttempts: Number.POSITIVE_INFINITY,
  baseDelayMs: 250,
  maxDelayMs: 5_000,
  maxRetryAfterMs: 0,
};

/** The run's batch, as saved in `batch.json` of its delivery folder. */
export interface BatchState {
  batchId: string;
  status: string;
  completedAt?: string;
  /** COMPLETE is about to be sent: a close that finds this without `completedAt` asks Catalog before sending it again. */
  completing?: string;
  /** Earlier batches of the run that Platform failed, the oldest first (`resend` replaced them with this one). */
  previous?: Array<{ id: string; status: string }>;
}

/** The batch is still being promoted (internal: makes the shared retry helper poll again). */
class BatchNotSettledError extends ConnectorError {
  constructor(batchId: string, status: string) {
    super('transient', `batch ${batchId} is still ${status}`);
    this.name = 'BatchNotSettledError';
  }
}

/** The S3 key of a run's batch state. */
export function batchStateKey(deps: ForwardDeps, ref: WindowRef, runId: string): string {
  return deps.layout.batchStateKey({ ...ref, runId });
}

/**
 * The run's batch, created on first use: a run with nothing to upload creates none (Platform fails a batch completed
 * without data: troubleshooting.md, error 106), and its `window.json` then names no batch. Once created, its id is
 * saved in `batch.json` before any file goes into it, so a resumed run keeps filling the same batch. Creation is
 * once per run across invocations: `batch.json` is written only if absent (S3 `If-None-Match: *`), and an invocation
 * that loses that race aborts the batch it just created and uses the saved one.
 */
export class RunBatch {
  readonly #api: BatchApi;
  readonly #deps: ForwardDeps;
  readonly #key: string;
  #state: BatchState | undefined;
  #opening: Promise<BatchState> | undefined;

  private constructor(api: BatchApi, deps: ForwardDeps, key: string, saved: BatchState | undefined) {
    this.#api = api;
    this.#deps = deps;
    this.#key = key;
    this.#state = saved;
  }

  /** The run's batch as an earlier attempt left it in `key` (none yet when it created none). */
  static async load(api: BatchApi, deps: ForwardDeps, key: string): Promise<RunBatch> {
    return new RunBatch(api, deps, key, await getJson<BatchState>(deps.s3, deps.bucket, key));
  }

  /** The batch's last known state; undefined while no part has needed it. */
  get state(): BatchState | undefined {
    return this.#state;
  }

  /** The batch id, creating and saving the batch the first time (parts asking at once share one creation). */
  async id(): Promise<string> {
    if (this.#state !== undefined) return this.#state.batchId;
    this.#opening ??= this.#create().catch((error: unknown) => {
      this.#opening = undefined;
      throw error;
    });
    return (await this.#opening).batchId;
  }

  /**
   * Completes the batch and reads its verdict (see `closeBatch`); nothing to do when none was created. The saved state
   * is read again first: another invocation (a partition's) may have created or closed the batch since `load`. A
   * batch of a run that accepted nothing (`empty`: every partition turned out to have nothing to send) holds no file
   * and is aborted instead, as Platform would fail it (error 106); ABORT is batch-ingestion.yaml's other signal.
   */
  async close(window: string, o: { empty?: boolean } = {}): Promise<BatchState | undefined> {
    const { s3, bucket } = this.#deps;
    this.#state = (await getJson<BatchState>(s3, bucket, this.#key)) ?? this.#state;
    if (this.#state === undefined) return undefined;
    if (this.#state.status === 'aborted') return this.#state;
    if (o.empty === true && this.#state.completedAt === undefined) {
      await this.#api.abortBatch(this.#state.batchId);
      this.#state = { ...this.#state, status: 'aborted' };
      await putJson(s3, bucket, this.#key, this.#state);
      this.#deps.log.info('aborted the run batch: the run had nothing to send', {
        batchId: this.#state.batchId,
        window,
      });
      return this.#state;
    }
    this.#state = await closeBatch(this.#api, this.#state, this.#deps, this.#key, window);
    return this.#state;
  }

  async #create(): Promise<BatchState> {
    const { s3, bucket, log } = this.#deps;
    // Another invocation of the run (a partition's, or the notification's before it fanned out) may have created it.
    const saved = await getJson<BatchState>(s3, bucket, this.#key);
    if (saved !== undefined) return (this.#state = saved);
    const batch: BatchState = { batchId: await this.#api.createBatch(), status: 'loading' };
    try {
      await s3.send(
        new PutObjectCommand({
          Bucket: bucket,
          Key: this.#key,
          Body: JSON.stringify(batch, null, 1),
          ContentType: 'application/json',
          IfNoneMatch: '*',
        }),
      );
    } catch (error) {
      if (!isPreconditionFailed(error)) throw error;
      // Created at the same moment by another invocation: use that one, and leave no open batch behind.
      const winner = await getJson<BatchState>(s3, bucket, this.#key);
      if (winner === undefined) throw error;
      await this.#api.abortBatch(batch.batchId).catch((e: unknown) =>
        log.warn('could not abort a batch created twice; Platform never promotes an open batch', {
          batchId: batch.batchId,
          reason: (e as Error).message,
        }),
      );
      return (this.#state = winner);
    }
    this.#state = batch;
    return batch;
  }
}

/** Completes the run's batch, waits a bounded time for its verdict and saves what it learnt. */
export async function closeBatch(
  api: BatchApi,
  state: BatchState,
  deps: ForwardDeps,
  key: string,
  window: string,
): Promise<BatchState> {
  const batch = await finishBatch(api, state, deps, key);
  await putJson(deps.s3, deps.bucket, key, batch);
  if (batchPhase(batch.status) === 'failed') {
    deps.log.error('Platform failed the batch: check its errors in the Platform UI or the Catalog API', {
      batchId: batch.batchId,
      status: batch.status,
      window,
    });
  }
  return batch;
}

/** Completes the batch (idempotent) and polls its status until it settles or the wait (or the deadline) is over. */
async function finishBatch(api: BatchApi, state: BatchState, deps: ForwardDeps, key: string): Promise<BatchState> {
  if (state.completedAt === undefined) {
    // COMPLETE once: an earlier close that stopped between sending it and saving `completedAt` left `completing`;
    // Catalog then tells whether it went through (a batch past `loading` was completed). Sent again it would still be
    // harmless ("If the operation actually succeeded, the API will return success, even after retrying":
    // troubleshooting.md), but the run's batch is signalled by one invocation, once.
    const sent = state.completing !== undefined && (await api.batchStatus(state.batchId)).status !== 'loading';
    if (!sent) {
      await putJson(deps.s3, deps.bucket, key, { ...state, completing: new Date(deps.now()).toISOString() });
      await api.completeBatch(state.batchId);
    }
    state = { ...state, completedAt: new Date(deps.now()).toISOString() };
  }
  const until = Math.min(deps.now() + BATCH_STATUS_WAIT_MS, deps.deadlineMs ?? Number.POSITIVE_INFINITY);
  try {
    await withRetry(
      `waiting for batch ${state.batchId}`,
      async () => {
        const { status } = await api.batchStatus(state.batchId);
        state = { ...state, status };
        // Settled once Catalog reports a final phase; an unknown word is waited on like an in-progress one.
        const phase = batchPhase(status);
        if (phase !== 'succeeded' && phase !== 'failed') throw new BatchNotSettledError(state.batchId, status);
      },
      {
        policy: STATUS_POLL,
        classify: (error) => ({ retry: error instanceof BatchNotSettledError }),
        now: deps.now,
        random: () => 1,
        deadlineMs: until,
        ...(deps.sleep !== undefined ? { sleep: deps.sleep } : {}),
      },
    );
  } catch (error) {
    // Out of waiting time: the last status read is the answer (a Catalog error itself still fails the run).
    if (!(error instanceof RetriesExhaustedError && error.cause instanceof BatchNotSettledError)) throw error;
  }
  return state;
}

/**
 * Uploads the part's file into the batch: exactly the records this part accepted, re-read and re-mapped from staging
 * each time the body is opened, so an upload can be retried.
 */
export async function uploadPartFile(
  api: BatchApi,
  batchId: string,
  index: number,
  deps: Pick<ForwardDeps, 's3' | 'bucket'>,
  part: Manifest['parts'][number],
  mapper: Mapper,
  mine: PartLedger,
): Promise<void> {
  const name = `part-${String(index).padStart(5, '0')}.json`;
  await api.uploadFile(batchId, name, () => mappedLines(deps, part, mapper, mine));
}

/** The mapped JSON Lines of the records of `part` whose id this part delivered (replayable). */
async function* mappedLines(
  deps: Pick<ForwardDeps, 's3' | 'bucket'>,
  part: Manifest['parts'][number],
  mapper: Mapper,
  mine: PartLedger,
): AsyncGenerator<string> {
  let n = 0;
  for await (const batch of readPartLines(deps.s3, deps.bucket, part)) {
    let out = '';
    for (const line of batch) {
      const here = n++;
      const m = mapper(JSON.parse(line));
      if (m.ok && mine.delivered(here)) out += `${m.json}\n`;
    }
    if (out !== '') yield out;
  }
}
