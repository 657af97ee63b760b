/**
 * Commands on one committed window in staging:
 * - `forward --window <id>`: forwards it the way the forward Lambda does (`forwardWindow`): parts with a receipt are
 *   skipped and no `_id` is sent twice — for a window whose forward failed or was cut short.
 * - `replay --window <id>`: forwards it again ON PURPOSE (`forwardWindow(…, { replay: true })`): the receipts and id
 *   ledgers that normally stop a record being sent twice are ignored, the run writes receipts of its own, and the
 *   output says loudly that Platform will store the records again.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { type Config, type WindowMode, ConfigError } from '#common/config';
import { type ForwardBaseDeps, createForwardDeps } from '#forward/deps';
import { ManifestMissingError, type WindowForwardResult, forwardWindow } from '#forward/window';
import type { StagingLayout, WindowRef } from '#staging/layout';
import { exists } from '#staging/s3';
import { parseWindowId } from '#windows/plan';
import { UsageError, choiceFlag, parseFlags } from './args.ts';
import { readConfigs } from './config.ts';
import { type Env, loadEnv, s3ClientFor, secretsManagerFor } from './env.ts';
import { withEnv } from './errors.ts';
import { listKeys } from './invariants.ts';
import { type CliContext, type CliIo, EXIT_FAILED, EXIT_OK, count, duration, line } from './io.ts';
import { createCliLog } from './log.ts';
import { formatReasons, windowLabel } from './report.ts';

export const COMMON_OPTIONS = `  --window <id>        window id as shown by sync/demo, e.g. 20240501T060000Z_20240501T070000Z
  --mode <mode>        processing-time (default, WINDOW_MODE) or event-time: the staging folder of the window
  --project <id>       Mixpanel project id (default MIXPANEL_PROJECT_ID)
  --json               print the forward result as JSON
  --env-file <path>    read this file instead of ./.env
  --verbose            show the handler's JSON logs (on stderr)
  -h, --help           show this help

Needs the forward configuration (STAGING_BUCKET, AEP_* and credentials) and MIXPANEL_PROJECT_ID.
`;

export const REPLAY_USAGE = `Usage: npm run cli -- replay --window <id> [options]

Sends a committed window to Adobe Experience Platform again, from the staged files (Mixpanel is not asked again).
This RE-SENDS ON PURPOSE: the usual protection against sending a record twice is switched off for this run, and
Platform's data lake does not deduplicate, so records delivered before are stored again. Use it after fixing the
mapping or the dataset, or to fill a dataset that lost data. To finish a window whose forward failed, use
\`forward --window <id>\` instead: it sends only what was not delivered.

Options:
${COMMON_OPTIONS}`;

export const FORWARD_USAGE = `Usage: npm run cli -- forward --window <id> [options]

Forwards a committed window from staging the way the forward Lambda does: parts that have a receipt are skipped and
no _id is sent twice, so it is safe to run after a forward failed or stopped half way (nothing is re-sent).

Options:
${COMMON_OPTIONS}`;

export const WINDOW_FLAGS = {
  window: { type: 'string' },
  mode: { type: 'string' },
  project: { type: 'string' },
  run: { type: 'string' },
  json: { type: 'boolean' },
  'env-file': { type: 'string' },
  verbose: { type: 'boolean' },
} as const;

type Kind = 'forward' | 'replay';

/** What a window command runs once its options and environment are read. */
export type WindowRun = (options: WindowOptions, env: Env, io: CliIo, ctx: CliContext) => Promise<number>;

export const replayCommand = (
  argv: readonly string[],
  env: Readonly<Env>,
  io: CliIo,
  ctx: CliContext = {},
): Promise<number> => windowCommand(REPLAY_USAGE, (o, e, i, c) => forwardOne('replay', o, e, i, c), argv, env, io, ctx);
export const forwardCommand = (
  argv: readonly string[],
  env: Readonly<Env>,
  io: CliIo,
  ctx: CliContext = {},
): Promise<number> =>
  windowCommand(FORWARD_USAGE, (o, e, i, c) => forwardOne('forward', o, e, i, c), argv, env, io, ctx);

/** Reads a window command's flags and environment, then runs it (`--run` only for commands whose usage has it). */
export async function windowCommand(
  usage: string,
  run: WindowRun,
  argv: readonly string[],
  rawEnv: Readonly<Env>,
  io: CliIo,
  ctx: CliContext,
): Promise<number> {
  const { flags } = parseFlags(argv, WINDOW_FLAGS);
  if (flags.help) {
    io.stdout.write(usage);
    return EXIT_OK;
  }
  if (flags.window === undefined)
    throw new UsageError('--window <id> is required (the window id printed by sync or demo)');
  if (flags.run !== undefined && !usage.includes('--run '))
    throw new UsageError('--run is not an option of this command');
  const { from, to } = parseWindowId(flags.window);
  const modeFlag = choiceFlag(flags.mode, 'mode', ['processing-time', 'event-time'] as const);
  const env = await loadEnv(rawEnv, {
    ...(ctx.cwd ? { cwd: ctx.cwd } : {}),
    ...(flags['env-file'] ? { envFile: flags['env-file'] } : {}),
  });
  const options = {
    window: flags.window,
    from,
    to,
    mode: modeFlag,
    project: flags.project,
    run: flags.run,
    json: flags.json === true,
    verbose: flags.verbose === true,
  };
  return withEnv(env, () => run(options, env, io, ctx));
}

export interface WindowOptions {
  readonly window: string;
  readonly from: number;
  readonly to: number;
  readonly mode: WindowMode | undefined;
  readonly project: string | undefined;
  /** `--run <runId>`: one run of the window (verify, resend). */
  readonly run: string | undefined;
  readonly json: boolean;
  readonly verbose: boolean;
}

/** The forward configuration, project and mode a window command works on (a ConfigError lists what is missing). */
export function windowTarget(
  flags: Pick<WindowOptions, 'project' | 'mode'>,
  env: Env,
): { config: Config; projectId: string; mode: WindowMode } {
  const projectId = flags.project ?? env.MIXPANEL_PROJECT_ID;
  const problems: string[] = [];
  if (projectId === undefined || projectId === '')
    problems.push(
      'MIXPANEL_PROJECT_ID is required to find the window in staging (the numeric Mixpanel project id), or pass --project',
    );
  else if (!/^\d+$/.test(projectId))
    problems.push(`MIXPANEL_PROJECT_ID must be the numeric project id (got ${JSON.stringify(projectId)})`);
  let config: Config | undefined;
  try {
    [config] = readConfigs(env, ['forward']);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(...error.problems);
  }
  if (problems.length > 0 || config === undefined) throw new ConfigError(problems);
  return { config, projectId: projectId!, mode: flags.mode ?? config.windows.mode };
}

/** What a window command works with: the forward dependencies, the committed window, and its configuration. */
export interface WindowScope {
  readonly deps: ForwardBaseDeps;
  readonly ref: WindowRef;
  readonly config: Config;
}

/**
 * Builds the forward dependencies for the window of `flags` and runs `body` on it when it is committed (otherwise
 * says so and lists the committed windows); the clients are closed afterwards.
 */
export async function onCommittedWindow(
  flags: WindowOptions,
  env: Env,
  io: CliIo,
  ctx: CliContext,
  body: (scope: WindowScope) => Promise<number>,
): Promise<number> {
  const { config, projectId, mode } = windowTarget(flags, env);
  const log = createCliLog(io.stderr, { verbose: flags.verbose });
  const s3 = s3ClientFor(env);
  const sm = secretsManagerFor(env);
  try {
    const deps = await createForwardDeps(config, {
      s3,
      secretsManager: sm,
      log,
      ...(ctx.now ? { now: ctx.now } : {}),
      ...(ctx.sleep ? { sleep: ctx.sleep } : {}),
    });
    const ref = { projectId, mode, windowId: flags.window };
    if (!(await exists(s3, config.staging.bucket, deps.layout.manifestKey(ref))))
      return notCommitted(io, s3, config, deps.layout, ref);
    return await body({ deps, ref, config });
  } finally {
    s3.destroy();
    sm.destroy();
  }
}

function forwardOne(kind: Kind, flags: WindowOptions, env: Env, io: CliIo, ctx: CliContext): Promise<number> {
  return onCommittedWindow(flags, env, io, ctx, ({ deps, ref, config }) =>
    forwardCommitted(kind, flags, io, deps, ref, config),
  );
}

async function forwardCommitted(
  kind: Kind,
  flags: WindowOptions,
  io: CliIo,
  deps: ForwardBaseDeps,
  ref: WindowRef,
  config: Config,
): Promise<number> {
  const { from, to } = flags;
  const mode = ref.mode;
  const s3 = deps.s3;
  const out = flags.json ? io.stderr : io.stdout;
  const label = `window ${flags.window} (${windowLabel(new Date(from).toISOString(), new Date(to).toISOString())}, ${mode}) to AEP dataset ${config.aep!.datasetId}`;
  if (kind === 'replay') {
    line(out, `REPLAY of ${label}.`);
    line(
      out,
      "  This re-sends every record of the window ON PURPOSE. Platform's data lake does not deduplicate: records",
    );
    line(out, '  delivered before will be stored again. Receipts of this replay are written under their own run id.');
  } else {
    line(out, `Forwarding ${label}: parts already delivered are skipped, no _id is sent twice.`);
  }
  let result: WindowForwardResult;
  const started = Date.now();
  try {
    // The CLI forwards every partition itself (no fan-out to a queue), so its answer is the window's.
    const { fanOut: _, ...local } = deps;
    result = await forwardWindow(ref, local, { replay: kind === 'replay' });
  } catch (error) {
    // Removed between the check and the read.
    if (!(error instanceof ManifestMissingError)) throw error;
    return notCommitted(io, s3, config, deps.layout, ref);
  }
  const ms = Date.now() - started;
  if (flags.json) io.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  const skipped =
    result.partsSkipped > 0
      ? `, ${result.partsSkipped} of ${result.parts} part(s) skipped (delivered before)`
      : `, ${result.parts} part(s)`;
  line(
    out,
    `  ${kind === 'replay' ? 're-sent' : 'forwarded'}: ${count(result.accepted)} accepted, ${count(result.rejected)} rejected${result.rejected > 0 ? ` (${formatReasons(result.byReason)})` : ''} of ${count(result.events)} staged events${skipped}, ${duration(ms)}.`,
  );
  line(out, `  receipts: s3://${config.staging.bucket}/${deps.layout.deliveryPrefix(ref)}run=${result.runId}/`);
  if (!result.complete) {
    line(
      io.stderr,
      `error: the ${kind} stopped before the end; run \`forward --window ${flags.window}\` to send the rest.`,
    );
    return EXIT_FAILED;
  }
  return EXIT_OK;
}

/** Says the window is not committed and lists the committed windows of the project and mode (latest last). */
export async function notCommitted(
  io: CliIo,
  s3: S3Client,
  config: Config,
  layout: StagingLayout,
  ref: WindowRef,
): Promise<number> {
  line(
    io.stderr,
    `error: window ${ref.windowId} is not committed in s3://${config.staging.bucket}/${layout.windowPrefix(ref)} (no manifest.json).`,
  );
  const manifests = (
    await listKeys(s3, config.staging.bucket, `${layout.prefix}staging/project=${ref.projectId}/mode=${ref.mode}/`)
  ).filter((k) => k.endsWith('/manifest.json'));
  if (manifests.length === 0) {
    line(
      io.stderr,
      `  No committed window of project ${ref.projectId} in ${ref.mode} mode: check --mode, MIXPANEL_PROJECT_ID and STAGING_BUCKET/STAGING_PREFIX.`,
    );
  } else {
    line(io.stderr, `  Committed windows (${ref.mode}), latest last:`);
    for (const k of manifests.slice(-10)) line(io.stderr, `    ${layout.parseManifestKey(k)?.windowId ?? k}`);
  }
  return EXIT_FAILED;
}
