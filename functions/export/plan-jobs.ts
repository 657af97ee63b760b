/**
 * The export's planning around the pure planner (functions/windows/): its settings from the configuration, the sizing
 * of a mode from the checkpoint, the jobs of a manual range, and the size hint a window that ran out of time leaves.
 */
import type { MixpanelConfig, WindowConfig, WindowMode } from '#common/config';
import { type Checkpoint, withSizeHint } from '#staging/state';
import { type Interval, isCovered, uncovered } from '#windows/intervals';
import { type ManualRange, type PlanSettings, type Window, planManual, splitRange, withProbe } from '#windows/plan';
import { SIZE_HINT_TTL_MS, activeHint, probeSpanMinutes, querySpanMinutes, smallerSpan } from '#windows/size';

/** What sizes the windows of a mode: the observed rate and a size hint still in force (from the checkpoint). */
export interface Sizing {
  readonly eventsPerMinute?: number;
  readonly hintMinutes?: number;
}

/**
 * The planner's settings for `mode`, windows sized by `sizing` (functions/windows/size.ts) under
 * MAX_EVENTS_PER_EXPORT.
 */
export function planSettings(
  mixpanel: MixpanelConfig,
  windows: WindowConfig,
  mode: WindowMode = windows.mode,
  sizing: Sizing = {},
): PlanSettings {
  const zone = dateZone(mixpanel);
  const spans = { mode, gridMinutes: windows.minutes, dateZone: zone };
  return {
    minutes: windows.minutes,
    settleMinutes: windows.settleMinutes,
    lookbackDays: windows.lookbackDays,
    maxWindowsPerRun: windows.maxWindowsPerRun,
    dateZone: zone,
    maxSpanMinutes: querySpanMinutes({ ...spans, maxEvents: windows.maxEventsPerExport, ...sizing }),
    // No rate known yet: the run's first window is a probe that measures it (size.ts PROBE_MINUTES).
    ...(sizing.eventsPerMinute === undefined ? { probeMinutes: probeSpanMinutes({ ...spans, ...sizing }) } : {}),
  };
}

/**
 * The run's jobs with the first window cut to a probe when no rate is known (`settings.probeMinutes`); the probe's
 * job is marked, so that the run sizes the jobs after it from the rate the probe observed (`resizeAfterProbe`).
 */
export function withProbeJob(jobs: readonly Job[], settings: PlanSettings): Job[] {
  const [first, ...rest] = jobs;
  if (first === undefined) return [];
  const windows = withProbe([first.window], settings);
  if (windows.length === 1) return [...jobs];
  const [probe, ...after] = windows;
  return [
    { ...first, window: probe!, probe: true },
    ...after.map((window) => ({ window, force: first.force })),
    ...rest,
  ];
}

/**
 * After the probe: its events over its length are the rate that sizes the rest of the run (as the checkpoint's
 * `eventsPerMinute` would once committed), and the jobs still to do are split again at that size (never merged: an
 * unknown rate planned them at the longest span already).
 */
export function resizeAfterProbe(
  probe: Window,
  events: number,
  jobs: readonly Job[],
  config: { mixpanel: MixpanelConfig; windows: WindowConfig },
  sizing: Sizing,
): { sizing: Sizing; settings: PlanSettings; jobs: Job[] } {
  const next: Sizing = { ...sizing, eventsPerMinute: events / Math.max(1, (probe.to - probe.from) / 60_000) };
  const settings = planSettings(config.mixpanel, config.windows, probe.mode, next);
  const resized = jobs.flatMap((j) =>
    splitRange(j.window.from, j.window.to, probe.mode, settings).map((window) => ({ window, force: j.force })),
  );
  return { sizing: next, settings, jobs: resized };
}

/**
 * The sizing of `mode` from the checkpoint at `nowMs`: the mode's observed rate, else the other mode's (the same
 * project's events, counted by the other clock), and its size hint while in force.
 */
export function sizingOf(checkpoint: Checkpoint, mode: WindowMode, nowMs: number): Sizing {
  const other: WindowMode = mode === 'processing-time' ? 'event-time' : 'processing-time';
  const rate = checkpoint[mode].eventsPerMinute ?? checkpoint[other].eventsPerMinute;
  const hint = activeHint(checkpoint[mode].sizeHint, nowMs);
  return {
    ...(rate !== undefined ? { eventsPerMinute: rate } : {}),
    ...(hint !== undefined ? { hintMinutes: hint } : {}),
  };
}

/** Mixpanel reads dates in UTC for projects created after 2023, in the project zone for older ones. */
export function dateZone(m: Pick<MixpanelConfig, 'legacyLocalTime' | 'projectTimezone'>): string {
  return m.legacyLocalTime ? m.projectTimezone : 'UTC';
}

export interface Job {
  readonly window: Window;
  readonly force: boolean;
  /** The run's first window, cut short to measure the event rate (no rate was known). */
  readonly probe?: boolean;
}

/**
 * The jobs of a manual range (pure): its windows, less those committed already (returned as `skipped`) unless
 * forced; a window partly committed exports only its uncommitted pieces, split at the planned size.
 * Throws `WindowRangeError` when the range is not exportable.
 */
export function planManualJobs(
  range: ManualRange & { readonly force: boolean },
  settings: PlanSettings,
  committed: readonly Interval[],
  nowMs: number,
): { jobs: Job[]; skipped: Window[] } {
  const plan = planManual(range, { ...settings, maxWindowsPerRun: Number.MAX_SAFE_INTEGER }, nowMs);
  const jobs: Job[] = [];
  const skipped: Window[] = [];
  for (const window of plan.windows) {
    if (!range.force && isCovered(window.from, window.to, committed)) {
      skipped.push(window);
      continue;
    }
    const pieces = range.force ? [[window.from, window.to] as const] : uncovered(window.from, window.to, committed);
    for (const [a, b] of pieces)
      jobs.push(...splitRange(a, b, range.mode, settings).map((w) => ({ window: w, force: range.force })));
  }
  return { jobs, skipped };
}

/**
 * After a window ran out of time: a size hint of half its length (never the same size again), and the words that say
 * so. At the shortest span there is nothing to halve: the operator raises the timeout.
 */
export function resizeAfterDeadline(
  checkpoint: Checkpoint,
  mode: WindowMode,
  w: Window,
  settings: PlanSettings,
  nowMs: number,
): { checkpoint: Checkpoint; resized: string } {
  const span = smallerSpan((w.to - w.from) / 60_000, {
    mode,
    gridMinutes: settings.minutes,
    dateZone: settings.dateZone,
  });
  if (span === undefined)
    return {
      checkpoint,
      resized: "the window is already as short as the planner makes them: raise the export function's timeout",
    };
  return {
    checkpoint: withSizeHint(checkpoint, mode, { maxSpanMinutes: span, until: nowMs + SIZE_HINT_TTL_MS, window: w.id }),
    resized: `the next run plans it again in windows of at most ${span} minutes`,
  };
}
