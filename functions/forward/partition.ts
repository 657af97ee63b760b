/**
 * Forwards one partition of a committed window (staging/partition.ts): its parts, deduplicated against an id set
 * sized to the partition. Partitions are disjoint in `_id` by construction (the partition is a function of the id's
 * digest), so the earlier deliveries that matter are the ledger entries whose digest falls in this partition — of this
 * window's earlier runs and of its neighbours — whatever partitioning those runs used. No structure grows with the
 * window: the id set holds a partition, the part ledgers a part.
 */
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { Mapper } from '#mapping/mapper';
import type { PartRef, WindowRef } from '#staging/layout';
import { type Manifest, partitionCount, partitionParts } from '#staging/manifest';
import { partitionOfHi } from '#staging/partition';
import { getBytes } from '#staging/s3';
import type { RunBatch } from './batch-run.ts';
import { IdSet } from './ledger.ts';
import { NEIGHBOUR_ID_BUDGET, loadNeighbourLedgers } from './neighbours.ts';
import { forwardPart } from './part.ts';
import type { Receipt } from './receipt.ts';
import { type ForwardDeps, PART_CONCURRENCY } from './window.ts';

export interface PartitionJob {
  readonly ref: WindowRef;
  readonly manifest: Manifest;
  readonly runId: string;
  readonly replay: boolean;
  readonly mapper: Mapper;
  readonly partition: number;
  readonly deps: ForwardDeps;
  readonly batch?: RunBatch;
  /** True once the forward must stop (a lease was lost). */
  readonly lost: () => boolean;
}

export interface PartitionOutcome {
  /** The receipt of each part of the partition that was reached, by part index. */
  readonly receipts: Map<number, Receipt>;
  /** Parts an earlier attempt had completed. */
  readonly skipped: number;
  /** False when a part stopped early (deadline, lost lease). */
  readonly complete: boolean;
}

/** Forwards the parts of one partition (all parts for an unpartitioned manifest), resuming from their receipts. */
export async function forwardPartition(job: PartitionJob): Promise<PartitionOutcome> {
  const { ref, manifest, deps, partition } = job;
  const indexes = partitionParts(manifest, partition);
  const partitions = partitionCount(manifest);
  const keep = partitions > 1 ? (hi: number) => partitionOfHi(hi, partitions) === partition : undefined;
  // Every id this partition delivered (any run or part, this run's own progress included) or is about to send: an id
  // seen before is a duplicate. A resumed part first skips its own delivered lines (its ledger knows their lines).
  const seen = new IdSet(indexes.reduce((n, i) => n + manifest.parts[i]!.events, 0));
  if (!job.replay) {
    // This run's other partitions cannot hold this partition's ids (and are being written meanwhile): skipped.
    const others = new Set(
      partitions > 1
        ? manifest.parts.flatMap((_, i) =>
            indexes.includes(i) ? [] : [deps.layout.ledgerKey({ ...ref, runId: job.runId, part: i })],
          )
        : [],
    );
    await loadWindowLedgers(deps, ref, seen, keep, others);
    // Mixpanel's retries of one event can land in neighbouring windows: what those delivered is not sent again.
    const [from, to] = [Date.parse(manifest.window.from), Date.parse(manifest.window.to)];
    const budget = NEIGHBOUR_ID_BUDGET * partitions;
    const near = await loadNeighbourLedgers(deps.s3, deps.bucket, deps.layout, ref, from, to, seen, budget, keep);
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

  const receipts = new Map<number, Receipt>();
  let skipped = 0;
  let complete = true;
  let failure: unknown;
  // A part that fails (or a lost lease) stops the others at their next chunk, and every worker has finished before
  // this function returns: nothing keeps sending after the invocation answered (a frozen Lambda would resume it later).
  const stop = (): boolean => failure !== undefined || job.lost();
  let next = 0;
  const work = async (): Promise<void> => {
    while (next < indexes.length && complete && !stop()) {
      const index = indexes[next++]!;
      const part: PartRef = { ...ref, runId: job.runId, part: index };
      const one = { manifest, index, ref: part, mapper: job.mapper, seen, deps, replay: job.replay, stop };
      const { receipt, skipped: done } = await forwardPart(
        job.batch === undefined ? one : { ...one, batch: job.batch },
      );
      if (done) skipped++;
      receipts.set(index, receipt);
      if (receipt.status !== 'complete') complete = false;
    }
  };
  const worker = (): Promise<void> => work().catch((error: unknown) => void (failure ??= error));
  const workers = Math.min(deps.partConcurrency ?? PART_CONCURRENCY, indexes.length);
  await Promise.all(Array.from({ length: workers }, worker));
  if (failure !== undefined) throw failure;
  if (job.lost()) complete = false;
  return { receipts, skipped, complete };
}

async function loadWindowLedgers(
  deps: ForwardDeps,
  ref: WindowRef,
  seen: IdSet,
  keep: ((hi: number) => boolean) | undefined,
  skip: ReadonlySet<string>,
): Promise<void> {
  const prefix = deps.layout.deliveryPrefix(ref);
  let token: string | undefined;
  do {
    const list = new ListObjectsV2Command({ Bucket: deps.bucket, Prefix: prefix, ContinuationToken: token });
    const page = await deps.s3.send(list);
    for (const o of page.Contents ?? []) {
      if (!o.Key!.endsWith('.ids') || skip.has(o.Key!)) continue;
      const bytes = await getBytes(deps.s3, deps.bucket, o.Key!);
      if (bytes !== undefined) seen.addBytes(bytes, keep);
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
}
