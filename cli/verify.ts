/**
 * Platform's verdict from the command line:
 * - `verify --window <id>`: asks Platform now what it stored of each forwarded run of the window (the verifier the
 *   stack runs on a schedule, functions/verify), prints the verdict and saves it in the run's window.json;
 * - `resend --window <id>`: sends the records of a batch Platform failed again, in a new batch (batch sink).
 */
import type { ForwardBaseDeps } from '#forward/deps';
import type { PlatformVerdict } from '#forward/receipt';
import { verifyDepsOf } from '#forward/verify-round';
import { settleRun } from '#verify/pending';
import { resendFailedBatch } from '#verify/resend';
import type { RunRef } from '#verify/verify-window';
import { ConfigError } from '#common/config';
import type { Env } from './env.ts';
import { listKeys } from './invariants.ts';
import { type CliContext, type CliIo, EXIT_FAILED, EXIT_OK, count, line } from './io.ts';
import { formatReasons } from './report.ts';
import { COMMON_OPTIONS, type WindowOptions, onCommittedWindow, windowCommand } from './window.ts';

const RUN_OPTION = `  --run <runId>        only this run of the window (default: every forwarded run)
`;

export const VERIFY_USAGE = `Usage: npm run cli -- verify --window <id> [options]

Asks Adobe Experience Platform now what it stored of a forwarded window: for the batch sink, the state of the run's
batch and its failed rows; for the streaming sink, the records Platform's asynchronous validation refused (once its
data-lake latency, under 60 minutes, has passed). Prints ingested / failed at Platform per run, saves the verdict in
the run's window.json and writes refused records to rejected/ with Platform's reason. The stack does the same on a
schedule; this re-checks one window by hand.

Options:
${RUN_OPTION}${COMMON_OPTIONS}`;

export const RESEND_USAGE = `Usage: npm run cli -- resend --window <id> [options]

Re-sends the records of a batch Platform failed (batch sink) in a new batch, from the staged files: exactly the
records the failed batch held, so nothing Platform stored is sent twice. Refused unless the batch's Catalog status is
failed. The verdict of the run goes back to pending; \`verify --window <id>\` follows the new batch.

Options:
${RUN_OPTION}${COMMON_OPTIONS}`;

export const verifyCommand = (argv: readonly string[], env: Readonly<Env>, io: CliIo, ctx: CliContext = {}) =>
  windowCommand(VERIFY_USAGE, (o, e, i, c) => onRuns('verify', o, e, i, c), argv, env, io, ctx);
export const resendCommand = (argv: readonly string[], env: Readonly<Env>, io: CliIo, ctx: CliContext = {}) =>
  windowCommand(RESEND_USAGE, (o, e, i, c) => onRuns('resend', o, e, i, c), argv, env, io, ctx);

function onRuns(
  kind: 'verify' | 'resend',
  flags: WindowOptions,
  env: Env,
  io: CliIo,
  ctx: CliContext,
): Promise<number> {
  return onCommittedWindow(flags, env, io, ctx, async ({ deps, ref }) => {
    const runs = await forwardedRuns(deps, ref, flags.run);
    if (runs.length === 0) {
      line(io.stderr, `error: window ${flags.window} has no forwarded run${flags.run ? ` ${flags.run}` : ''} yet.`);
      return EXIT_FAILED;
    }
    return kind === 'verify' ? verifyRuns(deps, runs, flags, io) : resendRuns(deps, runs, io);
  });
}

/** The runs of a window that wrote a window.json (oldest first), or just `only`. */
async function forwardedRuns(deps: ForwardBaseDeps, window: Omit<RunRef, 'runId'>, only?: string): Promise<RunRef[]> {
  const keys = await listKeys(deps.s3, deps.bucket, deps.layout.deliveryPrefix(window));
  const runs = keys
    .map((k) => /\/run=([^/]+)\/window\.json$/.exec(k)?.[1])
    .filter((r): r is string => r !== undefined && (only === undefined || r === only));
  return runs.sort().map((runId) => ({ ...window, runId }));
}

async function verifyRuns(deps: ForwardBaseDeps, runs: RunRef[], flags: WindowOptions, io: CliIo): Promise<number> {
  const verdicts: PlatformVerdict[] = [];
  for (const ref of runs) {
    const { verdict } = await settleRun(ref, verifyDepsOf(deps));
    verdicts.push(verdict);
    if (!flags.json) line(io.stdout, `run ${ref.runId}: ${describeVerdict(verdict)}`);
  }
  if (flags.json) io.stdout.write(`${JSON.stringify(verdicts, null, 2)}\n`);
  return verdicts.some((v) => v.status === 'failed') ? EXIT_FAILED : EXIT_OK;
}

async function resendRuns(deps: ForwardBaseDeps, runs: RunRef[], io: CliIo): Promise<number> {
  if (deps.sink.kind !== 'batch') {
    throw new ConfigError(['resend re-sends failed Platform batches: it needs AEP_SINK=batch']);
  }
  const target = runs.at(-1)!;
  const r = await resendFailedBatch(target, {
    ...deps,
    batches: deps.sink.batches,
  });
  line(
    io.stdout,
    `run ${target.runId}: ${count(r.records)} records of failed batch ${r.failedBatchId} re-sent in batch ${r.batchId} ` +
      `(${r.files} file${r.files === 1 ? '' : 's'}); run \`verify --window ${target.windowId}\` for Platform's verdict.`,
  );
  return EXIT_OK;
}

/** One line: the status and the counts of a verdict. */
export function describeVerdict(v: PlatformVerdict): string {
  const counts = `${count(v.ingested)} ingested, ${count(v.failed)} failed at Platform`;
  const reasons = v.failed > 0 && v.byReason !== undefined ? ` (${formatReasons(v.byReason)})` : '';
  const detail = v.detail !== undefined ? ` — ${v.detail}` : '';
  return v.status === 'pending' ? `pending${detail}` : `${v.status}: ${counts}${reasons}${detail}`;
}
