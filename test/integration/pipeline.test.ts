/**
 * The whole pipeline on loopback: Mixpanel emulator → export handler → s3rver → forward handler → AEP emulator.
 * Asserts the invariants of docs/architecture.md after each scenario.
 */
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '#emulators/local-stack';
import { generateDataset } from '#emulators/mixpanel/generator';
import { createExportHandler } from '#export/handler';
import { createForwardHandler } from '#forward/handler';
import { checkInvariants, listKeys } from '#cli/invariants';
import { runPipeline, sqsEventFor } from '#cli/pipeline';
import { createExportDeps } from '#export/deps';
import { createForwardDeps } from '#forward/deps';
import type { Log } from '#common/log';
import type { Manifest } from '#staging/manifest';
import { getBytes, getJson } from '#staging/s3';
import { StagingLayout } from '#staging/layout';

const H = 3_600_000;
const quiet: Log = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
/** A fixed "now" in the past of the real clock (Platform refuses future timestamps). */
const NOW = Date.parse('2026-11-20T12:10:00Z');
const DATA_START = NOW - 6 * H;

let stack: LocalStack | undefined;
afterEach(async () => {
  await stack?.close();
  stack = undefined;
});

async function setup(opts: { events?: number; sink?: 'streaming' | 'batch'; env?: Record<string, string> } = {}) {
  // One clock for the emulator and the connector; waiting advances it (no real sleeping in tests).
  let clock = NOW;
  const now = () => clock;
  const s = await startLocalStack({
    dataset: { seed: 7, count: opts.events ?? 3000, start: DATA_START, end: NOW - 30 * 60_000 },
    ...(opts.sink ? { sink: opts.sink } : {}),
    now,
    env: { SETTLE_MINUTES: '30', ...opts.env },
  });
  stack = s;
  const slept: number[] = [];
  const sleep = async (ms: number) => {
    slept.push(ms);
    clock += ms;
  };
  const exportDeps = createExportDeps(s.exportConfig, { s3: s.s3.client, now, sleep, log: quiet });
  const forwardDeps = createForwardDeps(s.forwardConfig, { s3: s.s3.client, sleep, log: quiet });
  const exportHandler = createExportHandler(() => exportDeps);
  const forwardHandler = createForwardHandler(() => forwardDeps);
  const layout = new StagingLayout('');
  const invariants = (requireForwarded = true) =>
    checkInvariants({
      s3: s.s3.client,
      bucket: s.bucket,
      layout,
      projectId: s.exportConfig.mixpanel!.projectId,
      acceptedIds: s.aep.acceptedIds(),
      requireForwarded,
    });
  const clockAdvance = (ms: number) => void (clock += ms);
  /** The checkpoint knows a quiet rate (an earlier window was committed): runs plan no probe and coalesce to days. */
  const knownRate = async (): Promise<void> => {
    const checkpoint = await exportDeps.state.read();
    await exportDeps.state.write({
      ...checkpoint,
      'processing-time': { ...checkpoint['processing-time'], eventsPerMinute: 1 },
    });
  };
  return { s, slept, exportHandler, forwardHandler, layout, invariants, clockAdvance, knownRate };
}

/** The lines of a committed window, read back from staging. */
async function stagedLines(s: LocalStack, manifestKey: string): Promise<string[]> {
  const m = (await getJson<Manifest>(s.s3.client, s.bucket, manifestKey))!;
  const lines: string[] = [];
  for (const p of m.parts)
    lines.push(
      ...gunzipSync((await getBytes(s.s3.client, s.bucket, p.key))!)
        .toString('utf8')
        .split('\n')
        .filter(Boolean),
    );
  return lines;
}

describe('export path', () => {
  it('should stage exactly the events whose processing time is in the window, late ones included', async () => {
    // Prepare
    const { s, exportHandler } = await setup({ events: 4000 });
    // Act: a backfill of the last five hours of processing time
    const result = await exportHandler({
      from: new Date(NOW - 5 * H - 40 * 60_000).toISOString(),
      to: new Date(NOW - 70 * 60_000).toISOString(),
      mode: 'processing-time',
    });
    // Assess: every generated event processed in a window is in that window, once per line Mixpanel returned
    expect(result.windows.length).toBeGreaterThan(0);
    for (const w of result.windows) {
      expect(w.status).toBe('committed');
      const from = Date.parse(w.from);
      const to = Date.parse(w.to);
      const expected = [...generateDataset({ seed: 7, count: 4000, start: DATA_START, end: NOW - 30 * 60_000 })]
        .filter(
          (e) =>
            (e.properties.mp_processing_time_ms as number) >= from &&
            (e.properties.mp_processing_time_ms as number) < to,
        )
        .map((e) => JSON.stringify(e))
        .sort();
      const staged = (await stagedLines(s, w.manifestKey!)).sort();
      expect(staged).toEqual(expected);
      expect(w.events).toBe(expected.length);
    }
    // Late events (event time hours before processing) are in the window of their processing time.
    const all = await Promise.all(result.windows.map((w) => stagedLines(s, w.manifestKey!)));
    const late = all
      .flat()
      .map((l) => JSON.parse(l))
      .filter((e) => e.properties.mp_processing_time_ms - e.properties.time * 1000 > H);
    expect(late.length).toBeGreaterThan(0);
  });

  it('should skip a committed window, and a forced re-run should stage the same event set', async () => {
    const { s, exportHandler, knownRate } = await setup();
    await knownRate();
    const range = { from: new Date(NOW - 3 * H).toISOString(), to: new Date(NOW - 2 * H).toISOString() };
    const first = await exportHandler(range);
    const again = await exportHandler(range);
    const forced = await exportHandler({ ...range, force: true });
    expect(first.windows.map((w) => w.status)).toEqual(['committed']);
    expect(again.windows.map((w) => w.status)).toEqual(['skipped']);
    expect(forced.windows.map((w) => w.status)).toEqual(['committed']);
    const before = (await stagedLines(s, first.windows[0]!.manifestKey!)).sort();
    const after = (await stagedLines(s, forced.windows[0]!.manifestKey!)).sort();
    expect(after).toEqual(before);
  });

  it('should commit nothing and keep the checkpoint when the export is cut short every time', async () => {
    const { s, exportHandler, layout } = await setup();
    await exportHandler({ source: 'schedule', scheduledTime: new Date(NOW - H).toISOString() });
    const checkpointBefore = await getJson(s.s3.client, s.bucket, layout.checkpointKey('3141592'));
    // Three attempts per window, each truncated differently.
    s.mixpanel.injectFault({ kind: 'terminated-early', afterEvents: 20 });
    s.mixpanel.injectFault({ kind: 'reset', afterEvents: 30 });
    s.mixpanel.injectFault({ kind: 'truncate-gzip', afterEvents: 40 });
    await expect(exportHandler({ source: 'schedule', scheduledTime: new Date(NOW).toISOString() })).rejects.toThrow(
      /terminated early|broke|reset|closed/,
    );
    const manifests = (await listKeys(s.s3.client, s.bucket, 'staging/')).filter((k) => k.endsWith('manifest.json'));
    expect(manifests).toHaveLength(1);
    expect(await getJson(s.s3.client, s.bucket, layout.checkpointKey('3141592'))).toMatchObject({
      'processing-time': (checkpointBefore as Record<string, unknown>)['processing-time'] as object,
    });
    // No part of a failed attempt is left behind under the window.
    const window2 = (await listKeys(s.s3.client, s.bucket, 'staging/')).filter((k) =>
      k.includes('window=20261120T100000Z_'),
    );
    expect(window2).toEqual([]);
  });

  it('should retry a truncated export and commit the complete window', async () => {
    const { s, exportHandler } = await setup();
    s.mixpanel.injectFault({ kind: 'truncate-gzip', afterEvents: 50 });
    const result = await exportHandler({ source: 'schedule', scheduledTime: new Date(NOW).toISOString() });
    expect(result.windows[0]).toMatchObject({ status: 'committed', attempts: 2 });
  });

  it('should honour Retry-After on 429 and 503', async () => {
    const { s, exportHandler, slept } = await setup();
    s.mixpanel.injectFault({ kind: 'status', status: 429, retryAfterSeconds: 7 });
    s.mixpanel.injectFault({ kind: 'status', status: 503, retryAfterSeconds: 3 });
    const result = await exportHandler({ source: 'schedule', scheduledTime: new Date(NOW).toISOString() });
    expect(result.windows[0]!.status).toBe('committed');
    expect(slept.filter((ms) => ms >= 7000)).toHaveLength(1);
    expect(slept.filter((ms) => ms >= 3000 && ms < 7000).length).toBeGreaterThanOrEqual(1);
  });

  it('should fail fast with an actionable message on bad credentials and on a missing plan', async () => {
    const { s, exportHandler } = await setup();
    s.mixpanel.injectFault({
      kind: 'status',
      status: 402,
      body: JSON.stringify({ error: 'Your plan does not allow API calls.' }),
    });
    await expect(exportHandler({ source: 'schedule', scheduledTime: new Date(NOW).toISOString() })).rejects.toThrow(
      /plan does not include the Raw Event Export API/,
    );
    s.mixpanel.injectFault({ kind: 'status', status: 403 });
    s.mixpanel.injectFault({ kind: 'status', status: 403 });
    await expect(exportHandler({ source: 'schedule', scheduledTime: new Date(NOW).toISOString() })).rejects.toThrow(
      /service account .* member of project 3141592/,
    );
  });

  it('should explain the timezone settings when Mixpanel says to_date is later than today', async () => {
    const { s, exportHandler } = await setup();
    s.mixpanel.injectFault({
      kind: 'status',
      status: 400,
      body: JSON.stringify({ request: '/api/2.0/export', error: 'to_date cannot be later than today' }),
    });
    const error = await exportHandler({ source: 'schedule', scheduledTime: new Date(NOW).toISOString() }).catch(
      (e: Error) => e,
    );
    expect((error as Error).message).toMatch(/computed dates in UTC/);
    expect((error as Error).message).toMatch(/MIXPANEL_LEGACY_LOCAL_TIME=true and MIXPANEL_PROJECT_TIMEZONE/);
  });

  it('should quarantine lines that are not events, with reasons, and count them in the manifest', async () => {
    const { s, exportHandler } = await setup();
    const day = new Date(NOW).toISOString().slice(0, 10);
    s.mixpanel.addRawLines('3141592', [
      { line: 'not json at all', date: day },
      { line: '[1,2,3]', date: day },
      { line: '{"properties":{"time":1}}', date: day },
      { line: '{"event":"x"}', date: day },
    ]);
    const result = await exportHandler({ source: 'schedule', scheduledTime: new Date(NOW).toISOString() });
    const w = result.windows[0]!;
    expect(w.quarantined).toBe(4);
    const m = (await getJson<Manifest>(s.s3.client, s.bucket, w.manifestKey!))!;
    expect(m.quarantined).toBe(4);
    expect(m.lines).toBe(m.events + 4);
    const kept = gunzipSync((await getBytes(s.s3.client, s.bucket, m.quarantineKey!))!)
      .toString('utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    expect(kept.map((k) => k.reason).sort()).toEqual([
      'missing-event',
      'missing-properties',
      'not-an-object',
      'not-json',
    ]);
    expect(kept.find((k) => k.reason === 'not-json')!.line).toBe('not json at all');
  });

  it('should continue a long manual range in later scheduled runs without an operator', async () => {
    // Prepare: at most 2 windows per run, hourly grid, spans of one hour (MAX span follows the observed rate)
    const { s, exportHandler, layout, knownRate } = await setup({ env: { MAX_WINDOWS_PER_RUN: '2' } });
    await knownRate();
    // Act: a backfill over four calendar days (four day-aligned windows) only gets 2 windows in this run
    const manual = await exportHandler({ from: '2026-11-17T00:00:00Z', to: new Date(NOW - 70 * 60_000).toISOString() });
    // Assess: the rest is reported and kept as pending work
    expect(manual.windows.filter((w) => w.status === 'committed')).toHaveLength(manual.windows.length);
    const first = manual.windows.length;
    expect(manual.remaining?.reason).toBe('max-windows-per-run');
    const pending = (await getJson<Record<string, { pending: unknown[] }>>(
      s.s3.client,
      s.bucket,
      layout.checkpointKey('3141592'),
    ))!['processing-time']!.pending;
    expect(pending.length).toBe(manual.remaining!.windows);
    // Act: scheduled runs pick the pending windows up until nothing remains
    let runs = 0;
    let last = manual;
    while (last.remaining !== undefined && runs < 10) {
      last = await exportHandler({ source: 'schedule', scheduledTime: new Date(NOW).toISOString() });
      runs++;
    }
    // Assess: the whole range is committed, each hour exactly once
    expect(last.remaining).toBeUndefined();
    const cp = (await getJson<Record<string, { committed: [string, string][]; pending: unknown[] }>>(
      s.s3.client,
      s.bucket,
      layout.checkpointKey('3141592'),
    ))!['processing-time']!;
    expect(cp.pending).toEqual([]);
    expect(cp.committed).toEqual([['2026-11-17T00:00:00.000Z', new Date(NOW - 70 * 60_000).toISOString()]]);
    expect(first).toBe(2);
    expect(runs).toBe(1); // the scheduled run's own window is already covered; it finishes the 2 pending ones
  });

  it('should stop cleanly when the hourly query budget is used up and continue in the next hour', async () => {
    const { exportHandler, clockAdvance, knownRate } = await setup({
      env: { EXPORT_QUERIES_PER_HOUR: '2', MAX_WINDOWS_PER_RUN: '10' },
    });
    await knownRate();
    // Prepare: four day-aligned windows, a budget of two queries per hour
    const range = { from: '2026-11-17T00:00:00Z', to: new Date(NOW - 70 * 60_000).toISOString() };
    // Act
    const result = await exportHandler(range);
    // Assess: two windows committed, the rest reported as waiting for the budget (not an error)
    expect(result.windows.filter((w) => w.status === 'committed')).toHaveLength(2);
    expect(result.remaining).toMatchObject({ windows: 2, reason: 'query-budget' });
    // An hour later the same request skips what is done and finishes the rest.
    clockAdvance(H);
    const later = await exportHandler(range);
    expect(later.windows.map((w) => w.status)).toEqual(['skipped', 'skipped', 'committed', 'committed']);
  });

  it('should refuse a bad manual payload before writing anything', async () => {
    const { s, exportHandler } = await setup();
    await expect(exportHandler({ from: '2026-11-20T00:00:00Z', to: '2026-11-19T00:00:00Z' })).rejects.toThrow(
      /"from" must be before "to"/,
    );
    expect(await listKeys(s.s3.client, s.bucket, '')).toEqual([]);
  });
});

describe('forward path (export → forward)', () => {
  it.each(['streaming', 'batch'] as const)(
    'should deliver every staged event once through the %s sink',
    async (sink) => {
      // Prepare
      const { s, exportHandler, forwardHandler, invariants } = await setup({ sink, events: 3000 });
      // Act
      const run = await runPipeline(
        { from: new Date(NOW - 5 * H).toISOString(), to: new Date(NOW - 70 * 60_000).toISOString() },
        exportHandler,
        forwardHandler,
        s.bucket,
      );
      // Assess
      expect(run.forwardFailures).toEqual([]);
      const report = await invariants();
      expect(report.problems).toEqual([]);
      const exported = report.windows.reduce((n, w) => n + w.exported, 0);
      const accepted = report.windows.reduce((n, w) => n + w.accepted, 0);
      const rejected = report.windows.reduce((n, w) => n + w.rejected, 0);
      expect(exported).toBeGreaterThan(1000);
      expect(accepted + rejected).toBe(exported);
      expect(rejected).toBeGreaterThan(0); // the generator's exact duplicates and retries come back as `duplicate`
      expect(new Set(s.aep.acceptedIds()).size).toBe(accepted);
      // Streaming requests stay within DCS's 1 MB; batch files within the 256 MB upload limit.
      expect(s.aep.stats.maxRequestBytes).toBeLessThanOrEqual(sink === 'streaming' ? 1_000_000 : 256_000_000);
    },
  );

  it('should deliver nothing twice on SQS redelivery and on re-invoking the export for a committed window', async () => {
    const { s, exportHandler, forwardHandler, invariants } = await setup();
    const range = { from: new Date(NOW - 3 * H).toISOString(), to: new Date(NOW - 2 * H).toISOString() };
    const run = await runPipeline(range, exportHandler, forwardHandler, s.bucket);
    const key = run.export.windows[0]!.manifestKey!;
    const acceptedOnce = s.aep.acceptedIds().length;
    // SQS redelivers the same notification twice, and an operator re-invokes the export.
    await forwardHandler(sqsEventFor(s.bucket, key));
    await forwardHandler(sqsEventFor(s.bucket, key));
    const again = await runPipeline(range, exportHandler, forwardHandler, s.bucket);
    expect(again.export.windows[0]!.status).toBe('skipped');
    expect(s.aep.acceptedIds()).toHaveLength(acceptedOnce);
    expect((await invariants()).problems).toEqual([]);
  });

  it('should send only new ids when a committed window is force re-exported', async () => {
    const { s, exportHandler, forwardHandler, invariants, knownRate } = await setup();
    await knownRate();
    const range = { from: new Date(NOW - 3 * H).toISOString(), to: new Date(NOW - 2 * H).toISOString() };
    await runPipeline(range, exportHandler, forwardHandler, s.bucket);
    const before = s.aep.acceptedIds().length;
    const forced = await runPipeline({ ...range, force: true }, exportHandler, forwardHandler, s.bucket);
    expect(forced.export.windows[0]!.status).toBe('committed');
    expect(s.aep.acceptedIds()).toHaveLength(before);
    const report = await invariants();
    expect(report.problems).toEqual([]);
    const latest = report.windows[0]!;
    expect(latest.accepted).toBe(0);
    expect(latest.rejected).toBe(latest.exported);
  });

  it('should resume after a timeout mid-window without sending an id twice', async () => {
    const { s, exportHandler, invariants } = await setup({ events: 3000 });
    const exported = await exportHandler({
      from: new Date(NOW - 5 * H).toISOString(),
      to: new Date(NOW - 70 * 60_000).toISOString(),
    });
    const key = exported.windows[0]!.manifestKey!;
    // Prepare: a forwarder whose deadline passes after the first few chunks
    let calls = 0;
    let clock = Date.now();
    const base = await createForwardDeps(s.forwardConfig, {
      s3: s.s3.client,
      log: quiet,
      now: () => clock,
      sleep: async () => undefined,
    });
    const slow = createForwardHandler(async () => ({
      ...base,
      chunkRecords: 200,
      partConcurrency: 1,
      sink:
        base.sink.kind === 'streaming'
          ? {
              kind: 'streaming',
              send: (r, o) => {
                clock += ++calls > 2 ? 3_600_000 : 0;
                return base.sink.kind === 'streaming' ? base.sink.send(r, o) : Promise.reject(new Error('x'));
              },
            }
          : base.sink,
    }));
    // Act: first delivery runs out of time; SQS redelivers; the second completes
    const first = await slow(sqsEventFor(s.bucket, key), { getRemainingTimeInMillis: () => 3_600_000 });
    expect(first.batchItemFailures).toHaveLength(1);
    const mid = s.aep.acceptedIds().length;
    expect(mid).toBeGreaterThan(0);
    const fresh = createForwardHandler(async () => base);
    const second = await fresh(sqsEventFor(s.bucket, key));
    // Assess
    expect(second.batchItemFailures).toEqual([]);
    expect(s.aep.acceptedIds().length).toBeGreaterThan(mid);
    const report = await invariants(false);
    expect(report.duplicatesAtPlatform).toBe(0);
    expect(report.windows.find((w) => w.window === exported.windows[0]!.id)).toMatchObject({ forwarded: true });
    expect(report.problems.filter((p) => !p.includes('only'))).toEqual([]);
  });

  it('should not send a Mixpanel retry twice when its two copies land in neighbouring windows', async () => {
    // Prepare: one event, and its same-tuple retry processed 10 minutes later, across the 09:00 window boundary
    const { s, exportHandler, forwardHandler, invariants } = await setup({ events: 200 });
    const at = Date.parse('2026-11-20T09:00:00Z');
    const event = (processedAt: number) => ({
      event: 'Order Completed',
      properties: {
        time: Math.floor((at - 120_000) / 1000),
        distinct_id: 'u-42',
        $insert_id: 'retry-across-windows',
        mp_processing_time_ms: processedAt,
      },
    });
    s.mixpanel.addEvents('3141592', [event(at - 5 * 60_000), event(at + 5 * 60_000)]);
    // Act: two scheduled runs, hour by hour, each forwarded as it commits
    await runPipeline(
      { source: 'schedule', scheduledTime: '2026-11-20T09:31:00Z' },
      exportHandler,
      forwardHandler,
      s.bucket,
    );
    await runPipeline(
      { source: 'schedule', scheduledTime: '2026-11-20T10:31:00Z' },
      exportHandler,
      forwardHandler,
      s.bucket,
    );
    // Assess: the second copy is a `duplicate` rejection, Platform holds the id once
    const report = await invariants();
    expect(report.windows.map((w) => w.window).sort()).toEqual([
      '20261120T080000Z_20261120T090000Z',
      '20261120T090000Z_20261120T100000Z',
    ]);
    expect(report.problems).toEqual([]);
    expect(report.duplicatesAtPlatform).toBe(0);
    const rejected = await listKeys(
      s.s3.client,
      s.bucket,
      'rejected/project=3141592/mode=processing-time/window=20261120T090000Z_20261120T100000Z/',
    );
    const lines = (
      await Promise.all(
        rejected.map(async (k) => gunzipSync((await getBytes(s.s3.client, s.bucket, k))!).toString('utf8')),
      )
    ).join('');
    expect(lines).toContain('retry-across-windows');
    expect(lines).toContain('"reason":"duplicate"');
  });

  it("should retry partial 207 failures and keep permanent rejections with Adobe's reason", async () => {
    const { s, exportHandler, forwardHandler, invariants } = await setup();
    s.aep.injectFault({ kind: 'partial', everyNth: 5, statusCode: 503 });
    s.aep.injectFault({ kind: 'partial', everyNth: 7, statusCode: 400, message: 'emulated schema violation' });
    await runPipeline(
      { source: 'schedule', scheduledTime: new Date(NOW).toISOString() },
      exportHandler,
      forwardHandler,
      s.bucket,
    );
    const report = await invariants();
    expect(report.problems).toEqual([]);
    expect(report.windows[0]!.retried).toBeGreaterThan(0);
    const rejected = (await listKeys(s.s3.client, s.bucket, 'rejected/'))[0]!;
    const lines = gunzipSync((await getBytes(s.s3.client, s.bucket, rejected))!)
      .toString('utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    expect(lines.some((l) => l.reason === 'aep-rejected' && /emulated schema violation/.test(l.detail))).toBe(true);
  });

  it('should acknowledge the S3 test event and report malformed messages for the DLQ', async () => {
    const { forwardHandler } = await setup();
    const reply = await forwardHandler({
      Records: [
        { messageId: 'a', body: JSON.stringify({ Service: 'Amazon S3', Event: 's3:TestEvent', Bucket: 'x' }) },
        { messageId: 'b', body: 'garbage' },
        {
          messageId: 'c',
          body: JSON.stringify({
            Records: [
              {
                eventName: 'ObjectCreated:Put',
                s3: {
                  bucket: { name: 'other' },
                  object: { key: 'staging/project=1/mode=event-time/window=x/manifest.json' },
                },
              },
            ],
          }),
        },
      ],
    } as never);
    expect(reply.batchItemFailures.map((f) => f.itemIdentifier)).toEqual(['b', 'c']);
  });
});
