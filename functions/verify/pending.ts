/**
 * The verifier's round: every forwarded run still waiting for Platform's verdict has a marker under
 * `verify/pending/` (written by the forwarder with the run's window.json); each round checks the markers, oldest
 * first, within a time budget, and removes a marker once its run's verdict is final. A scheduled invocation of the
 * forward Lambda runs a round every few minutes (docs/architecture.md#platforms-verdict); a round that is cut short
 * or fails leaves the markers for the next one, and checking a run twice is harmless.
 */
import { DeleteObjectCommand, ListObjectsV2Command, PutObjectCommand } from '@aws-sdk/client-s3';
import { type RunRef, type RunVerdict, type VerifyDeps, verifyRun } from './verify-window.ts';

/** Runs checked per round at most: a round stays short, and a backlog drains over a few rounds. */
export const MAX_RUNS_PER_ROUND = 200;

export interface RoundResult {
  readonly checked: RunVerdict[];
  /** Markers left for the next round (budget or deadline reached). */
  readonly left: number;
  /** Runs whose check failed (logged; the marker stays). */
  readonly errors: number;
}

/** Marks a forwarded run as waiting for Platform's verdict. */
export async function markPending(deps: Pick<VerifyDeps, 's3' | 'bucket' | 'layout'>, ref: RunRef): Promise<void> {
  await deps.s3.send(
    new PutObjectCommand({
      Bucket: deps.bucket,
      Key: deps.layout.verifyPendingKey(ref),
      Body: '{}',
      ContentType: 'application/json',
    }),
  );
}

/** Checks one run and, once its verdict is final, removes its pending marker (if any). */
export async function settleRun(ref: RunRef, deps: VerifyDeps): Promise<RunVerdict> {
  const v = await verifyRun(ref, deps);
  if (v.verdict.status !== 'pending') {
    await deps.s3.send(new DeleteObjectCommand({ Bucket: deps.bucket, Key: deps.layout.verifyPendingKey(ref) }));
  }
  return v;
}

/** Checks the pending runs until `deadlineMs` or {@link MAX_RUNS_PER_ROUND}. */
export async function verifyPending(
  deps: VerifyDeps,
  opts: { readonly deadlineMs?: number; readonly maxRuns?: number; readonly projectId?: string } = {},
): Promise<RoundResult> {
  const max = opts.maxRuns ?? MAX_RUNS_PER_ROUND;
  const prefix =
    opts.projectId === undefined
      ? deps.layout.verifyPendingPrefix()
      : `${deps.layout.verifyPendingPrefix()}project=${opts.projectId}/`;
  const markers = await listMarkers(deps, prefix);
  const checked: RunVerdict[] = [];
  let errors = 0;
  let done = 0;
  for (const { ref } of markers) {
    if (done >= max || (opts.deadlineMs !== undefined && deps.now() >= opts.deadlineMs)) break;
    done++;
    try {
      checked.push(await settleRun(ref, deps));
    } catch (error) {
      errors++;
      deps.log.error('verifying a forwarded run failed; the next round tries again', {
        window: ref.windowId,
        runId: ref.runId,
        error: error as Error,
      });
    }
  }
  return { checked, left: markers.length - done, errors };
}

/** Markers, oldest first (by their LastModified: the order runs were forwarded). */
async function listMarkers(deps: VerifyDeps, prefix: string): Promise<Array<{ ref: RunRef }>> {
  const found: Array<{ ref: RunRef; at: number }> = [];
  let token: string | undefined;
  do {
    const page = await deps.s3.send(
      new ListObjectsV2Command({ Bucket: deps.bucket, Prefix: prefix, ContinuationToken: token }),
    );
    for (const o of page.Contents ?? []) {
      const ref = o.Key === undefined ? undefined : deps.layout.parseVerifyPendingKey(o.Key);
      if (ref !== undefined) found.push({ ref, at: o.LastModified?.getTime() ?? 0 });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  return found.sort((a, b) => a.at - b.at);
}
