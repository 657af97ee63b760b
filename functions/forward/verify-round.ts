/**
 * The forward Lambda's verify round (the `{"action":"verify"}` event): checks the runs waiting for Platform's verdict
 * and publishes what Platform decided, once per run, as metrics the stack alarms on.
 */
import { MetricUnit } from '#common/metrics';
import { verifyPending } from '#verify/pending';
import { PLATFORM_REASONS, type RunVerdict, type VerifyDeps } from '#verify/verify-window';
import type { ForwardBaseDeps } from './deps.ts';
import type { ForwardMetrics } from './handler.ts';

export interface VerifySummary {
  readonly checked: number;
  readonly settled: number;
  readonly pending: number;
  readonly left: number;
  readonly errors: number;
}

/** The verifier's dependencies, from the forwarder's (the same clients, dataset and staging). */
export function verifyDepsOf(d: ForwardBaseDeps): VerifyDeps {
  return {
    ...d,
    platform: d.platform,
    datasetId: d.aep.datasetId,
    streamingSettleMs: d.aep.verifySettleMinutes * 60_000,
  };
}

/**
 * A round stops taking new runs after this long, so that it ends before the next schedule fires (every 5 minutes by
 * default): two rounds checking the same run at once would both report its verdict.
 */
export const VERIFY_ROUND_MS = 4 * 60_000;

/** One verifier round with the forwarder's clients; metrics for every run whose verdict became final. */
export async function runVerifyRound(
  d: ForwardBaseDeps,
  metrics: ForwardMetrics,
  deadlineMs: number | undefined,
): Promise<VerifySummary> {
  const until = Math.min(deadlineMs ?? Number.POSITIVE_INFINITY, d.now() + VERIFY_ROUND_MS);
  const round = await verifyPending(verifyDepsOf(d), { deadlineMs: until });
  for (const v of round.checked) if (v.settledNow) publish(metrics, v);
  const summary: VerifySummary = {
    checked: round.checked.length,
    settled: round.checked.filter((v) => v.settledNow).length,
    pending: round.checked.filter((v) => v.verdict.status === 'pending').length,
    left: round.left,
    errors: round.errors,
  };
  d.log.info('verify round finished', { ...summary });
  return summary;
}

function publish(metrics: ForwardMetrics, v: RunVerdict): void {
  metrics.addDimension('ProjectId', v.ref.projectId);
  metrics.addMetric('RecordsIngested', MetricUnit.Count, v.verdict.ingested);
  metrics.addMetric('RecordsFailedAtPlatform', MetricUnit.Count, v.verdict.failed);
  const batchFailed = (v.verdict.byReason?.[PLATFORM_REASONS.batch] ?? 0) > 0;
  metrics.addMetric('PlatformBatchesFailed', MetricUnit.Count, batchFailed ? 1 : 0);
  // A run Platform gave no final verdict on within the horizon: counted apart, it is not a refusal.
  metrics.addMetric('PlatformVerdictsMissing', MetricUnit.Count, v.verdict.status === 'failed' && !batchFailed ? 1 : 0);
  metrics.publishStoredMetrics();
}
