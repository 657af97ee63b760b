/**
 * Export Lambda: scheduled (EventBridge Scheduler / rule) or manual (backfill) invocation → staged, committed windows.
 * Thin by design: parse the event, read config once per container, run the export, emit metrics, return the summary.
 */
import type { Context } from 'aws-lambda';
import { readConfig } from '#shared/config';
import { createExportDeps } from '#shared/export/deps';
import { parseExportEvent } from '#shared/export/events';
import { type ExportResult, runExport } from '#shared/export/run';
import { logger } from '#shared/log';
import { MetricUnit, createMetrics } from '#shared/metrics';

let deps: ReturnType<typeof createExportDeps> | undefined;
const metrics = createMetrics();

export const handler = async (event: unknown, context?: Context): Promise<ExportResult> => {
  const invocation = parseExportEvent(event);
  deps ??= createExportDeps(readConfig(process.env, 'export'));
  logger.info('export invoked', { invocation });
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
  const lagTo = result.checkpoint?.[deps.windows.mode];
  if (lagTo !== undefined) metrics.addMetric('WindowLagSeconds', MetricUnit.Seconds, Math.max(0, (deps.now() - Date.parse(lagTo)) / 1000));
  metrics.publishStoredMetrics();
  return result;
};
