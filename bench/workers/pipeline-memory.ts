/**
 * Memory of one function in a fresh process, as Lambda runs them: `export <from> <to>` stages one window (Mixpanel
 * emulator → s3rver) with the export handler; `forward <manifestKey>...` forwards committed windows (s3rver → AEP
 * emulator) with the forward handler, as `runPipeline` does locally. Reports the process's peak RSS at the end
 * (getrusage maxRSS: what the issue measures), and the peaks of RSS, V8 heap and external memory sampled every 20 ms.
 */
import { writeFileSync } from 'node:fs';
import { readConfig } from '#common/config';
import { createForwardDeps } from '#forward/deps';
import type { WindowForwardResult } from '#forward/window';
import { sqsEventFor } from '#cli/pipeline';
import { createForwardHandler } from '../../functions/forward/handler.ts';
import { benchS3, peakRssMb, quiet, report, timed, timedSteadyStateExport } from './common.ts';

const [role, ...args] = process.argv.slice(2);
if (role !== 'export' && role !== 'forward') throw new Error(`usage: pipeline-memory export|forward …, not ${role}`);
const s3 = benchS3();

const MB = 1048576;
const peak = { rss: 0, heapUsed: 0, heapTotal: 0, external: 0, arrayBuffers: 0 };
const sample = (): void => {
  const m = process.memoryUsage();
  peak.rss = Math.max(peak.rss, m.rss);
  peak.heapUsed = Math.max(peak.heapUsed, m.heapUsed);
  peak.heapTotal = Math.max(peak.heapTotal, m.heapTotal);
  peak.external = Math.max(peak.external, m.external);
  peak.arrayBuffers = Math.max(peak.arrayBuffers, m.arrayBuffers);
  if (series !== undefined)
    series.push(
      `${role} ${Math.round(performance.now())} ${[m.rss, m.heapUsed, m.heapTotal, m.external, m.arrayBuffers].map((v) => Math.round(v / MB)).join(' ')}`,
    );
};
// BENCH_MEMORY_SERIES=<file>: every sample is also written there
// (role, ms, rss, heapUsed, heapTotal, external, arrayBuffers in MB).
const seriesFile = process.env.BENCH_MEMORY_SERIES;
const series: string[] | undefined = seriesFile === undefined ? undefined : [];
const rssAtStart = process.memoryUsage().rss;
const timer = setInterval(sample, 20);

/** The export function: one window staged, with the rate a project in steady state has in its checkpoint. */
async function exportWindow(from: string, to: string) {
  const run = await timedSteadyStateExport(s3, from, to);
  const committed = run.value.windows.filter((w) => w.status === 'committed' && w.manifestKey !== undefined);
  return {
    ms: run.ms,
    cpuMs: Math.round(run.cpuMs),
    exported: run.value.windows.reduce((n, w) => n + w.events, 0),
    windows: run.value.windows.length,
    manifestKeys: committed.map((w) => w.manifestKey!),
  };
}

/** The forward function: each committed window's manifest notification, in turn. */
async function forwardWindows(manifestKeys: readonly string[]) {
  const config = readConfig(process.env, 'forward');
  const deps = await createForwardDeps(config, { s3, log: quiet });
  const forwarded: WindowForwardResult[] = [];
  const handler = createForwardHandler(
    async () => deps,
    (r) => forwarded.push(r),
  );
  const run = await timed(async () => {
    const failures: string[] = [];
    for (const key of manifestKeys) {
      const reply = await handler(sqsEventFor(config.staging.bucket, key));
      failures.push(...reply.batchItemFailures.map((f) => f.itemIdentifier));
    }
    return failures;
  });
  return {
    ms: run.ms,
    cpuMs: Math.round(run.cpuMs),
    accepted: forwarded.reduce((n, r) => n + r.accepted, 0),
    rejected: forwarded.reduce((n, r) => n + r.rejected, 0),
    forwardFailures: run.value.length,
  };
}

const result = role === 'export' ? await exportWindow(args[0]!, args[1]!) : await forwardWindows(args);
sample();
clearInterval(timer);
if (seriesFile !== undefined) writeFileSync(seriesFile, `${series!.join('\n')}\n`);
report({
  ...result,
  rssAtStartMb: Math.round((10 * rssAtStart) / MB) / 10,
  peakHeapMb: peak.heapUsed / MB,
  peaksMb: Object.fromEntries(Object.entries(peak).map(([k, v]) => [k, Math.round((10 * v) / MB) / 10])),
  maxRssMb: peakRssMb(),
});
