/**
 * The scale model (docs/scale.md): what a project of 10 M, 100 M or 1 B events a day needs — window size, export time
 * per window, concurrent forward invocations, Platform's bound, days to backfill 90 days, cost per million events —
 * derived from the figures `npm run bench` prints (its JSON, last line) and from documented limits only.
 *
 * Usage: npm run bench > bench.txt; npm run scale-model -- bench.txt   (prints the Markdown tables)
 */
import { readFileSync } from 'node:fs';
import { querySpanMinutes } from '#windows/size';
import { FUNCTION_MEMORY_MB } from '../lib/constructs/connector-function.ts';

/** The benchmark figures the model reads (bench/run.ts JSON). */
export interface BenchFigures {
  readonly export: { readonly cpuMsPer1kEvents: { readonly product: number } };
  readonly forward: {
    readonly cpuMsPer1k: number;
    readonly requests: number;
    readonly accepted: number;
    readonly maxRequestBytes: number;
  };
  /** The `scale` section (full runs): a large window forwarded by concurrent invocations after its fan-out. */
  readonly scale?: {
    readonly events: number;
    readonly partitions: number;
    readonly concurrency: number;
    readonly export: { readonly eventsPerSec: number };
    readonly forward: { readonly eventsPerSec: number; readonly cpuMsPer1k: number };
    readonly peakRssMaxMb: number;
  };
}

/**
 * The forwarder's CPU per 1,000 records the model uses: the scale run's when there is one (partitions of a large
 * window forwarded concurrently after the fan-out: the path a large project takes), else the forward section's.
 */
export function forwardCpuMsPer1k(b: BenchFigures): number {
  return b.scale?.forward.cpuMsPer1k ?? b.forward.cpuMsPer1k;
}

/** Documented limits and deployment settings the model uses; each cites its source. */
export const LIMITS = {
  /** The stack's memory for both functions (lib/constructs/connector-function.ts). */
  memoryMb: FUNCTION_MEMORY_MB,
  /** "At 1,769 MB, a function has the equivalent of one vCPU" (AWS Lambda docs, configuration-memory). */
  mbPerVcpu: 1769,
  /** AWS Lambda duration price, x86, us-east-1: $0.0000166667 per GB-second (aws.amazon.com/lambda/pricing). */
  usdPerGbSecond: 0.0000166667,
  /** Events per export query at most (MAX_EVENTS_PER_EXPORT default, functions/common/settings.ts). */
  maxEventsPerExport: 1_000_000,
  /** Queries per hour the connector may use of Mixpanel's 60 (EXPORT_QUERIES_PER_HOUR default). */
  queriesPerHour: 45,
  /** Streaming: 10,000 messages/s (AdobeDocs/experience-platform.en help/ingestion/streaming-ingestion/overview.md). */
  streamingMessagesPerSec: 10_000,
  /** Batch: ~20 GB/h into the data lake (help/ingestion/guardrails.md). */
  batchGbPerHour: 20,
  /** Days of history a backfill covers in the model. */
  backfillDays: 90,
} as const;

export interface ScaleRow {
  readonly eventsPerDay: number;
  readonly windowMinutes: number;
  readonly eventsPerWindow: number;
  readonly queriesPerDay: number;
  readonly exportSecondsPerWindow: number;
  /** Forward invocations needed to keep up with the day's average rate. */
  readonly forwardInvocationsSteady: number;
  /** Forward invocations that reach Platform's streaming limit (the useful maximum). */
  readonly forwardInvocationsAtPlatformCap: number;
  /** Share of Platform's streaming limit the day's average rate uses. */
  readonly platformStreamingShare: number;
  readonly platformBatchShare: number;
  readonly backfillDays: number;
  /** What bounds the backfill: the query budget, the export, or Platform. */
  readonly backfillBound: 'query budget' | 'export' | 'Platform';
  readonly usdPerMillionEvents: number;
}

const DAY_MINUTES = 1440;

/** Events per second one invocation sustains when CPU-bound, at the deployed memory size. */
export function eventsPerSecond(cpuMsPer1k: number, memoryMb: number = LIMITS.memoryMb): number {
  return (1000 / cpuMsPer1k) * 1000 * (memoryMb / LIMITS.mbPerVcpu);
}

/** The model for one project size. */
export function scaleRow(b: BenchFigures, eventsPerDay: number): ScaleRow {
  // The planner's own choice for an event-time backfill of a UTC project at this rate.
  const windowMinutes = querySpanMinutes({
    mode: 'event-time',
    gridMinutes: 60,
    dateZone: 'UTC',
    eventsPerMinute: eventsPerDay / DAY_MINUTES,
    maxEvents: LIMITS.maxEventsPerExport,
  });
  const eventsPerWindow = Math.round((eventsPerDay * windowMinutes) / DAY_MINUTES);
  const queriesPerDay = DAY_MINUTES / windowMinutes;
  const exportRate = eventsPerSecond(b.export.cpuMsPer1kEvents.product);
  const forwardRate = eventsPerSecond(forwardCpuMsPer1k(b));
  const averageRate = eventsPerDay / 86_400;
  const bytesPerRecord = (b.forward.requests * b.forward.maxRequestBytes) / b.forward.accepted;
  const batchRecordsPerSec = (LIMITS.batchGbPerHour * 1e9) / bytesPerRecord / 3600;

  // Backfill: one export invocation at a time per project (reserved concurrency 1), within the query budget; the
  // forwarders at Platform's streaming limit.
  const total = LIMITS.backfillDays * eventsPerDay;
  const budgetHours = (LIMITS.backfillDays * queriesPerDay) / LIMITS.queriesPerHour;
  const exportHours = total / exportRate / 3600;
  const platformHours = total / LIMITS.streamingMessagesPerSec / 3600;
  const hours = Math.max(budgetHours, exportHours, platformHours);
  const backfillBound = hours === budgetHours ? 'query budget' : hours === exportHours ? 'export' : 'Platform';

  // Duration only: request charges ($0.20 per million invocations, same page) come to a few invocations per window.
  const gbSecondsPerMillion = (1e6 / exportRate + 1e6 / forwardRate) * (LIMITS.memoryMb / 1024);
  return {
    eventsPerDay,
    windowMinutes,
    eventsPerWindow,
    queriesPerDay,
    exportSecondsPerWindow: eventsPerWindow / exportRate,
    forwardInvocationsSteady: Math.max(1, Math.ceil(averageRate / forwardRate)),
    forwardInvocationsAtPlatformCap: Math.ceil(LIMITS.streamingMessagesPerSec / forwardRate),
    platformStreamingShare: averageRate / LIMITS.streamingMessagesPerSec,
    platformBatchShare: averageRate / batchRecordsPerSec,
    backfillDays: hours / 24,
    backfillBound,
    usdPerMillionEvents: gbSecondsPerMillion * LIMITS.usdPerGbSecond,
  };
}

const fmt = (n: number, digits = 0): string =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** The model as Markdown, for 10 M, 100 M and 1 B events a day. */
export function renderScaleModel(b: BenchFigures): string {
  const rows = [10e6, 100e6, 1e9].map((d) => scaleRow(b, d));
  const forwardCpu = forwardCpuMsPer1k(b);
  const sc = b.scale;
  const lines = [
    `Inputs: export ${b.export.cpuMsPer1kEvents.product} ms CPU per 1,000 events, forward ${forwardCpu} ms ` +
      `per 1,000 records (\`npm run bench\`${sc !== undefined ? ', its scale run' : ''}); ${LIMITS.memoryMb} MB ` +
      `functions = ${fmt(LIMITS.memoryMb / LIMITS.mbPerVcpu, 2)} vCPU, so one invocation exports ` +
      `${fmt(eventsPerSecond(b.export.cpuMsPer1kEvents.product))} and forwards ${fmt(eventsPerSecond(forwardCpu))} ` +
      'events/s.',
    ...(sc === undefined
      ? []
      : [
          '',
          `Measured at scale: a ${fmt(sc.events)}-event window exported by one invocation at ` +
            `${fmt(sc.export.eventsPerSec)} events/s, then its ${sc.partitions} partitions forwarded by ` +
            `${sc.concurrency} concurrent invocations at ${fmt(sc.forward.eventsPerSec)} events/s together ` +
            `(benchmark machine, wall time); no invocation above ${fmt(sc.peakRssMaxMb, 1)} MB peak RSS.`,
        ]),
    '',
    '| events/day | window | events/window | queries/day | export s/window | forward invocations (average; at Platform cap) | share of Platform streaming / batch limit | 90-day backfill (bound) | $ per million events |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map(
      (r) =>
        `| ${fmt(r.eventsPerDay)} | ${r.windowMinutes} min | ${fmt(r.eventsPerWindow)} | ${fmt(r.queriesPerDay)} | ` +
        `${fmt(r.exportSecondsPerWindow)} | ${r.forwardInvocationsSteady}; ${r.forwardInvocationsAtPlatformCap} | ` +
        `${fmt(100 * r.platformStreamingShare, 1)} % / ${fmt(100 * r.platformBatchShare, 1)} % | ` +
        `${fmt(r.backfillDays, 1)} days (${r.backfillBound}) | ${fmt(r.usdPerMillionEvents, 4)} |`,
    ),
  ];
  return `${lines.join('\n')}\n`;
}

/** The benchmark's JSON: the last line of its output that parses as an object with `export` and `forward`. */
export function readBenchJson(text: string): BenchFigures {
  const lines = text.trim().split('\n').reverse();
  for (const line of lines) {
    if (!line.startsWith('{')) continue;
    const json = JSON.parse(line) as Partial<BenchFigures>;
    if (json.export !== undefined && json.forward !== undefined) return json as BenchFigures;
  }
  throw new Error('no benchmark JSON found: pass the output of `npm run bench` (its last line is the JSON)');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2];
  if (file === undefined) {
    process.stderr.write('usage: npm run scale-model -- <file holding the output of npm run bench>\n');
    process.exit(2);
  }
  process.stdout.write(renderScaleModel(readBenchJson(readFileSync(file, 'utf8'))));
}
