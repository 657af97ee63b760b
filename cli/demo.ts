/**
 * `demo` (`npm start`): the whole product on this machine with no account, configuration or network. It starts the
 * local stack (Mixpanel export emulator with a seeded dataset, s3rver over `.local/s3`, the AEP emulator, the SQS
 * stand-in holding the forward queue a partitioned window fans out to), replays the
 * hourly schedule over the last few hours through the real export and forward handlers — including a missed run that
 * the next one catches up and a duplicate schedule delivery — on a Platform target it first provisions itself
 * (`provision` against the AEP emulator), then checks the invariants of docs/architecture.md against what the
 * emulators saw. Exit code 0 only if they held.
 */
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import type { SQSClient } from '@aws-sdk/client-sqs';
import { gunzipSync } from 'node:zlib';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readConfig } from '#common/config';
import { type LocalStack, startLocalStack } from '#emulators/local-stack';
import type { ExportResult } from '#export/run';
import { sqsFanOut } from '#forward/fan-out';
import { StagingLayout } from '#staging/layout';
import { getBytes } from '#staging/s3';
import { choiceFlag, intFlag, parseFlags } from './args.ts';
import { describeFailure } from './errors.ts';
import { wireHandlers } from './handlers.ts';
import { type InvariantReport, checkInvariants } from './invariants.ts';
import { type CliContext, type CliIo, EXIT_FAILED, EXIT_OK, count, duration, line } from './io.ts';
import { createCliLog } from './log.ts';
import { runProvision } from './provision.ts';
import { type ForwardQueue, runPipeline } from './pipeline.ts';
import { RunReport, identityLine } from './report.ts';

export const DEMO_USAGE = `Usage: npm start            (same as: npm run cli -- demo)
       npm run cli -- demo [options]

Runs the whole pipeline on local emulators: no configuration, credentials or network needed. Starts a Mixpanel export
emulator with a seeded, realistic dataset, an S3 server (s3rver) over .local/s3 and an AEP emulator, all on free
loopback ports; replays the hourly schedule over the last hours through the export and forward handlers; prints a
summary and checks that nothing was lost or sent twice. .local/s3 is wiped at the start of each run.

Options:
  --events <n>         events in the dataset (default 50000; Mixpanel's duplicates come on top)
  --hours <n>          hours of data, one window each (default 4, 2–24)
  --sink <sink>        streaming (default) or batch: how records are sent to Platform
  --dir <folder>       where s3/ is written (default .local)
  --verbose            show the handlers' JSON logs (on stderr)
  -h, --help           show this help
`;

const HOUR = 3_600_000;
const WINDOW_MINUTES = 60;
const SETTLE_MINUTES = 30;
const SEED = 20_240_501;
/** The demo's asynchronous refusal: every Nth record of one streaming request, and Platform's reason for it. */
const ASYNC_REFUSAL_EVERY = 150;
const ASYNC_REFUSAL = 'the value does not match the type of its field (the schema was changed after provisioning)';
/** Lines that are not events, served with the catch-up run's export: the export quarantines them with a reason. */
const MALFORMED_LINES = [
  '{"event":"Order Completed","properties":{"time":17',
  'Internal Server Error',
  '["not","an","event"]',
  '{"properties":{"time":1732000000,"distinct_id":"u-1"}}',
  '{"event":"Page View"}',
];

export interface DemoOptions {
  readonly events: number;
  readonly hours: number;
  readonly sink: 'streaming' | 'batch';
  /** Folder for `s3/` (s3rver), wiped first; one demo at a time per folder. */
  readonly dir: string;
  readonly verbose: boolean;
  readonly now?: () => number;
  /** Called with the running stack and the provisioned dataset before it closes (tests read what the emulators saw). */
  readonly inspect?: (stack: LocalStack, datasetId: string) => void | Promise<void>;
}

export interface DemoResult {
  readonly code: number;
  readonly report: RunReport;
  readonly invariants?: InvariantReport;
  /** Lines the Mixpanel emulator served (200 responses) and records the AEP emulator accepted. */
  readonly mixpanelLines: number;
  readonly aepAccepted: number;
}

/** The repository root (this file is cli/demo.ts). */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const hhmm = (ms: number): string => new Date(ms).toISOString().slice(11, 16);
const shown = (p: string): string => {
  const rel = path.relative(process.cwd(), p);
  return rel === '' ? '.' : rel.startsWith('..') ? p : rel;
};

export async function demoCommand(
  argv: readonly string[],
  _env: unknown,
  io: CliIo,
  ctx: CliContext = {},
): Promise<number> {
  const { flags } = parseFlags(argv, {
    events: { type: 'string' },
    hours: { type: 'string' },
    sink: { type: 'string' },
    dir: { type: 'string' },
    verbose: { type: 'boolean' },
  });
  if (flags.help) {
    io.stdout.write(DEMO_USAGE);
    return EXIT_OK;
  }
  const result = await runDemo(
    {
      events: intFlag(flags.events, 'events', 50_000, 1, 5_000_000),
      hours: intFlag(flags.hours, 'hours', 4, 2, 24),
      sink: choiceFlag(flags.sink, 'sink', ['streaming', 'batch'] as const) ?? 'streaming',
      dir: path.resolve(ctx.cwd ?? process.cwd(), flags.dir ?? path.join(ROOT, '.local')),
      verbose: flags.verbose === true,
      ...(ctx.now ? { now: ctx.now } : {}),
    },
    io,
  );
  return result.code;
}

/** One scheduled invocation of the demo's timeline. */
interface Step {
  readonly at: number;
  readonly label: string;
  readonly event: { source: 'schedule'; scheduledTime: string };
  /** The run that did not happen (the next one catches up). */
  readonly missed?: boolean;
  readonly before?: (stack: LocalStack) => void;
}

export async function runDemo(o: DemoOptions, io: CliIo): Promise<DemoResult> {
  const out = io.stdout;
  const now = o.now ?? Date.now;
  const started = now();
  // The last window that is settled now, and the hours before it: the data the schedule would have exported.
  const end = Math.floor((started - SETTLE_MINUTES * 60_000) / HOUR) * HOUR;
  const start = end - o.hours * HOUR;
  const s3Dir = path.join(o.dir, 's3');
  await mkdir(o.dir, { recursive: true });
  const lock = await takeLock(path.join(o.dir, 'demo.pid'));
  if (typeof lock === 'number') {
    line(
      io.stderr,
      `error: another demo (process ${lock}) is using ${shown(o.dir)}; wait for it to finish, or pass --dir <another folder>.`,
    );
    return { code: EXIT_FAILED, report: new RunReport(undefined), mixpanelLines: 0, aepAccepted: 0 };
  }
  await rm(s3Dir, { recursive: true, force: true });
  await mkdir(s3Dir, { recursive: true });

  const report = new RunReport(out);
  const log = createCliLog(io.stderr, { verbose: o.verbose });
  let stack: LocalStack | undefined;
  let sqs: SQSClient | undefined;
  let mixpanelLines = 0;
  let aepAccepted = 0;
  try {
    stack = await startLocalStack({
      dataset: { seed: SEED, count: o.events, start, end },
      sink: o.sink,
      s3Directory: s3Dir,
      keep: 'ids',
      env: { WINDOW_MINUTES: String(WINDOW_MINUTES), SETTLE_MINUTES: String(SETTLE_MINUTES) },
      ...(o.now ? { now: o.now } : {}),
    });
    const s = stack;
    sqs = s.sqsClient();
    const projectId = s.exportConfig.mixpanel!.projectId;
    line(out, 'mixpanel-aep-connector demo: the whole pipeline on this machine, no account or network needed');
    line(out);
    line(out, 'Local services (loopback only; credentials are random for this run and never printed)');
    line(
      out,
      `  Mixpanel export emulator  ${s.mixpanel.url}  project ${projectId}: ${count(o.events)} events processed ${hhmm(start)}–${hhmm(end)} UTC (+ Mixpanel's duplicates)`,
    );
    line(out, `  S3 (s3rver)               ${s.s3.endpoint}  bucket ${s.bucket}, files in ${shown(s3Dir)}`);
    const ingestion = o.sink === 'streaming' ? 'streaming inlet' : 'batch ingestion';
    line(out, `  AEP emulator              ${s.aep.url}  IMS + Platform setup APIs + ${ingestion}`);
    line(out, `  SQS stand-in              ${s.sqs.url}  forward queue (a partitioned window's partition messages)`);
    line(out);

    // The product sets up its own target first (`provision`); its schema is what the emulator validates records with.
    const setup = 'the schema, identities, dataset and dataflow the mapping needs';
    line(out, `Platform setup (npm run cli -- provision): ${setup}`);
    const unset = ['AEP_DATASET_ID', 'AEP_SCHEMA_ID', 'AEP_INLET_URL', 'AEP_TENANT_ID'];
    const target: Record<string, undefined> = Object.fromEntries(unset.map((k) => [k, undefined]));
    const { result: provisioned } = await runProvision(
      { ...s.env, ...target },
      {
        onStep: (p) => line(out, `  ${p.action.padEnd(8)} ${p.object.padEnd(20)} ${p.name}`),
      },
    );
    // The emulated data lake closes its streaming batches when told to (`settle()` below) instead of within Platform's
    // documented 60 minutes, so the verifier need not wait for it here.
    // The forward queue is the SQS stand-in: a partitioned window fans out to it through the product's SQS client.
    const forwardEnv = {
      ...s.env,
      ...provisioned.values,
      AEP_VERIFY_SETTLE_MINUTES: '0',
      FORWARD_QUEUE_URL: s.forwardQueue.url,
    };
    const datasetId = provisioned.values.AEP_DATASET_ID;
    line(out, `  → dataset ${datasetId}, schema ${provisioned.values.AEP_SCHEMA_ID}`);
    line(out);

    const { exportHandler, forwardHandler, verifyHandler } = wireHandlers(
      s.exportConfig,
      readConfig(forwardEnv, 'forward'),
      {
        s3: s.s3.client,
        log,
        report,
        fanOut: sqsFanOut(s.forwardQueue.url, sqs),
        ...(o.now ? { now: o.now } : {}),
      },
    );
    const queue: ForwardQueue = { ...s.forwardQueue, sqs };

    // The hourly schedule fires SETTLE_MINUTES after each window ends; one run is missed (paused schedule, throttled
    // Lambda) and the next one catches up; the last event is delivered twice (EventBridge delivers at least once).
    const steps: Step[] = [];
    const missed = o.hours >= 3 ? o.hours - 1 : -1;
    for (let k = 1; k <= o.hours; k++) {
      const at = start + k * HOUR + SETTLE_MINUTES * 60_000;
      const event = { source: 'schedule' as const, scheduledTime: new Date(at).toISOString() };
      if (k === missed) {
        steps.push({
          at,
          label: `${hhmm(at)} scheduled run MISSED (e.g. the schedule was paused): nothing runs`,
          event,
          missed: true,
        });
        continue;
      }
      const catchUp = k === missed + 1;
      steps.push({
        at,
        label: `${hhmm(at)} scheduled run: ${catchUp ? 'the previous window plus the missed one (catch-up, one Mixpanel query)' : 'the previous window'}`,
        event,
        ...(catchUp
          ? {
              before: (st: LocalStack) =>
                st.mixpanel.addRawLines(
                  projectId,
                  MALFORMED_LINES.map((l) => ({ line: l, date: new Date(end - 1).toISOString().slice(0, 10) })),
                ),
            }
          : {}),
      });
    }
    const last = steps[steps.length - 1]!;
    steps.push({
      at: last.at,
      label: `${hhmm(last.at)} the same schedule event delivered again (at-least-once delivery)`,
      event: last.event,
    });

    line(
      out,
      `The hourly schedule over the last ${o.hours} hours (windows of ${WINDOW_MINUTES} min, exported ${SETTLE_MINUTES} min after they end):`,
    );
    const forwardFailures: string[] = [];
    let refusalShown = false;
    for (const step of steps) {
      line(out, `  ▸ ${step.label}`);
      if (step.missed) continue;
      if (!refusalShown) {
        // Platform judges records after taking them (streaming: asynchronous validation; batch: at COMPLETE, as failed
        // rows): a few records of this run are refused later, as records that break a schema retyped in Platform after
        // provisioning are. Only the verifier can find them.
        s.aep.injectFault({
          kind: 'partial',
          everyNth: ASYNC_REFUSAL_EVERY,
          statusCode: 400,
          asynchronous: true,
          message: ASYNC_REFUSAL,
        });
        line(
          out,
          o.sink === 'streaming'
            ? `    (the emulated Platform will refuse every ${ASYNC_REFUSAL_EVERY}th record of the first request later, during its asynchronous validation)`
            : `    (the emulated Platform will refuse every ${ASYNC_REFUSAL_EVERY}th row of the first file when the batch completes)`,
        );
        refusalShown = true;
      }
      if (step.before) {
        step.before(s);
        line(
          out,
          `    (${MALFORMED_LINES.length} malformed lines are mixed into this export: they go to quarantine/, with a reason)`,
        );
      }
      const run = await runPipeline(step.event, exportHandler, forwardHandler!, s.bucket, queue);
      forwardFailures.push(...run.forwardFailures);
      if (run.export.windows.length === 0)
        line(
          out,
          `    nothing to export: every window up to ${hhmm(end)} is committed, so nothing is exported or sent again`,
        );
      printRemaining(out, run.export);
    }

    // Platform's verdict: what the stack's verify schedule finds once Platform has finished with what was sent.
    line(out);
    line(
      out,
      "Platform's verdict (the verifier the stack runs every few minutes; npm run cli -- verify --window <id>):",
    );
    s.aep.settle();
    const round = await verifyHandler!();
    line(
      out,
      `  ▸ checked ${round.checked} forwarded window(s): ${round.settled} with a final verdict, ${round.pending} pending`,
    );

    // What the emulators saw, against what the handlers reported.
    mixpanelLines = s.mixpanel.requests.filter((r) => r.status === 200).reduce((n, r) => n + r.eventsServed, 0);
    const acceptedIds = s.aep.acceptedIds(datasetId);
    aepAccepted = acceptedIds.length;
    const invariants = await checkInvariants({
      s3: s.s3.client,
      bucket: s.bucket,
      layout: new StagingLayout(s.exportConfig.staging.prefix),
      projectId,
      acceptedIds,
      requireVerified: true,
    });
    for (const w of invariants.windows) if (w.platform !== undefined) report.verified(w.window, w.platform);
    await printRefusals(out, s, invariants);
    await o.inspect?.(s, datasetId);

    const t = report.totals();
    line(out);
    line(out, 'Summary');
    line(out, report.table());
    const reasons = report.reasonsLine();
    if (reasons !== undefined) line(out, `  ${reasons}; duplicates are Mixpanel's repeated lines, sent once`);
    const identity = identityLine(report.totals());
    if (identity !== undefined) line(out, `  ${identity}`);
    line(out, `  wall time ${duration(now() - started)}, ${o.sink} sink`);

    const servedOk = mixpanelLines === t.exported + t.quarantined;
    const acceptedOk = aepAccepted === t.accepted - t.failedAtPlatform;
    line(out);
    line(out, 'Checks');
    const check = (ok: boolean, text: string): void => line(out, `  ${ok ? '✓' : '✗'} ${text}`);
    check(
      servedOk,
      `staged what Mixpanel returned: the emulator served ${count(mixpanelLines)} lines = ${count(t.exported)} exported + ${count(t.quarantined)} quarantined`,
    );
    check(
      acceptedOk,
      `the AEP emulator stored ${count(aepAccepted)} records = ${count(t.accepted)} accepted in the receipts − ` +
        `${count(t.failedAtPlatform)} refused by Platform afterwards (= ${count(t.ingested)} ingested per its verdict)`,
    );
    printInvariants(out, invariants, check);
    check(
      forwardFailures.length === 0,
      `every committed window was forwarded completely${forwardFailures.length > 0 ? ` (not: ${forwardFailures.join(', ')})` : ''}`,
    );

    const bucketDir = path.join(s3Dir, s.bucket);
    const firstWindow = report.rows[0]?.window ?? '<window>';
    line(out);
    line(
      out,
      `Where to look (s3rver keeps each object as a file named <key>._S3rver_object; parts are gzip: zcat them)`,
    );
    line(
      out,
      `  staged parts + manifest.json  ${shown(path.join(bucketDir, `staging/project=${projectId}/mode=processing-time/window=${firstWindow}`))}/`,
    );
    line(out, `  quarantined lines             ${shown(path.join(bucketDir, `quarantine/project=${projectId}`))}/`);
    line(out, `  receipts (one per part)       ${shown(path.join(bucketDir, `delivery/project=${projectId}`))}/`);
    line(out, `  rejected records + reasons    ${shown(path.join(bucketDir, `rejected/project=${projectId}`))}/`);
    line(out, '    (platform-part-*: records Platform refused after accepting them, with its code and message)');
    line(
      out,
      `  checkpoint                    ${shown(path.join(bucketDir, `state/project=${projectId}/checkpoint.json`))}._S3rver_object`,
    );
    const distinct = count(new Set(acceptedIds).size);
    line(out, `  AEP emulator                  ${distinct} distinct _ids accepted into dataset ${datasetId}`);
    line(out);
    line(
      out,
      'Next: point it at your own Mixpanel project and Platform sandbox with `npm run cli -- sync --dry-run` (see the README).',
    );

    const ok = invariants.ok && servedOk && acceptedOk && forwardFailures.length === 0;
    line(out);
    line(out, ok ? 'OK: every invariant held.' : 'FAILED: an invariant did not hold (see the ✗ lines above).');
    return { code: ok ? EXIT_OK : EXIT_FAILED, report, invariants, mixpanelLines, aepAccepted };
  } catch (error) {
    line(io.stderr, describeFailure(error, stack?.env ?? {}).text);
    return { code: EXIT_FAILED, report, mixpanelLines, aepAccepted };
  } finally {
    sqs?.destroy();
    await stack?.close();
    await lock.release();
  }
}

/**
 * Makes sure one demo at a time uses a folder (a second one would wipe the first one's S3 files under it).
 * @returns a release function, or the pid of the live demo that holds the folder
 */
async function takeLock(file: string): Promise<{ release: () => Promise<void> } | number> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(file, String(process.pid), { flag: 'wx' });
      return { release: () => rm(file, { force: true }) };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) return pid;
      // Left behind by a demo that was killed: take it over.
      await rm(file, { force: true });
    }
  }
  throw new Error(`cannot take ${file}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function printRemaining(out: CliIo['stdout'], result: ExportResult): void {
  const r = result.remaining;
  if (r !== undefined) line(out, `    ${r.windows} window(s) left for the next run (${r.reason})`);
}

/** The three invariants of docs/architecture.md, each with the problems `checkInvariants` found for it. */
function printInvariants(
  out: CliIo['stdout'],
  report: InvariantReport,
  check: (ok: boolean, text: string) => void,
): void {
  const twice = report.problems.filter((p) => /more than once|Platform holds/.test(p));
  const checkpoint = report.problems.filter((p) => p.startsWith('checkpoint'));
  const lost = report.problems.filter((p) => !twice.includes(p) && !checkpoint.includes(p));
  const exported = report.windows.reduce((n, w) => n + w.exported, 0);
  const settled = report.windows.reduce((n, w) => n + w.accepted + w.rejected, 0);
  const verified = report.windows.filter((w) => w.platform !== undefined && w.platform.status !== 'pending');
  const atPlatform =
    verified.length === 0
      ? ''
      : `; once Platform's verdict is in, exported = ingested + failed at Platform + rejected + quarantined ` +
        `(${verified.length} window${verified.length === 1 ? '' : 's'})`;
  check(
    lost.length === 0,
    `1. nothing lost: in every committed window, manifest events = accepted + rejected (${count(exported)} = ${count(settled)}), every rejected record kept with its reason${atPlatform}`,
  );
  for (const p of lost) line(out, `      ${p}`);
  check(
    twice.length === 0,
    `2. nothing sent twice: ${report.duplicatesAtPlatform} _id accepted more than once by Platform`,
  );
  for (const p of twice) line(out, `      ${p}`);
  check(checkpoint.length === 0, '3. the checkpoint never passes a window without a manifest');
  for (const p of checkpoint) line(out, `      ${p}`);
}

/** The records Platform refused after accepting them, each traced to rejected/ with Platform's reason. */
async function printRefusals(out: CliIo['stdout'], s: LocalStack, report: InvariantReport): Promise<void> {
  for (const w of report.windows) {
    const v = w.platform;
    if (v === undefined || v.failed === 0) continue;
    line(out, `  ▸ ${w.window}: ${count(v.ingested)} ingested, ${count(v.failed)} refused by Platform afterwards`);
    for (const key of v.rejectedKeys ?? []) {
      const bytes = await getBytes(s.s3.client, s.bucket, key);
      const first = bytes === undefined ? undefined : gunzipSync(bytes).toString('utf8').split('\n')[0];
      const r = first ? (JSON.parse(first) as { reason?: string; detail?: string }) : undefined;
      line(out, `      → ${key}`);
      if (r !== undefined) line(out, `        ${r.reason}: ${r.detail}`);
    }
  }
}
