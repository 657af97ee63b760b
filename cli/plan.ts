/**
 * `sync --plan`: what a backfill would do, without exporting anything — the windows (sized as the export would size
 * them, from the checkpoint's observed rate and size hint), the Mixpanel queries and the hours they need under the
 * query budget, the expected events, and how long Platform's ingestion limit makes forwarding them.
 */
import type { Config, WindowMode } from '#common/config';
import type { AepSink } from '#common/settings';
import { type Job, planManualJobs, planSettings, sizingOf, withProbeJob } from '#export/plan-jobs';
import type { Checkpoint } from '#staging/state';
import { count, line, table, type TextSink } from './io.ts';

/** Streaming: 10,000 messages/s per organisation (experience-platform.en help/ingestion/streaming-ingestion/
 * overview.md, "Request per seconds (RPS) guidance"; help/ingestion/guardrails.md points there). */
export const STREAMING_MESSAGES_PER_SECOND = 10_000;
/** Batch: 20 GB of data per hour to the data lake through the Batch Ingestion API (help/ingestion/guardrails.md). */
export const BATCH_BYTES_PER_HOUR = 20e9;
/** An assumption, not a measurement of your data: a mapped record's JSON size for the batch estimate. */
export const ASSUMED_RECORD_BYTES = 1500;
/** Windows listed one by one; longer plans are summarised. */
const LISTED_WINDOWS = 40;

export interface BackfillPlanInput {
  readonly from: number;
  readonly to: number;
  readonly mode: WindowMode;
  readonly force: boolean;
  readonly config: Config;
  readonly checkpoint: Checkpoint;
  readonly sink: AepSink;
  readonly nowMs: number;
}

export interface BackfillPlan {
  readonly mode: WindowMode;
  readonly windows: ReadonlyArray<{
    readonly id: string;
    readonly from: string;
    readonly to: string;
    events?: number;
    /** The probe: the first window when no rate is known, cut short to measure it. */
    probe?: boolean;
  }>;
  /** Windows of the range committed already (not exported again without --force). */
  readonly skipped: number;
  readonly spanMinutes: number;
  /** The probe's span, when no rate is known (the export re-sizes the windows after it from the rate it measures). */
  readonly probeMinutes?: number;
  /** Events per minute the sizing used; undefined when nothing was committed yet. */
  readonly eventsPerMinute?: number;
  readonly hintMinutes?: number;
  readonly maxEventsPerExport: number;
  readonly queries: number;
  readonly queriesPerHour: number;
  /** Hours of query budget the queries need (retries extra). */
  readonly budgetHours: number;
  /** Export invocations at least (MAX_WINDOWS_PER_RUN per run). */
  readonly runs: number;
  readonly maxWindowsPerRun: number;
  /** Expected events, or undefined when the rate is unknown. */
  readonly expectedEvents?: number;
  /** When the rate is unknown: the most events the windows may hold at the ceiling. */
  readonly maxEvents: number;
  readonly sink: AepSink;
  /** Seconds Platform's documented limit needs for the expected (or, unknown, the most) events. */
  readonly forwardSeconds: number;
}

/** The plan of a manual range (pure): the windows and what they cost. */
export function backfillPlan(i: BackfillPlanInput): BackfillPlan {
  const w = i.config.windows;
  const sizing = sizingOf(i.checkpoint, i.mode, i.nowMs);
  const settings = planSettings(i.config.mixpanel!, w, i.mode, sizing);
  const planned = planManualJobs(
    { from: i.from, to: i.to, mode: i.mode, force: i.force },
    settings,
    i.checkpoint[i.mode].committed,
    i.nowMs,
  );
  // As the export plans it: with no rate known, the first window is a probe (the rest is re-sized after it).
  const jobs = withProbeJob(planned.jobs, settings);
  const skipped = planned.skipped;
  const rate = sizing.eventsPerMinute;
  const expected = (j: Job): number | undefined =>
    rate === undefined ? undefined : Math.round((rate * (j.window.to - j.window.from)) / 60_000);
  const windows = jobs.map((j) => {
    const events = expected(j);
    return {
      id: j.window.id,
      from: new Date(j.window.from).toISOString(),
      to: new Date(j.window.to).toISOString(),
      ...(events !== undefined ? { events } : {}),
      ...(j.probe === true ? { probe: true } : {}),
    };
  });
  const expectedEvents = rate === undefined ? undefined : windows.reduce((n, x) => n + (x.events ?? 0), 0);
  const maxEvents = jobs.length * w.maxEventsPerExport;
  const events = expectedEvents ?? maxEvents;
  const forwardSeconds =
    i.sink === 'streaming'
      ? events / STREAMING_MESSAGES_PER_SECOND
      : ((events * ASSUMED_RECORD_BYTES) / BATCH_BYTES_PER_HOUR) * 3600;
  return {
    mode: i.mode,
    windows,
    skipped: skipped.length,
    spanMinutes: settings.maxSpanMinutes ?? 1440,
    ...(jobs[0]?.probe === true && settings.probeMinutes !== undefined ? { probeMinutes: settings.probeMinutes } : {}),
    ...(rate !== undefined ? { eventsPerMinute: rate } : {}),
    ...(sizing.hintMinutes !== undefined ? { hintMinutes: sizing.hintMinutes } : {}),
    maxEventsPerExport: w.maxEventsPerExport,
    queries: jobs.length,
    queriesPerHour: w.queriesPerHour,
    budgetHours: jobs.length / w.queriesPerHour,
    runs: Math.ceil(jobs.length / w.maxWindowsPerRun),
    maxWindowsPerRun: w.maxWindowsPerRun,
    ...(expectedEvents !== undefined ? { expectedEvents } : {}),
    maxEvents,
    sink: i.sink,
    forwardSeconds,
  };
}

const hours = (h: number): string => (h < 1 ? `${Math.ceil(h * 60)} min` : `${(Math.ceil(h * 10) / 10).toFixed(1)} h`);

/** The plan for people. */
export function printPlan(out: TextSink, p: BackfillPlan): void {
  line(out);
  if (p.windows.length === 0) {
    line(
      out,
      `Nothing to export: the ${p.skipped} window(s) of the range are committed already (--force exports again).`,
    );
    return;
  }
  const listed = p.windows.slice(0, LISTED_WINDOWS);
  const rows = listed.map((w) => [
    w.probe === true ? `${w.id} (probe)` : w.id,
    w.from,
    w.to,
    w.events === undefined ? 'unknown' : count(w.events),
  ]);
  line(out, table([['window', 'from', 'to', 'expected events'], ...rows]));
  if (p.windows.length > listed.length) line(out, `  … and ${count(p.windows.length - listed.length)} more windows`);
  line(out);
  const hint =
    p.hintMinutes === undefined ? '' : ` and a size hint of ${p.hintMinutes} minutes (a window ran out of time)`;
  const sizedBy =
    p.eventsPerMinute === undefined
      ? 'no window of this project is committed yet, so no rate is known: windows are a day long'
      : `the observed rate of ${count(p.eventsPerMinute)} events a minute`;
  if (p.probeMinutes !== undefined) {
    line(
      out,
      `  Probe: no rate is known yet, so the first window is a probe of at most ${p.probeMinutes} minutes; the ` +
        'export measures the rate from its events and sizes (and partitions) the windows after it from that rate. ' +
        'They are listed here as an unknown rate plans them, and may become shorter and more numerous.',
    );
  }
  line(
    out,
    `  Windows: ${count(p.windows.length)} of at most ${p.spanMinutes} minutes, sized by ${sizedBy} under ` +
      `MAX_EVENTS_PER_EXPORT=${count(p.maxEventsPerExport)}` +
      hint +
      `${p.skipped > 0 ? `; ${p.skipped} window(s) committed already are skipped` : ''}.`,
  );
  line(
    out,
    `  Mixpanel queries: ${count(p.queries)} (one per window, retries extra): ` +
      `${hours(p.budgetHours)} of query budget ` +
      `at EXPORT_QUERIES_PER_HOUR=${p.queriesPerHour} (Mixpanel allows 60 an hour per project), in at least ` +
      `${count(p.runs)} export run(s) of MAX_WINDOWS_PER_RUN=${p.maxWindowsPerRun} windows.`,
  );
  line(
    out,
    p.expectedEvents === undefined
      ? `  Expected events: unknown (assumed at most MAX_EVENTS_PER_EXPORT per window, ${count(p.maxEvents)} in all; ` +
          'a window that runs out of time is planned again smaller).'
      : `  Expected events: ${count(p.expectedEvents)} (the observed rate × the range).`,
  );
  const limit =
    p.sink === 'streaming'
      ? `${count(STREAMING_MESSAGES_PER_SECOND)} messages/s (streaming)`
      : `20 GB/h (batch), at an assumed ${count(ASSUMED_RECORD_BYTES)} bytes per record`;
  line(
    out,
    `  Forward time at Platform's limit of ${limit}: ${p.expectedEvents === undefined ? 'at most ' : ''}` +
      `${hours(p.forwardSeconds / 3600)}.`,
  );
  line(out, '  Nothing was exported, staged or sent; the checkpoint was only read.');
}
