/**
 * Export Lambda: scheduled (EventBridge Scheduler / rule) or manual (backfill) invocation → staged, committed windows.
 * Thin by design: parse the event, get the container's dependencies (config read once), run the export, emit
 * metrics, return the summary. `createExportHandler` lets the CLI and tests run this same code with their own clients.
 */
import type { Context } from 'aws-lambda';
import { readConfig } from '#common/config';
import { type ExportBaseDeps, createExportDeps } from '#export/deps';
import { parseExportEvent } from '#export/events';
import { type ExportResult, runExport } from '#export/run';
import { MetricUnit, createMetrics } from '#common/metrics';

export function createExportHandler(getDeps: () => ExportBaseDeps) {
  const metrics = createMetrics();
  return async (event: unknown, context?: Pick<Context, 'getRemainingTimeInMillis'>): Promise<ExportResult> => {
    const invocation = parseExportEvent(event);
    const deps = getDeps();
    deps.log.info('export invoked', { invocation });
    const result = await runExport(invocation, {
      ...deps,
      ...(context ? { remainingMs: () => context.getRemainingTimeInMillis() } : {}),
    });
    metrics.addDimension('ProjectId', deps.mixpanel.projectId);
    for (const w of result.windows.filter((x) => x.status === 'committed')) {
      metrics.addMetric('WindowsCommitted', MetricUnit.Count, 1);
      metrics.addMetric('EventsExported', MetricUnit.Count, w.events);
      metrics.addMetric('EventsQuarantined', MetricUnit.Count, w.quarantined);
    }
    // Backfill progress: windows planned but left to later runs (0 once a backfill or catch-up is done).
    if (result.windows.some((w) => w.status !== 'dry-run'))
      metrics.addMetric('WindowsRemaining', MetricUnit.Count, result.remaining?.windows ?? 0);
    const to = result.checkpoint?.[deps.windows.mode];
    if (to !== undefined)
      metrics.addMetric('WindowLagSeconds', MetricUnit.Seconds, Math.max(0, (deps.now() - Date.parse(to)) / 1000));
    // A dry run or a run with nothing to do has no metrics: publishing would only log a warning.
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
    else metrics.clearDimensions();
    return result;
  };
}

let deps: ExportBaseDeps | undefined;
export const handler = createExportHandler(() => (deps ??= createExportDeps(readConfig(process.env, 'export'))));
