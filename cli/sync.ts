/**
 * `sync`: one run of the deployed pipeline against real services — the export handler for the previous window (the
 * scheduled event at "now", with catch-up) or a manual range, then the forward handler for every window it committed.
 * `--dry-run` exports and maps without staging or sending anything.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { type Config, DEFAULTS, type WindowMode } from '#common/config';
import type { AepSink } from '#common/settings';
import { StagingLayout } from '#staging/layout';
import { StateStore } from '#staging/state';
import type { ExportResult, WindowSummary } from '#export/run';
import { planSettings } from '#export/run';
import type { WindowForwardResult } from '#forward/window';
import { loadMappingConfig } from '#forward/mapping-source';
import { compileMapper } from '#mapping/mapper';
import { lastSettledEnd } from '#windows/plan';
import { startOfDayContaining } from '#common/zone-time';
import { UsageError, choiceFlag, parseFlags } from './args.ts';
import { readConfigs, readMappingSettings } from './config.ts';
import { type MappingCheck, MappingTap } from './dry-run.ts';
import { type Env, loadEnv, s3ClientFor, secretsManagerFor } from './env.ts';
import { describeFailure, withEnv } from './errors.ts';
import { wireHandlers } from './handlers.ts';
import { type CliContext, type CliIo, EXIT_FAILED, EXIT_OK, count, line, table } from './io.ts';
import { createCliLog } from './log.ts';
import { backfillPlan, printPlan } from './plan.ts';
import { runPipeline } from './pipeline.ts';
import { RunReport, formatReasons, identityLine, progressLine } from './report.ts';

export const SYNC_USAGE = `Usage: npm run cli -- sync [options]

Runs the connector once against real Mixpanel, S3 and Adobe Experience Platform: exports the previous window (what the
hourly schedule does, catching up every window missed since the checkpoint) or the range you give, then forwards each
committed window. Configuration comes from the environment and from a .env file (the environment wins); the variable
names are the Lambdas' (see the README's configuration table). AWS credentials and region come from the SDK's default
chain; AWS_ENDPOINT_URL_S3 points it at a local S3.

Options:
  --from <ISO>         start of a manual range, e.g. 2024-05-01T00:00:00Z (with --to)
  --to <ISO>           end of the range (exclusive); must be settled (SETTLE_MINUTES before now)
  --mode <mode>        processing-time (default, WINDOW_MODE) or event-time
  --force              export windows again even if already committed (only new ids are sent)
  --dry-run            export and map, stage nothing, send nothing: counts and mapping rejections per window
                       (checks committed windows too)
  --export-only        stage and commit, do not forward: when STAGING_BUCKET belongs to a deployed stack, its
                       forwarder receives every manifest already (S3 → SQS); let it forward
  --plan               with --from/--to: print the windows, Mixpanel queries, budget hours, expected events and
                       forward time at Platform's limit, exporting nothing (reads the checkpoint only)
  --json               print the handlers' results as JSON on stdout (progress goes to stderr)
  --env-file <path>    read this file instead of ./.env
  --verbose            show the handlers' JSON logs (on stderr)
  -h, --help           show this help

Examples:
  npm run cli -- sync --dry-run
  npm run cli -- sync --from 2024-05-01T00:00:00Z --to 2024-05-02T00:00:00Z
  npm run cli -- sync --from 2024-02-01T00:00:00Z --to 2024-05-01T00:00:00Z --mode event-time --plan
`;

const FLAGS = {
  from: { type: 'string' },
  to: { type: 'string' },
  mode: { type: 'string' },
  force: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  'export-only': { type: 'boolean' },
  plan: { type: 'boolean' },
  json: { type: 'boolean' },
  'env-file': { type: 'string' },
  verbose: { type: 'boolean' },
} as const;

interface DryRunWindow {
  readonly window: WindowSummary;
  readonly mapping: MappingCheck;
}

export async function syncCommand(
  argv: readonly string[],
  rawEnv: Readonly<Env>,
  io: CliIo,
  ctx: CliContext = {},
): Promise<number> {
  const { flags } = parseFlags(argv, FLAGS);
  if (flags.help) {
    io.stdout.write(SYNC_USAGE);
    return EXIT_OK;
  }
  const mode = choiceFlag(flags.mode, 'mode', ['processing-time', 'event-time'] as const);
  if ((flags.from === undefined) !== (flags.to === undefined))
    throw new UsageError('--from and --to go together (or give neither, for the previous window)');
  if (flags.force && flags.from === undefined && flags['dry-run'] !== true)
    throw new UsageError('--force needs --from and --to: the scheduled run never re-exports a committed window');
  const dryRun = flags['dry-run'] === true;
  const json = flags.json === true;
  if (dryRun && flags['export-only'])
    throw new UsageError('--dry-run and --export-only exclude each other (a dry run stages nothing)');
  if (flags.plan && (flags.from === undefined || dryRun || flags['export-only']))
    throw new UsageError('--plan needs --from and --to, and runs alone (not with --dry-run or --export-only)');

  const env = await loadEnv(rawEnv, {
    ...(ctx.cwd ? { cwd: ctx.cwd } : {}),
    ...(flags['env-file'] ? { envFile: flags['env-file'] } : {}),
  });
  // The scheduled event carries no mode: the export takes it from WINDOW_MODE, as the deployed function does.
  const runEnv: Env = mode !== undefined && flags.from === undefined ? { ...env, WINDOW_MODE: mode } : env;
  const options = { ...flags, mode, dryRun, json, exportOnly: flags['export-only'] === true };
  return withEnv(runEnv, () => (flags.plan ? runPlan(options, runEnv, io, ctx) : runSync(options, runEnv, io, ctx)));
}

/** `--plan`: the backfill's windows and costs from the configuration and the checkpoint; nothing is exported. */
async function runPlan(flags: SyncOptions, runEnv: Env, io: CliIo, ctx: CliContext): Promise<number> {
  const [config] = readConfigs(runEnv, ['export']) as [Config];
  const mp = config.mixpanel!;
  const mode: WindowMode = flags.mode ?? config.windows.mode;
  const from = Date.parse(flags.from ?? '');
  const to = Date.parse(flags.to ?? '');
  if (Number.isNaN(from) || Number.isNaN(to))
    throw new UsageError('--from and --to must be ISO instants, e.g. 2024-05-01T00:00:00Z');
  const s3 = s3ClientFor(runEnv);
  try {
    const state = new StateStore(s3, config.staging.bucket, new StagingLayout(config.staging.prefix), mp.projectId);
    const plan = backfillPlan({
      from,
      to,
      mode,
      force: flags.force === true,
      config,
      checkpoint: await state.read(),
      sink: (runEnv.AEP_SINK as AepSink | undefined) ?? DEFAULTS.sink,
      nowMs: (ctx.now ?? Date.now)(),
    });
    if (flags.json) {
      io.stdout.write(`${JSON.stringify({ plan }, null, 2)}\n`);
    } else {
      line(
        io.stdout,
        `Plan (nothing is exported): Mixpanel project ${mp.projectId}, ${mode} ${flags.from} → ${flags.to}`,
      );
      printPlan(io.stdout, plan);
    }
    return EXIT_OK;
  } finally {
    s3.destroy();
  }
}

interface SyncOptions {
  readonly from?: string;
  readonly to?: string;
  readonly mode: WindowMode | undefined;
  readonly force?: boolean;
  readonly dryRun: boolean;
  readonly exportOnly: boolean;
  readonly plan?: boolean;
  readonly json: boolean;
  readonly verbose?: boolean;
}

async function runSync(flags: SyncOptions, runEnv: Env, io: CliIo, ctx: CliContext): Promise<number> {
  const { mode, dryRun, json, exportOnly } = flags;
  const [exportConfig, forwardConfig] = readConfigs(
    runEnv,
    dryRun || exportOnly ? ['export'] : ['export', 'forward'],
  ) as [Config, Config | undefined];
  const mapping = dryRun ? readMappingSettings(runEnv) : undefined;

  // Human progress goes to stdout, or to stderr when stdout carries the JSON.
  const human = json ? io.stderr : io.stdout;
  const now = ctx.now ?? Date.now;
  const log = createCliLog(io.stderr, { verbose: flags.verbose === true });
  const report = new RunReport(human);
  const s3: S3Client = s3ClientFor(runEnv);
  let sm: SecretsManagerClient | undefined;
  const secretsManager = (): SecretsManagerClient => (sm ??= secretsManagerFor(runEnv));

  const mp = exportConfig.mixpanel!;
  const windowMode: WindowMode = mode ?? exportConfig.windows.mode;
  let event: Record<string, unknown>;
  if (flags.from !== undefined) {
    // A dry run writes nothing, so it checks committed windows too (force) instead of skipping them.
    event = {
      from: flags.from,
      to: flags.to,
      ...(mode ? { mode } : {}),
      ...(flags.force || dryRun ? { force: true } : {}),
      ...(dryRun ? { dryRun: true } : {}),
    };
  } else if (dryRun) {
    // The handler's dry run is a manual range: the previous window, as the schedule would export it now.
    const settings = planSettings(mp, exportConfig.windows);
    const end = lastSettledEnd(now(), windowMode, settings);
    const start =
      windowMode === 'processing-time'
        ? end - exportConfig.windows.minutes * 60_000
        : startOfDayContaining(end - 1, settings.dateZone);
    event = {
      from: new Date(start).toISOString(),
      to: new Date(end).toISOString(),
      mode: windowMode,
      dryRun: true,
      force: true,
    };
  } else {
    event = { source: 'schedule', scheduledTime: new Date(now()).toISOString() };
  }

  line(
    human,
    `${dryRun ? 'Dry run (nothing is staged or sent)' : exportOnly ? 'Export only (the deployed forwarder sends)' : 'Sync'}: Mixpanel project ${mp.projectId} (${mp.apiBaseUrl}) → s3://${exportConfig.staging.bucket}/${exportConfig.staging.prefix}${forwardConfig?.aep ? ` → AEP dataset ${forwardConfig.aep.datasetId} (${forwardConfig.aep.sink})` : ''}`,
  );
  line(
    human,
    `  ${'source' in event ? `scheduled run at ${String(event.scheduledTime)}: the previous ${windowMode} window, plus any missed since the checkpoint` : `range ${String(event.from)} → ${String(event.to)} (${windowMode})${flags.force ? ', forced' : ''}`}`,
  );

  // What every wiring below shares: the clients, the log and report, and the test clock.
  const wiring = {
    s3,
    secretsManager,
    log,
    report,
    ...(ctx.now ? { now: ctx.now } : {}),
    ...(ctx.sleep ? { sleep: ctx.sleep } : {}),
  };
  try {
    if (dryRun) {
      const mapper = compileMapper(await loadMappingConfig(mapping!.spec, s3), {
        projectId: mp.projectId,
        tenant: mapping!.tenant,
        projectTimezone: mp.projectTimezone,
        legacyLocalTime: mp.legacyLocalTime,
      });
      const tap = new MappingTap(mapper);
      const checked: DryRunWindow[] = [];
      const { exportHandler } = wireHandlers(exportConfig, undefined, {
        ...wiring,
        mapExportDeps: (d) => ({ ...d, client: tap.wrap(d.client) }),
        onExported: (w) => {
          const m = tap.check(w);
          checked.push({ window: w, mapping: m });
          const why = m.rejected > 0 ? ` (${formatReasons(m.byReason)})` : '';
          line(
            human,
            progressLine(
              'mapped',
              w.from,
              w.to,
              `${count(m.mapped)} would be sent, ${count(m.rejected)} rejected by the mapping${why}, ${count(m.duplicates)} duplicate${m.duplicates === 1 ? '' : 's'}`,
            ),
          );
        },
      });
      const result = await exportHandler(event);
      if (json) {
        io.stdout.write(
          `${JSON.stringify(
            { dryRun: true, export: result, mapping: checked.map((c) => ({ window: c.window.id, ...c.mapping })) },
            null,
            2,
          )}\n`,
        );
      } else {
        printDryRun(human, checked, result);
      }
      return EXIT_OK;
    }

    if (exportOnly) {
      const { exportHandler } = wireHandlers(exportConfig, undefined, wiring);
      const result = await exportHandler(event);
      if (json) io.stdout.write(`${JSON.stringify({ export: result }, null, 2)}\n`);
      else printRun(human, report, result);
      return EXIT_OK;
    }

    const forwarded: WindowForwardResult[] = [];
    const { exportHandler, forwardHandler } = wireHandlers(exportConfig, forwardConfig, {
      ...wiring,
      onForwarded: (r) => forwarded.push(r),
    });
    let run: Awaited<ReturnType<typeof runPipeline>>;
    try {
      run = await runPipeline(event, exportHandler, forwardHandler!, exportConfig.staging.bucket);
    } catch (error) {
      // The export failed part way: windows it committed before are safe in staging but were not forwarded here.
      const committed = report.rows.filter((r) => r.status === 'committed' && r.forward === undefined);
      if (committed.length > 0) {
        line(
          io.stderr,
          `${committed.length} window(s) were committed before the failure but not forwarded; after fixing the cause, \`sync\` continues the export, and these forward them:`,
        );
        for (const r of committed)
          line(
            io.stderr,
            `  npm run cli -- forward --window ${r.window}${r.mode !== 'processing-time' ? ` --mode ${r.mode}` : ''}`,
          );
      }
      throw error;
    }
    const failed = run.forwardFailures.length > 0 || forwarded.some((r) => !r.complete);
    if (json) {
      io.stdout.write(
        JSON.stringify({ export: run.export, forward: forwarded, forwardFailures: run.forwardFailures }, null, 2) +
          '\n',
      );
    } else {
      printRun(human, report, run.export);
    }
    if (failed) {
      const last = [...log.problems].reverse().find((p) => p.level === 'ERROR' && p.error !== undefined);
      line(
        io.stderr,
        `error: ${run.forwardFailures.length} window(s) were not forwarded completely: ${run.forwardFailures.join(', ')}`,
      );
      if (last !== undefined)
        line(io.stderr, `  cause: ${describeFailure(last.error, runEnv).text.replace(/^error: /, '')}`);
      const ids = [...new Set(run.forwardFailures.map((f) => f.split(':')[0]))];
      line(
        io.stderr,
        `  The window(s) stay committed in staging. Once the cause is fixed, finish them without re-sending anything: ${ids.map((id) => `\`npm run cli -- forward --window ${id}\``).join(', ')}`,
      );
      return EXIT_FAILED;
    }
    return EXIT_OK;
  } finally {
    s3.destroy();
    sm?.destroy();
  }
}

function printRun(out: CliIo['stdout'], report: RunReport, result: ExportResult): void {
  const skipped = result.windows.filter((w) => w.status === 'skipped');
  for (const w of skipped) report.skipped(w);
  line(out);
  if (report.rows.length === 0) {
    line(
      out,
      skipped.length > 0
        ? 'Nothing new to export: the windows asked for are committed already.'
        : 'Nothing to export: every settled window up to now is committed.',
    );
  } else {
    line(out, report.table());
    const reasons = report.reasonsLine();
    if (reasons !== undefined) line(out, `  ${reasons}`);
    const identity = identityLine(report.totals());
    if (identity !== undefined) line(out, `  ${identity}`);
  }
  if (result.checkpoint !== undefined)
    line(
      out,
      `  checkpoint: ${Object.entries(result.checkpoint)
        .map(([m, to]) => `${m} up to ${to}`)
        .join(', ')}`,
    );
  if (result.remaining !== undefined) {
    const r = result.remaining;
    line(
      out,
      `  ${r.windows} window(s) remain (${r.from} → ${r.to}, stopped by ${r.reason}): the next run continues from the checkpoint.`,
    );
  }
}

function printDryRun(out: CliIo['stdout'], checked: readonly DryRunWindow[], result: ExportResult): void {
  line(out);
  if (checked.length === 0) {
    line(out, 'Nothing to check: the range holds no window to export.');
    return;
  }
  const rows = checked.map((c) => [
    c.window.id,
    count(c.window.events),
    count(c.window.quarantined),
    count(c.mapping.mapped),
    count(c.mapping.rejected),
    count(c.mapping.duplicates),
  ]);
  const sum = (f: (c: DryRunWindow) => number) => count(checked.reduce((n, c) => n + f(c), 0));
  rows.push([
    `total (${checked.length} window${checked.length === 1 ? '' : 's'})`,
    sum((c) => c.window.events),
    sum((c) => c.window.quarantined),
    sum((c) => c.mapping.mapped),
    sum((c) => c.mapping.rejected),
    sum((c) => c.mapping.duplicates),
  ]);
  line(
    out,
    table([['window', 'events', 'quarantined', 'would send', 'mapping rejects', 'duplicates'], ...rows], {
      total: true,
    }),
  );
  const samples = checked.flatMap((c) => c.mapping.samples.map((s) => ({ ...s, window: c.window.id })));
  if (samples.length > 0) {
    line(out);
    line(out, '  Examples of rejected lines:');
    for (const s of samples.slice(0, 10)) line(out, `    ${s.reason}: ${s.detail}\n      ${s.line}`);
  }
  line(out);
  line(
    out,
    `  Nothing was staged or sent (the Mixpanel queries were counted in the query budget under state/).${result.remaining ? ` ${result.remaining.windows} more window(s) were not checked (${result.remaining.reason}).` : ''}`,
  );
}
