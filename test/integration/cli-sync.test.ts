/**
 * The CLI's `sync`, `replay` and their error messages, against the local stack (Mixpanel emulator, s3rver, AEP
 * emulator) reached the way an operator's machine reaches real services: through the environment only.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '#emulators/local-stack';
import { listKeys } from '#cli/invariants';
import { Buffered, type CliContext } from '#cli/io';
import { runCli } from '#cli/main';
import { StagingLayout } from '#staging/layout';

const H = 3_600_000;
/** Two hours before the current hour, plus ten minutes: fixed for the test, in the past of the real clock. */
const NOW = Math.floor(Date.now() / H) * H - 2 * H + 10 * 60_000;
const DATA_START = NOW - 6 * H;
const PROJECT = '3141592';

let stack: LocalStack | undefined;
let cwd: string | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
  if (cwd) await rm(cwd, { recursive: true, force: true });
  cwd = undefined;
});

/** A local stack and the environment an operator would export to reach it (S3 through AWS_ENDPOINT_URL_S3). */
async function setup(events = 3000) {
  const s = await startLocalStack({
    dataset: { seed: 11, count: events, start: DATA_START, end: NOW - 30 * 60_000 },
    now: () => NOW,
  });
  stack = s;
  cwd = await mkdtemp(path.join(tmpdir(), 'cli-sync-'));
  const env: Record<string, string> = {
    ...s.env,
    AWS_ENDPOINT_URL_S3: s.s3.endpoint,
    AWS_ACCESS_KEY_ID: 'S3RVER',
    AWS_SECRET_ACCESS_KEY: 'S3RVER',
    AWS_REGION: 'us-east-1',
  };
  const ctx: CliContext = { now: () => NOW, sleep: async () => undefined, cwd };
  const cli = async (argv: string[], over: Record<string, string | undefined> = {}, c: CliContext = ctx) => {
    const io = { stdout: new Buffered(), stderr: new Buffered() };
    const code = await runCli(argv, { ...env, ...over }, io, c);
    return { code, stdout: io.stdout.text, stderr: io.stderr.text };
  };
  return { s, env, cli };
}

/** A port nothing listens on (bound, then released). */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

const range = { from: new Date(NOW - 4 * H).toISOString(), to: new Date(NOW - 2 * H).toISOString() };
const servedLines = (s: LocalStack) =>
  s.mixpanel.requests.filter((r) => r.status === 200).reduce((n, r) => n + r.eventsServed, 0);

describe('sync --dry-run', () => {
  it('should export and map without staging or sending anything, and report counts and mapping rejections', async () => {
    // Prepare: one staged-looking event the mapper must refuse (no time), and one line that is not JSON
    const { s, cli } = await setup();
    const day = new Date(NOW - 3 * H).toISOString().slice(0, 10);
    s.mixpanel.addRawLines(PROJECT, [
      {
        line: JSON.stringify({
          event: 'Signed Up',
          properties: { distinct_id: 'u-7', $insert_id: 'i-7', mp_processing_time_ms: NOW - 3 * H },
        }),
        date: day,
      },
      { line: 'not json', date: day },
    ]);

    // Act
    const out = await cli(['sync', '--dry-run', '--json', '--from', range.from, '--to', range.to]);

    // Assess: the handler's dry run and the mapping tally agree with what Mixpanel served
    expect(out.code).toBe(0);
    const result = JSON.parse(out.stdout) as {
      dryRun: true;
      export: { windows: Array<{ id: string; status: string; events: number; quarantined: number }> };
      mapping: Array<{
        window: string;
        events: number;
        mapped: number;
        rejected: number;
        duplicates: number;
        byReason: Record<string, number>;
      }>;
    };
    expect(result.export.windows.map((w) => w.status)).toEqual(result.export.windows.map(() => 'dry-run'));
    const events = result.export.windows.reduce((n, w) => n + w.events, 0);
    const quarantined = result.export.windows.reduce((n, w) => n + w.quarantined, 0);
    expect(events + quarantined).toBe(servedLines(s));
    // "not json" once per query over its day; the raw event, served to every query of its day, is outside every
    // window but its own (a probe hour comes first: no rate known yet, so the range is two windows)
    expect(result.export.windows).toHaveLength(2);
    expect(quarantined).toBe(2 * result.export.windows.length - 1);
    const mapped = result.mapping.reduce((n, m) => n + m.mapped, 0);
    const rejected = result.mapping.reduce((n, m) => n + m.rejected, 0);
    const duplicates = result.mapping.reduce((n, m) => n + m.duplicates, 0);
    expect(mapped + rejected + duplicates).toBe(events);
    expect(result.mapping.reduce((n, m) => n + (m.byReason['missing-time'] ?? 0), 0)).toBe(1);
    expect(rejected).toBe(1);
    expect(duplicates).toBeGreaterThan(0);
    // Nothing staged, nothing sent: the only object is the query budget (a dry run still spends Mixpanel queries).
    expect(await listKeys(s.s3.client, s.bucket, '')).toEqual([new StagingLayout('').budgetKey(PROJECT)]);
    expect(s.aep.acceptedIds()).toHaveLength(0);
  });

  it('should print a per-window table and examples of rejected lines for people', async () => {
    const { s, cli } = await setup(1000);
    s.mixpanel.addRawLines(PROJECT, [
      {
        line: JSON.stringify({
          event: 'Signed Up',
          properties: { distinct_id: 'u-8', mp_processing_time_ms: NOW - 3 * H },
        }),
        date: new Date(NOW - 3 * H).toISOString().slice(0, 10),
      },
    ]);
    const out = await cli(['sync', '--dry-run', '--from', range.from, '--to', range.to]);
    expect(out.code).toBe(0);
    expect(out.stdout).toContain('Dry run (nothing is staged or sent)');
    expect(out.stdout).toMatch(/would send/);
    expect(out.stdout).toMatch(/missing-time: "properties\.time" is missing/);
    expect(out.stdout).toContain('Nothing was staged or sent');
  });
});

describe('sync and replay', () => {
  it('should export and forward a range, then replay one window, saying that it re-sends on purpose', async () => {
    // Prepare
    const { s, cli } = await setup();
    // Act 1: sync a range
    const synced = await cli(['sync', '--json', '--from', range.from, '--to', range.to]);
    // Assess 1
    expect(synced.code).toBe(0);
    const run = JSON.parse(synced.stdout) as {
      export: { windows: Array<{ id: string; status: string; events: number; quarantined: number }> };
      forward: Array<{ window: string; accepted: number; rejected: number; complete: boolean }>;
      forwardFailures: string[];
    };
    expect(run.forwardFailures).toEqual([]);
    const committed = run.export.windows.filter((w) => w.status === 'committed');
    expect(committed.length).toBeGreaterThan(0);
    const accepted = run.forward.reduce((n, f) => n + f.accepted, 0);
    expect(accepted).toBeGreaterThan(500);
    expect(s.aep.acceptedIds()).toHaveLength(accepted);
    expect(run.forward.reduce((n, f) => n + f.accepted + f.rejected, 0)).toBe(
      committed.reduce((n, w) => n + w.events, 0),
    );
    // Progress went to stderr (stdout is the JSON); secrets appear nowhere.
    expect(synced.stderr).toMatch(/exported .* events/);
    for (const secret of Object.values(s.secrets)) expect(synced.stdout + synced.stderr).not.toContain(secret);

    // Act 2: replay the first window (real clock: each replay is its own run)
    const target = run.forward[0]!;
    const before = s.aep.acceptedIds().length;
    const replayed = await cli(
      ['replay', '--window', target.window],
      {},
      { cwd: await mkdtemp(path.join(tmpdir(), 'cli-replay-')) },
    );

    // Assess 2: exactly that window's accepted records were sent again, and the output says so
    expect(replayed.code).toBe(0);
    expect(s.aep.acceptedIds().length - before).toBe(target.accepted);
    expect(replayed.stdout).toContain(`REPLAY of window ${target.window}`);
    expect(replayed.stdout).toMatch(/re-sends every record of the window ON PURPOSE/);
    expect(replayed.stdout).toMatch(/data lake does not deduplicate/);
    expect(replayed.stdout).toContain(`re-sent: ${target.accepted.toLocaleString('en-US')} accepted`);
  });

  it("should show the handlers' JSON logs with --verbose, and never a secret", async () => {
    const { s, cli } = await setup(300);
    const out = await cli(['sync', '--verbose', '--from', range.from, '--to', range.to]);
    expect(out.code).toBe(0);
    const records = out.stderr
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as { level: string; message: string });
    expect(records.map((r) => r.message)).toEqual(
      expect.arrayContaining(['export invoked', 'window exported', 'window forwarded']),
    );
    for (const secret of Object.values(s.secrets)) expect(out.stdout + out.stderr).not.toContain(secret);
  });

  it('should stage and commit without forwarding with --export-only', async () => {
    const { s, cli } = await setup(500);
    const out = await cli(['sync', '--export-only', '--json', '--from', range.from, '--to', range.to]);
    expect(out.code).toBe(0);
    const windows = (JSON.parse(out.stdout) as { export: { windows: Array<{ status: string; manifestKey: string }> } })
      .export.windows;
    expect(windows.length).toBeGreaterThan(0);
    const keys = await listKeys(s.s3.client, s.bucket, '');
    for (const w of windows) expect(keys).toContain(w.manifestKey);
    expect(keys.filter((k) => k.startsWith('delivery/'))).toEqual([]);
    expect(s.aep.acceptedIds()).toHaveLength(0);
  });

  it('should refuse to replay a window that is not committed and list the committed ones', async () => {
    const { cli } = await setup(500);
    const synced = await cli(['sync', '--from', range.from, '--to', range.to]);
    expect(synced.code).toBe(0);
    const out = await cli(['replay', '--window', '20200101T000000Z_20200101T010000Z']);
    expect(out.code).toBe(1);
    expect(out.stderr).toContain('is not committed');
    expect(out.stderr).toMatch(/Committed windows \(processing-time\)/);
  });

  it('should export the previous window with catch-up when no range is given, and nothing the second time', async () => {
    const { s, cli } = await setup(1000);
    const first = await cli(['sync']);
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/scheduled run at .*: the previous processing-time window/);
    expect(first.stdout).toMatch(/total \(1 window\)/);
    const acceptedOnce = s.aep.acceptedIds().length;
    expect(acceptedOnce).toBeGreaterThan(0);
    const second = await cli(['sync']);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain('Nothing to export');
    expect(s.aep.acceptedIds()).toHaveLength(acceptedOnce);
  });
});

describe('sync --plan', () => {
  const DAY = 86_400_000;
  /** The last three settled UTC days (event time): whole days up to the start of today. */
  const today = Math.floor((NOW - 30 * 60_000) / DAY) * DAY;
  const days = { from: new Date(today - 3 * DAY).toISOString(), to: new Date(today).toISOString() };
  const plan = ['sync', '--plan', '--mode', 'event-time', '--from', days.from, '--to', days.to];

  it('should print the windows and costs, exporting nothing, the rate unknown before any commit', async () => {
    const { s, cli } = await setup(500);

    const out = await cli(plan);

    expect(out.code).toBe(0);
    expect(out.stdout).toContain('Plan (nothing is exported)');
    // The first day's first hour is a probe (no rate known): the rest of that day, then whole days
    const probe = `${compact(today - 3 * DAY)}_${compact(today - 3 * DAY + H)}`;
    expect(out.stdout).toContain(`${probe} (probe)`);
    expect(out.stdout).toMatch(/Probe: no rate is known yet, so the first window is a probe of at most 60 minutes/);
    expect(out.stdout).toMatch(/Windows: 4 of at most 1440 minutes, sized by no window of this project is committed/);
    expect(out.stdout).toMatch(
      /Mixpanel queries: 4 \(one per window, retries extra\): 6 min of query budget at EXPORT_QUERIES_PER_HOUR=45/,
    );
    expect(out.stdout).toMatch(
      /Expected events: unknown \(assumed at most MAX_EVENTS_PER_EXPORT per window, 4,000,000 in all/,
    );
    expect(out.stdout).toMatch(/Forward time at Platform's limit of 10,000 messages\/s \(streaming\): at most 7 min/);
    // Nothing asked of Mixpanel, nothing written
    expect(s.mixpanel.requests).toHaveLength(0);
    expect(await listKeys(s.s3.client, s.bucket, '')).toEqual([]);
  });

  it('should size the windows from the rate a committed window showed, and say what they cost', async () => {
    // Prepare: a committed processing-time range gives the project's rate (~8 events a minute)
    const { s, cli } = await setup(3000);
    expect((await cli(['sync', '--export-only', '--from', range.from, '--to', range.to])).code).toBe(0);
    const queried = s.mixpanel.requests.length;

    // Act: a ceiling of 10,000 events per query (a day holds ~12,000 at that rate)
    const out = await cli([...plan, '--json'], { MAX_EVENTS_PER_EXPORT: '10000', AEP_SINK: 'batch' });
    const human = await cli(plan, { MAX_EVENTS_PER_EXPORT: '10000' });

    // Assess: half days, as the export would plan them; the expected events follow the rate
    expect(out.code).toBe(0);
    const p = (JSON.parse(out.stdout) as { plan: Record<string, unknown> & { windows: Array<{ id: string }> } }).plan;
    expect(p.spanMinutes).toBe(720);
    expect(p.windows).toHaveLength(6);
    expect(p.windows[1]!.id).toBe(`${compact(today - 2.5 * DAY)}_${compact(today - 2 * DAY)}`);
    expect(p.queries).toBe(6);
    expect(p.budgetHours).toBeCloseTo(6 / 45);
    expect(p.expectedEvents).toBeCloseTo((p.eventsPerMinute as number) * 3 * 1440, -1);
    expect(p.sink).toBe('batch');
    expect(human.stdout).toMatch(
      /sized by the observed rate of [\d,]+ events a minute under MAX_EVENTS_PER_EXPORT=10,000/,
    );
    expect(human.stdout).toMatch(/Expected events: [\d,]+ \(the observed rate × the range\)/);
    expect(s.mixpanel.requests).toHaveLength(queried);
  });

  it('should refuse --plan without a range', async () => {
    const { cli } = await setup(100);
    const out = await cli(['sync', '--plan']);
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(/--plan needs --from and --to/);
  });
});

/** Compact UTC, as in window ids. */
const compact = (ms: number): string =>
  new Date(ms)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d{3}Z$/, 'Z');

describe('error messages', () => {
  it('should name MIXPANEL_API_BASE_URL and its URL when Mixpanel cannot be reached', async () => {
    const { cli } = await setup(10);
    const port = await closedPort();
    const out = await cli(['sync', '--from', range.from, '--to', range.to], {
      MIXPANEL_API_BASE_URL: `http://127.0.0.1:${port}`,
    });
    expect(out.code).toBe(1);
    expect(out.stderr).toContain(`cannot reach Mixpanel (Raw Event Export API) at http://127.0.0.1:${port}`);
    expect(out.stderr).toContain('ECONNREFUSED');
    expect(out.stderr).toContain('set by MIXPANEL_API_BASE_URL');
  });

  it('should name AWS_ENDPOINT_URL_S3 when S3 cannot be reached', async () => {
    const { cli } = await setup(10);
    const port = await closedPort();
    const out = await cli(['sync', '--from', range.from, '--to', range.to], {
      AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${port}`,
    });
    expect(out.code).toBe(1);
    expect(out.stderr).toContain(`cannot reach S3 at http://127.0.0.1:${port}`);
    expect(out.stderr).toContain('set by AWS_ENDPOINT_URL_S3');
  });

  it('should name AEP_IMS_URL when Adobe IMS cannot be reached, and finish the window later with forward', async () => {
    // Prepare
    const { s, cli } = await setup(200);
    const port = await closedPort();
    // Act: the export commits, the forward cannot get a token
    const out = await cli(['sync', '--json', '--from', range.from, '--to', range.to], {
      AEP_IMS_URL: `http://127.0.0.1:${port}/ims/token/v3`,
    });
    // Assess
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(/window\(s\) were not forwarded completely/);
    expect(out.stderr).toContain(`cannot reach Adobe IMS (token endpoint) at http://127.0.0.1:${port}`);
    expect(out.stderr).toContain('set by AEP_IMS_URL');
    const windows = (JSON.parse(out.stdout) as { export: { windows: Array<{ id: string; events: number }> } }).export
      .windows;
    expect(s.aep.acceptedIds()).toHaveLength(0);
    // Act: with IMS back, `forward` finishes each window; a second forward sends nothing again
    for (const w of windows) {
      expect(out.stderr).toContain(`npm run cli -- forward --window ${w.id}`);
      const done = await cli(['forward', '--window', w.id]);
      expect(done.code).toBe(0);
      expect(done.stdout).toMatch(/forwarded: [\d,]+ accepted/);
    }
    const accepted = s.aep.acceptedIds().length;
    expect(accepted).toBeGreaterThan(0);
    const again = await cli(['forward', '--window', windows[0]!.id]);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/part\(s\) skipped \(delivered before\)/);
    expect(s.aep.acceptedIds()).toHaveLength(accepted);
  });

  it("should pass on Mixpanel's refusal and list the windows committed before it, to forward later", async () => {
    // Prepare: a range across midnight; the first query goes through, the second is refused (402)
    const { s, cli } = await setup(300);
    s.mixpanel.injectFault({ kind: 'slow', delayMsPerEvents: 0, everyEvents: 1_000_000 });
    s.mixpanel.injectFault({
      kind: 'status',
      status: 402,
      body: JSON.stringify({ error: 'Your plan does not allow API calls.' }),
    });
    const dayStart = Math.floor((NOW - 2 * H) / (24 * H)) * 24 * H;
    // Act
    const out = await cli([
      'sync',
      '--from',
      new Date(dayStart - 2 * H).toISOString(),
      '--to',
      new Date(NOW - 2 * H).toISOString(),
    ]);
    // Assess
    expect(out.code).toBe(1);
    expect(out.stderr).toContain("the project's plan does not include the Raw Event Export API");
    expect(out.stderr).toContain('1 window(s) were committed before the failure but not forwarded');
    // The first window is the probe hour (no rate known yet); the query after it is refused.
    const first = `${new Date(dayStart - 2 * H).toISOString().replace(/[-:]|\.\d+/g, '')}_${new Date(dayStart - H).toISOString().replace(/[-:]|\.\d+/g, '')}`;
    expect(out.stderr).toContain(`npm run cli -- forward --window ${first}`);
  });

  it('should list every missing variable with what it should be, and exit 2', async () => {
    const io = { stdout: new Buffered(), stderr: new Buffered() };
    const dir = await mkdtemp(path.join(tmpdir(), 'cli-empty-'));
    const code = await runCli(['sync'], { MIXPANEL_REGION: 'mars' }, io, { cwd: dir });
    await rm(dir, { recursive: true, force: true });
    expect(code).toBe(2);
    const err = io.stderr.text;
    expect(err).toContain('MIXPANEL_PROJECT_ID is required to export events (the numeric Mixpanel project id)');
    expect(err).toContain('STAGING_BUCKET is required to stage events (the S3 bucket name)');
    expect(err).toContain('AEP_DATASET_ID is required to forward events');
    expect(err).toContain('MIXPANEL_REGION: MIXPANEL_REGION must be us, eu or in (got "mars")');
    expect(err).toMatch(/MIXPANEL_SECRET_ID is required .*MIXPANEL_USERNAME and MIXPANEL_SECRET/);
  });
});
