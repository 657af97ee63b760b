/**
 * Memory of the whole pipeline in a fresh process: export one window (Mixpanel emulator → s3rver), then forward it
 * (s3rver → AEP emulator) with the two handlers, as `runPipeline` does locally. Reports the process's peak RSS at the
 * end (getrusage maxRSS: what the issue measures), and the peaks of RSS, V8 heap and external memory sampled every
 * 20 ms in each phase. argv: from, to (ISO).
 */
import { writeFileSync } from 'node:fs';
import { readConfig } from '#common/config';
import { createExportDeps } from '#export/deps';
import { createForwardDeps } from '#forward/deps';
import type { WindowForwardResult } from '#forward/window';
import { sqsEventFor } from '#cli/pipeline';
import { createExportHandler } from '../../functions/export/handler.ts';
import { createForwardHandler } from '../../functions/forward/handler.ts';
import { benchS3, peakRssMb, quiet, report, timed } from './common.ts';

const [from, to] = process.argv.slice(2);
const s3 = benchS3();
const exportDeps = createExportDeps(readConfig(process.env, 'export'), { s3, log: quiet });
const forwardConfig = readConfig(process.env, 'forward');
const forwardDeps = await createForwardDeps(forwardConfig, { s3, log: quiet });
const forwarded: WindowForwardResult[] = [];

const MB = 1048576;
const blank = () => ({ rss: 0, heapUsed: 0, heapTotal: 0, external: 0, arrayBuffers: 0 });
const phases = { export: blank(), forward: blank() };
let phase: keyof typeof phases = 'export';
const sample = (): void => {
  const m = process.memoryUsage();
  const p = phases[phase];
  p.rss = Math.max(p.rss, m.rss);
  p.heapUsed = Math.max(p.heapUsed, m.heapUsed);
  p.heapTotal = Math.max(p.heapTotal, m.heapTotal);
  p.external = Math.max(p.external, m.external);
  p.arrayBuffers = Math.max(p.arrayBuffers, m.arrayBuffers);
  if (series !== undefined)
    series.push(
      `${phase} ${Math.round(performance.now())} ${[m.rss, m.heapUsed, m.heapTotal, m.external, m.arrayBuffers].map((v) => Math.round(v / MB)).join(' ')}`,
    );
};
// BENCH_MEMORY_SERIES=<file>: every sample is also written there (phase, ms, rss, heapUsed, heapTotal, external, arrayBuffers in MB).
const seriesFile = process.env.BENCH_MEMORY_SERIES;
const series: string[] | undefined = seriesFile === undefined ? undefined : [];
const timer = setInterval(sample, 20);
const rssAtStart = process.memoryUsage().rss;

// BENCH_EVENTS_PER_MINUTE: the rate the project's checkpoint already knows (a project in steady state).
const rate = Number(process.env.BENCH_EVENTS_PER_MINUTE ?? Number.NaN);
if (Number.isFinite(rate)) {
  const mode = { committed: [], pending: [] };
  await exportDeps.state.write({ 'processing-time': { ...mode, eventsPerMinute: rate }, 'event-time': mode });
}
const exported = await timed(() => createExportHandler(() => exportDeps)({ from, to, mode: 'processing-time' }));
sample();
phase = 'forward';
const forwardHandler = createForwardHandler(
  async () => forwardDeps,
  (r) => forwarded.push(r),
);
const forward = await timed(async () => {
  const failures: string[] = [];
  for (const w of exported.value.windows) {
    if (w.status !== 'committed' || w.manifestKey === undefined) continue;
    const reply = await forwardHandler(sqsEventFor(forwardConfig.staging.bucket, w.manifestKey));
    failures.push(...reply.batchItemFailures.map((f) => f.itemIdentifier));
  }
  return failures;
});
sample();
clearInterval(timer);
if (seriesFile !== undefined) writeFileSync(seriesFile, `${series!.join('\n')}\n`);
const mb = (p: ReturnType<typeof blank>) =>
  Object.fromEntries(Object.entries(p).map(([k, v]) => [k, Math.round((10 * v) / MB) / 10]));
report({
  exported: exported.value.windows.reduce((n, w) => n + w.events, 0),
  windows: exported.value.windows.length,
  accepted: forwarded.reduce((n, r) => n + r.accepted, 0),
  rejected: forwarded.reduce((n, r) => n + r.rejected, 0),
  forwardFailures: forward.value.length,
  ms: exported.ms + forward.ms,
  cpuMs: { export: Math.round(exported.cpuMs), forward: Math.round(forward.cpuMs) },
  rssAtStartMb: Math.round((10 * rssAtStart) / MB) / 10,
  peakHeapMb: Math.max(phases.export.heapUsed, phases.forward.heapUsed) / MB,
  phasesMb: { export: mb(phases.export), forward: mb(phases.forward) },
  maxRssMb: peakRssMb(),
});
