/**
 * One function invocation of the scale run, in a fresh process (bundled like the Lambdas, on plain Node, with the
 * deployed environment), reporting its time, CPU and peak RSS (getrusage maxRSS).
 * - `export <from> <to>`: the export handler over the range, the checkpoint knowing the project's rate
 *   (BENCH_EVENTS_PER_MINUTE) as a project in steady state does, so the window is staged in partitions;
 * - `forward <SQS event JSON>`: the forward handler for one SQS event — the manifest notification (it fans the window
 *   out to FORWARD_QUEUE_URL through the product's own SQS client) or one partition message.
 */
import type { SQSEvent } from 'aws-lambda';
import { readConfig } from '#common/config';
import { createForwardDeps } from '#forward/deps';
import type { WindowForwardResult } from '#forward/window';
import { createForwardHandler } from '../../functions/forward/handler.ts';
import { benchS3, peakRssMb, quiet, report, timed, timedSteadyStateExport } from './common.ts';

const [role, ...args] = process.argv.slice(2);
const s3 = benchS3();

if (role === 'export') {
  const [from, to] = args as [string, string];
  const run = await timedSteadyStateExport(s3, from, to);
  const windows = run.value.windows.filter((w) => w.status === 'committed');
  report({
    events: windows.reduce((n, w) => n + w.events, 0),
    quarantined: windows.reduce((n, w) => n + w.quarantined, 0),
    manifestKeys: windows.map((w) => w.manifestKey),
    ms: run.ms,
    cpuMs: run.cpuMs,
    maxRssMb: peakRssMb(),
  });
} else if (role === 'forward') {
  const event = JSON.parse(args[0]!) as SQSEvent;
  const deps = await createForwardDeps(readConfig(process.env, 'forward'), { s3, log: quiet });
  const results: WindowForwardResult[] = [];
  const run = await timed(() =>
    createForwardHandler(
      async () => deps,
      (r) => results.push(r),
    )(event),
  );
  report({
    failures: run.value.batchItemFailures.map((f) => f.itemIdentifier),
    results: results.map((r) => ({
      fannedOut: r.fannedOut,
      partitions: r.partitions,
      events: r.events,
      accepted: r.accepted,
      rejected: r.rejected,
      byReason: r.byReason,
      complete: r.complete,
    })),
    ms: run.ms,
    cpuMs: run.cpuMs,
    maxRssMb: peakRssMb(),
  });
} else {
  throw new Error(`usage: scale-invocation.ts export <from> <to> | forward <SQS event JSON> (got ${role})`);
}
