/**
 * One export invocation: plan the windows, export each within the query budget and the Lambda's time, commit, and
 * advance the checkpoint. Windows already committed are skipped unless forced; what does not fit in this run is
 * reported and, for manual ranges, kept as pending work that the next runs continue without an operator.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { MixpanelConfig, WindowConfig, WindowMode } from '#common/config';
import type { Log } from '#common/log';
import { QueryBudgetExhaustedError } from '#mixpanel/budget';
import { IncompleteExportError, type MixpanelExportClient } from '#mixpanel/client';
import type { StagingLayout } from '#staging/layout';
import { exists, failureText } from '#staging/s3';
import { ConnectorError, kindFromCause } from '#common/errors';
import { type Checkpoint, type StateStore, commitWindow, withPending } from '#staging/state';
import type { SpillOptions } from '#staging/spill';
import { isCovered, uncovered } from '#windows/intervals';
import { type Window, exportQuery, planScheduled, splitRange } from '#windows/plan';
import type { ExportInvocation } from './events.ts';
import {
  type Job,
  planManualJobs,
  planSettings,
  resizeAfterDeadline,
  resizeAfterProbe,
  sizingOf,
  withProbeJob,
} from './plan-jobs.ts';
import { PART_MAX_EVENTS, type StageResult, WindowDeadlineError, stageWindow } from './stage-window.ts';
import { partitionsFor } from '#staging/partition';

// Planning helpers moved to plan-jobs.ts; re-exported for the callers that import them from here.
export { type Job, type Sizing, dateZone, planManualJobs, planSettings, sizingOf } from './plan-jobs.ts';

/** An incomplete export (reset, truncated gzip, `terminated early`) is tried again this many times per window. */
export const WINDOW_ATTEMPTS = 3;
/** A window is not started with less time than this left before the Lambda deadline. */
export const MIN_TIME_FOR_WINDOW_MS = 90_000;

export type WindowStatus = 'committed' | 'skipped' | 'dry-run';

/**
 * A window could not be exported. Nothing of it was committed and the checkpoint did not move past it; the message
 * says why (the cause's own advice) and what happens next. `cause` is the original failure.
 */
export class WindowExportError extends ConnectorError {
  readonly window: string;
  constructor(window: string, message: string, cause: unknown) {
    super(kindFromCause(cause), message, { cause });
    this.name = 'WindowExportError';
    this.window = window;
  }
}

export interface WindowSummary {
  readonly id: string;
  readonly from: string;
  readonly to: string;
  readonly mode: WindowMode;
  readonly status: WindowStatus;
  readonly events: number;
  readonly parts: number;
  readonly bytes: number;
  readonly quarantined: number;
  readonly manifestKey?: string;
  readonly query?: { from_date: string; to_date: string; where?: string };
  readonly attempts?: number;
  readonly durationMs?: number;
}

export interface ExportResult {
  readonly windows: WindowSummary[];
  readonly checkpoint?: Partial<Record<WindowMode, string>>;
  readonly remaining?: {
    readonly windows: number;
    readonly from?: string;
    readonly to?: string;
    readonly reason: 'max-windows-per-run' | 'query-budget' | 'deadline';
  };
}

export interface ExportDeps {
  readonly s3: S3Client;
  readonly bucket: string;
  readonly layout: StagingLayout;
  readonly client: MixpanelExportClient;
  readonly state: StateStore;
  readonly mixpanel: MixpanelConfig;
  readonly windows: WindowConfig;
  readonly now: () => number;
  readonly log: Log;
  /** Time left in this invocation (Lambda context); unlimited when absent. */
  readonly remainingMs?: () => number;
  /** How often the deadline is checked while a window streams (stage-window.ts DEADLINE_POLL_MS). */
  readonly deadlinePollMs?: number;
  /** Part roll-over in events (stage-window.ts PART_MAX_EVENTS); tests use small parts. */
  readonly partMaxEvents?: number;
  /** Where partitioned staging writes its temporary files (stage-window.ts); tests inject failures. */
  readonly spill?: SpillOptions;
  /** Told when a window is done (progress in the CLI). */
  readonly onWindow?: (summary: WindowSummary) => void;
}

export async function runExport(invocation: ExportInvocation, deps: ExportDeps): Promise<ExportResult> {
  let checkpoint = await deps.state.read();
  const runStart = deps.now();
  const summaries: WindowSummary[] = [];
  const dryRun = invocation.kind === 'manual' && invocation.dryRun;
  const mode: WindowMode = invocation.kind === 'manual' ? (invocation.mode ?? deps.windows.mode) : deps.windows.mode;
  let sizing = sizingOf(checkpoint, mode, runStart);
  let settings = planSettings(deps.mixpanel, deps.windows, mode, sizing);

  // 1. Plan: the jobs of this run, oldest first; manual ranges are checked before anything is written.
  const jobs: Job[] = [];
  let pendingRanges: Checkpoint[WindowMode]['pending'] = checkpoint[mode].pending;
  if (invocation.kind === 'scheduled') {
    const plan = planScheduled(
      invocation.scheduledMs,
      mode,
      { ...settings, maxWindowsPerRun: Number.MAX_SAFE_INTEGER },
      checkpoint[mode].to,
      checkpoint[mode].committed,
    );
    jobs.push(...plan.windows.map((window) => ({ window, force: false })));
    // Then continue manual backfills that an earlier run could not finish.
    for (const p of pendingRanges) {
      const pieces = p.force ? [[p.from, p.to] as const] : uncovered(p.from, p.to, checkpoint[mode].committed);
      for (const [a, b] of pieces)
        jobs.push(...splitRange(a, b, mode, settings).map((window) => ({ window, force: p.force })));
    }
  } else {
    const planned = planManualJobs(
      { from: invocation.from, to: invocation.to, mode, force: invocation.force },
      settings,
      checkpoint[mode].committed,
      deps.now(),
    );
    for (const window of planned.skipped) {
      const manifestKey = deps.layout.manifestKey({ projectId: deps.mixpanel.projectId, mode, windowId: window.id });
      const known = await exists(deps.s3, deps.bucket, manifestKey);
      summaries.push({
        ...describe(window),
        status: 'skipped',
        events: 0,
        parts: 0,
        bytes: 0,
        quarantined: 0,
        ...(known ? { manifestKey } : {}),
      });
    }
    jobs.push(...planned.jobs);
  }
  // No rate known yet: the first window is a short probe, and the windows after it are sized from what it measures.
  jobs.splice(0, jobs.length, ...withProbeJob(jobs, settings));

  // 2. Export, bounded per run, by the deadline and by the query budget.
  let stopped: NonNullable<ExportResult['remaining']>['reason'] | undefined;
  let done = 0;
  let firstUndone = jobs.length;
  const coveredNow = (j: Job): boolean => !j.force && isCovered(j.window.from, j.window.to, checkpoint[mode].committed);
  for (const job of jobs) {
    // A job may have been covered meanwhile (a pending range that this run's scheduled windows already exported).
    if (!dryRun && coveredNow(job)) continue;
    if (done >= deps.windows.maxWindowsPerRun) {
      stopped = 'max-windows-per-run';
      firstUndone = jobs.indexOf(job);
      break;
    }
    if (deps.remainingMs !== undefined && deps.remainingMs() < MIN_TIME_FOR_WINDOW_MS) {
      stopped = 'deadline';
      firstUndone = jobs.indexOf(job);
      break;
    }
    const w = job.window;
    const query = exportQuery(
      w,
      settings,
      deps.now(),
      mode === 'event-time' ? checkpoint['processing-time'].origin : undefined,
    );
    const started = deps.now();
    let result: StageResult | undefined;
    let attempts = 0;
    try {
      while (result === undefined) {
        attempts++;
        try {
          result = await stageWindow(w, query, stageDeps(deps, windowPartitions(w, sizing, deps)), { dryRun });
        } catch (error) {
          if (!(error instanceof IncompleteExportError) || attempts >= WINDOW_ATTEMPTS) throw error;
          deps.log.warn('incomplete export, exporting the window again', {
            window: w.id,
            attempt: attempts,
            reason: error.message,
          });
        }
      }
    } catch (error) {
      if (error instanceof QueryBudgetExhaustedError) {
        deps.log.warn('query budget used up; the next run continues', {
          window: w.id,
          retryAt: new Date(error.retryAtMs).toISOString(),
        });
        stopped = 'query-budget';
        firstUndone = jobs.indexOf(job);
        break;
      }
      let resized: string | undefined;
      if (error instanceof WindowDeadlineError && !dryRun) {
        ({ checkpoint, resized } = resizeAfterDeadline(checkpoint, mode, w, settings, deps.now()));
      }
      if (error instanceof WindowDeadlineError && done > 0) {
        // This run made progress; the window it could not finish is left (uncommitted) to the next run.
        deps.log.warn('Lambda deadline near: window abandoned, nothing of it committed; the next run exports it', {
          window: w.id,
          reason: error.message,
          next: resized,
        });
        stopped = 'deadline';
        firstUndone = jobs.indexOf(job);
        break;
      }
      // Nothing of this window is committed; earlier windows stay committed and are skipped on retry.
      if (!dryRun)
        await deps.state.write(
          withPending(
            checkpoint,
            mode,
            leftover(jobs.slice(jobs.indexOf(job)), invocation, pendingRanges, checkpoint[mode].to),
          ),
        );
      throw windowFailure(w, error, invocation, deps.bucket, resized);
    }
    done++;
    const summary: WindowSummary = {
      ...describe(w),
      status: dryRun ? 'dry-run' : 'committed',
      events: result.events,
      parts: result.parts,
      bytes: result.bytes,
      quarantined: result.quarantined,
      ...(result.manifestKey !== undefined ? { manifestKey: result.manifestKey } : {}),
      query,
      attempts,
      durationMs: deps.now() - started,
    };
    if (!dryRun) {
      checkpoint = commitWindow(checkpoint, mode, w.from, w.to, result.events);
      await deps.state.write(checkpoint);
    }
    deps.log.info('window exported', { ...summary, byReason: result.byReason });
    deps.onWindow?.(summary);
    summaries.push(summary);
    if (job.probe === true) {
      // The jobs after the probe are planned again at the size its rate gives (iteration continues on the new ones).
      const at = jobs.indexOf(job) + 1;
      const next = resizeAfterProbe(w, result.events, jobs.slice(at), deps, sizing);
      ({ sizing, settings } = next);
      jobs.splice(at, jobs.length - at, ...next.jobs);
      deps.log.info('probe window exported: the windows after it are sized from its rate', {
        window: w.id,
        eventsPerMinute: sizing.eventsPerMinute,
        spanMinutes: settings.maxSpanMinutes,
        windows: next.jobs.length,
      });
    }
  }

  // 3. What is left: scheduled windows are re-derived from the checkpoint; manual ranges are kept as pending.
  const rest = jobs.filter((j, i) => i >= firstUndone && (dryRun || !coveredNow(j)));
  if (!dryRun) {
    pendingRanges = leftover(rest, invocation, pendingRanges, checkpoint[mode].to);
    checkpoint = withPending(checkpoint, mode, pendingRanges);
    await deps.state.write(checkpoint);
  }
  deps.log.debug('export run finished', { windows: summaries.length, ms: deps.now() - runStart });
  const to = checkpoint[mode].to;
  return {
    windows: summaries,
    ...(to !== undefined && !dryRun ? { checkpoint: { [mode]: new Date(to).toISOString() } } : {}),
    ...(rest.length > 0
      ? {
          remaining: {
            windows: rest.length,
            from: new Date(rest[0]!.window.from).toISOString(),
            to: new Date(rest[rest.length - 1]!.window.to).toISOString(),
            reason: stopped ?? 'max-windows-per-run',
          },
        }
      : {}),
  };
}

/**
 * Work not done in this run, as ranges for the next runs. Scheduled windows come back from the checkpoint (catch-up
 * starts at its `to`), except before the first commit: without a `to`, the next run would start one window later and
 * never export the window this run failed, so those are kept as pending too.
 */
function leftover(
  rest: readonly Job[],
  invocation: ExportInvocation,
  previous: Checkpoint['processing-time']['pending'],
  checkpointTo: number | undefined,
): Checkpoint['processing-time']['pending'] {
  const toRange = (j: Job) => ({ from: j.window.from, to: j.window.to, force: j.force });
  // A manual run did not touch earlier pending ranges: keep them and add its own rest.
  if (invocation.kind === 'manual') return [...previous, ...rest.map(toRange)];
  return rest
    .filter((j) => checkpointTo === undefined || previous.some((p) => p.from <= j.window.from && j.window.to <= p.to))
    .map(toRange);
}

/** The failure of one window, in words that say what failed, what was kept, and what happens next. */
function windowFailure(
  w: Window,
  error: unknown,
  invocation: ExportInvocation,
  bucket: string,
  resized?: string,
): WindowExportError {
  const why = failureText(error, bucket, 'check the bucket exists, the function may write to it, and S3 health');
  const next =
    invocation.kind === 'scheduled'
      ? 'the next scheduled run exports it again'
      : 'the rest of the range is kept as pending work that the next scheduled runs continue (or invoke the same range again)';
  return new WindowExportError(
    w.id,
    `window ${w.id} was not exported: ${why}. Nothing of it was committed and the checkpoint did not move; ${next}` +
      `${resized === undefined ? '' : ` (${resized})`}.`,
    error,
  );
}

/** Partitions of a window: from its expected events at the observed rate (staging/partition.ts). */
function windowPartitions(w: Window, sizing: { eventsPerMinute?: number }, deps: ExportDeps): number {
  const rate = sizing.eventsPerMinute;
  const expected = rate === undefined ? undefined : (rate * (w.to - w.from)) / 60_000;
  return partitionsFor(expected, deps.partMaxEvents ?? PART_MAX_EVENTS);
}

function stageDeps(deps: ExportDeps, partitions: number) {
  return {
    partitions,
    ...(deps.remainingMs !== undefined ? { remainingMs: deps.remainingMs } : {}),
    ...(deps.deadlinePollMs !== undefined ? { deadlinePollMs: deps.deadlinePollMs } : {}),
    ...(deps.partMaxEvents !== undefined ? { partMaxEvents: deps.partMaxEvents } : {}),
    ...(deps.spill !== undefined ? { spill: deps.spill } : {}),
    s3: deps.s3,
    bucket: deps.bucket,
    layout: deps.layout,
    client: deps.client,
    now: deps.now,
    project: {
      id: deps.mixpanel.projectId,
      timezone: deps.mixpanel.projectTimezone,
      legacyLocalTime: deps.mixpanel.legacyLocalTime,
    },
  };
}

function describe(w: Window): Pick<WindowSummary, 'id' | 'from' | 'to' | 'mode'> {
  return { id: w.id, from: new Date(w.from).toISOString(), to: new Date(w.to).toISOString(), mode: w.mode };
}
