/**
 * Reliability, export side: Mixpanel and S3 faults, Lambda deadlines, crashes and duplicate schedule deliveries,
 * each followed by the runs that would follow in production (the next schedule, SQS → forward) and the invariants.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { listKeys } from '#cli/invariants';
import { getJson } from '#staging/s3';
import {
  EXPORT_TIMEOUT_MS,
  H,
  LAST_WINDOW,
  MIN,
  NOW,
  PROJECT_ID,
  type Rig,
  assertInvariants,
  expectActionable,
  failure,
  schedule,
  startRig,
} from './harness.ts';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

const manifests = async (r: Rig): Promise<string[]> =>
  (await listKeys(r.direct, r.bucket, 'staging/')).filter((k) => k.endsWith('manifest.json'));
const checkpointTo = async (r: Rig): Promise<string | undefined> =>
  (await getJson<Record<string, { to?: string }>>(r.direct, r.bucket, r.layout.checkpointKey(PROJECT_ID)))?.[
    'processing-time'
  ]?.to;

/** The next scheduled run (an hour later) and the forwarder: what production does after a failed run. */
async function recover(r: Rig): Promise<void> {
  r.advance(H);
  const next = await r.exportHandler(schedule(r.now()), r.context(EXPORT_TIMEOUT_MS));
  expect(next.windows.every((w) => w.status === 'committed')).toBe(true);
  await r.drainQueue();
}

describe('Mixpanel faults', () => {
  it.each([
    { name: '429 with Retry-After', status: 429, retryAfterSeconds: 40 },
    { name: '429 without Retry-After', status: 429 },
    { name: '500', status: 500 },
    { name: '502', status: 502 },
    { name: '503 with Retry-After', status: 503, retryAfterSeconds: 5 },
  ])('should retry a $name, commit the window once and forward it', async ({ status, retryAfterSeconds }) => {
    rig = await startRig();
    rig.stack.mixpanel.injectFault({
      kind: 'status',
      status,
      ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}),
    });
    rig.stack.mixpanel.injectFault({
      kind: 'status',
      status,
      ...(retryAfterSeconds !== undefined ? { retryAfterSeconds } : {}),
    });
    const result = await rig.exportHandler(schedule(), rig.context(EXPORT_TIMEOUT_MS));
    expect(result.windows.map((w) => w.status)).toEqual(['committed']);
    expect(rig.stack.mixpanel.requests.filter((r) => r.status === status)).toHaveLength(2);
    // Retry-After is honoured (never retried sooner); without it, a jittered backoff.
    if (retryAfterSeconds !== undefined)
      expect(rig.slept.filter((ms) => ms >= retryAfterSeconds * 1000)).toHaveLength(2);
    expect(rig.logs.filter((l) => l.message === 'retrying Mixpanel export')).toHaveLength(2);
    await rig.drainQueue();
    await assertInvariants(rig, { minWindows: 1 });
  });

  it('should fail loudly after the retry budget, commit nothing, and let the next run catch up', async () => {
    rig = await startRig();
    for (let i = 0; i < 5; i++) rig.stack.mixpanel.injectFault({ kind: 'status', status: 503 });
    const error = await failure(rig.exportHandler(schedule(), rig.context(EXPORT_TIMEOUT_MS)));
    expectActionable(rig, error.message, /failed after 5 attempt.*503/);
    expect(await manifests(rig)).toEqual([]);
    expect(await checkpointTo(rig)).toBeUndefined();
    await recover(rig);
    await assertInvariants(rig, { minWindows: 2 });
  });

  it.each([
    { kind: 'reset' as const, afterEvents: 100 },
    { kind: 'truncate-gzip' as const, afterEvents: 100 },
    { kind: 'terminated-early' as const, afterEvents: 100 },
  ])('should export the window again after a $kind mid-stream and commit it complete', async (fault) => {
    rig = await startRig();
    rig.stack.mixpanel.injectFault(fault);
    const result = await rig.exportHandler(schedule(), rig.context(EXPORT_TIMEOUT_MS));
    expect(result.windows[0]).toMatchObject({ status: 'committed', attempts: 2 });
    // The complete window: what a clean export returns.
    const served = rig.stack.mixpanel.requests.filter((r) => r.status === 200).map((r) => r.eventsServed);
    expect(served[0]).toBe(100);
    expect(result.windows[0]!.events + result.windows[0]!.quarantined).toBe(served[1]);
    expect(rig.logs.some((l) => l.message === 'incomplete export, exporting the window again')).toBe(true);
    // The cut-short attempt left nothing behind: only the committed run's part exists under the window.
    const { runId } = (await getJson<{ runId: string }>(rig.direct, rig.bucket, result.windows[0]!.manifestKey!))!;
    const keys = await listKeys(rig.direct, rig.bucket, 'staging/');
    expect(keys.filter((k) => k.includes('/run=') && !k.includes(`/run=${runId}/`))).toEqual([]);
    await rig.drainQueue();
    await assertInvariants(rig, { minWindows: 1 });
  });

  it('should fail after three cut-short attempts, commit nothing and keep the checkpoint', async () => {
    rig = await startRig();
    for (const kind of ['reset', 'truncate-gzip', 'terminated-early'] as const)
      rig.stack.mixpanel.injectFault({ kind, afterEvents: 10 });
    const error = await failure(rig.exportHandler(schedule(), rig.context(EXPORT_TIMEOUT_MS)));
    expectActionable(rig, error.message, /terminated early|broke|reset|closed/);
    expect(await manifests(rig)).toEqual([]);
    expect(await listKeys(rig.direct, rig.bucket, 'staging/')).toEqual([]);
    await recover(rig);
    await assertInvariants(rig, { minWindows: 2 });
  });

  it('should stop a window whose body is too slow for the Lambda deadline, commit nothing, and export it in the next run', async () => {
    rig = await startRig({ events: 3000 });
    rig.stack.mixpanel.injectFault({ kind: 'slow', delayMsPerEvents: 80, everyEvents: 10 });
    // The Lambda has 2 minutes left; each real millisecond of the slow body costs 100 ms of it (the whole body would
    // take over 200 s of it).
    const t0 = Date.now();
    const context = { getRemainingTimeInMillis: () => 120_000 - (Date.now() - t0) * 100 };
    const error = await failure(rig.exportHandler(schedule(), context));
    expectActionable(rig, error.message, /deadline/);
    // It stopped by itself, with time left to clean up, before the Lambda would have been killed.
    expect(Number(/\((-?\d+) s left\)/.exec(error.message)?.[1])).toBeGreaterThan(0);
    expect(await manifests(rig)).toEqual([]);
    expect(await listKeys(rig.direct, rig.bucket, 'staging/')).toEqual([]);
    expect(await checkpointTo(rig)).toBeUndefined();
    await recover(rig);
    await assertInvariants(rig, { minWindows: 2 });
  });

  it.each([
    { status: 401, faults: 2, expected: /rejected the credentials.*service account.*member of project 3141592/ },
    { status: 403, faults: 2, expected: /rejected the credentials.*service account.*member of project 3141592/ },
    { status: 402, faults: 1, expected: /plan does not include the Raw Event Export API/ },
  ])(
    'should fail fast on $status with an actionable message and write nothing',
    async ({ status, faults, expected }) => {
      rig = await startRig();
      for (let i = 0; i < faults; i++) rig.stack.mixpanel.injectFault({ kind: 'status', status });
      const error = await failure(rig.exportHandler(schedule(), rig.context(EXPORT_TIMEOUT_MS)));
      expectActionable(rig, error.message, expected);
      // 401/403: the secret is read again once (it may have been rotated), then the failure is final; 402 at once.
      expect(rig.stack.mixpanel.requests).toHaveLength(faults);
      expect(await manifests(rig)).toEqual([]);
      expect(await checkpointTo(rig)).toBeUndefined();
      await recover(rig);
      await assertInvariants(rig, { minWindows: 2 });
    },
  );
});

describe('S3 faults on the export', () => {
  it.each([
    { op: 'put' as const, key: /part-\d+\.jsonl\.gz$/, status: 503, what: 'SlowDown on a part' },
    { op: 'put' as const, key: /manifest\.json$/, status: 500, what: 'InternalError on the manifest' },
    { op: 'put' as const, key: /checkpoint\.json$/, status: 503, what: 'SlowDown on the checkpoint' },
    { op: 'get' as const, key: /checkpoint\.json$/, status: 500, what: 'InternalError reading the checkpoint' },
  ])('should ride out a transient $what (the SDK retries) and commit once', async ({ op, key, status }) => {
    rig = await startRig();
    rig.proxy.inject({ op, key, action: { kind: 'status', status }, times: 2 });
    const result = await rig.exportHandler(schedule(), rig.context(EXPORT_TIMEOUT_MS));
    expect(result.windows.map((w) => w.status)).toEqual(['committed']);
    expect(rig.proxy.requests.filter((r) => r.fault === 'status')).toHaveLength(2);
    await rig.drainQueue();
    await assertInvariants(rig, { minWindows: 1 });
  });

  it('should retry a multipart part upload that gets SlowDown and commit the big part intact', async () => {
    rig = await startRig({ events: 200 });
    // ~12 MB of incompressible lines: the gzipped part is over the 8 MiB multipart threshold.
    const day = new Date(NOW).toISOString().slice(0, 10);
    const filler = Array.from({ length: 110 }, (_, i) => ({
      line: JSON.stringify({
        event: 'Blob',
        properties: {
          time: Math.floor((NOW - 40 * MIN) / 1000),
          distinct_id: `u${i}`,
          $insert_id: `blob-${i}`,
          mp_processing_time_ms: NOW - 40 * MIN,
          blob: randomText(110_000),
        },
      }),
      date: day,
    }));
    rig.stack.mixpanel.addRawLines(PROJECT_ID, filler);
    rig.proxy.inject({ op: 'multipart-upload', action: { kind: 'status', status: 503 }, times: 2 });
    rig.proxy.inject({ op: 'multipart-complete', action: { kind: 'status', status: 500 } });
    const result = await rig.exportHandler(schedule(), rig.context(EXPORT_TIMEOUT_MS));
    expect(result.windows[0]!.status).toBe('committed');
    expect(
      rig.proxy.requests.filter((r) => r.op === 'multipart-upload' && r.status === 200).length,
    ).toBeGreaterThanOrEqual(2);
    expect(rig.proxy.requests.filter((r) => r.fault === 'status')).toHaveLength(3);
    await rig.drainQueue();
    await assertInvariants(rig, { minWindows: 1 });
  });

  it('should commit nothing when a part upload keeps failing, clean up the attempt, and recover in the next run', async () => {
    rig = await startRig();
    rig.proxy.inject({
      op: ['put', 'multipart-upload'],
      key: /part-\d+\.jsonl\.gz$/,
      action: { kind: 'status', status: 503 },
      times: 10,
    });
    const error = await failure(rig.exportHandler(schedule(), rig.context(EXPORT_TIMEOUT_MS)));
    expectActionable(rig, error.message, /S3|staging|SlowDown|reduce your request rate/i);
    expect(await manifests(rig)).toEqual([]);
    expect(await checkpointTo(rig)).toBeUndefined();
    rig.proxy.clearFaults();
    await recover(rig);
    await assertInvariants(rig, { minWindows: 2 });
  });
});

describe('crashes, deadlines and duplicate schedules', () => {
  it('should commit nothing when the process dies between the part uploads and the manifest', async () => {
    rig = await startRig();
    rig.proxy.inject({ op: 'put', key: /manifest\.json$/, action: { kind: 'crash' } });
    await failure(rig.exportHandler(schedule(), rig.context(EXPORT_TIMEOUT_MS)));
    await rig.proxy.revive();
    // The parts of the dead attempt are still there, but no manifest lists them: nothing is forwarded.
    expect((await listKeys(rig.direct, rig.bucket, 'staging/')).some((k) => k.endsWith('.jsonl.gz'))).toBe(true);
    expect(await manifests(rig)).toEqual([]);
    expect(await checkpointTo(rig)).toBeUndefined();
    await rig.coldStart();
    // The same schedule, retried by Lambda's async invocation: the window is exported again and committed once.
    const retried = await rig.exportHandler(schedule(), rig.context(EXPORT_TIMEOUT_MS));
    expect(retried.windows.map((w) => w.status)).toEqual(['committed']);
    await rig.drainQueue();
    await assertInvariants(rig, { minWindows: 1 });
  });

  it('should not lose or double a window when the process dies between the manifest and the checkpoint', async () => {
    rig = await startRig();
    rig.proxy.inject({ op: 'put', key: /checkpoint\.json$/, action: { kind: 'crash' } });
    await failure(rig.exportHandler(schedule(), rig.context(EXPORT_TIMEOUT_MS)));
    await rig.proxy.revive();
    await rig.coldStart();
    // The committed manifest was notified and forwarded; the checkpoint does not know the window yet.
    await rig.drainQueue();
    expect(await checkpointTo(rig)).toBeUndefined();
    const before = rig.stack.aep.acceptedIds().length;
    // The retried schedule exports the window again (a new run); the forwarder sends only ids not delivered before.
    const retried = await rig.exportHandler(schedule(), rig.context(EXPORT_TIMEOUT_MS));
    expect(retried.windows.map((w) => w.status)).toEqual(['committed']);
    await rig.drainQueue();
    expect(rig.stack.aep.acceptedIds()).toHaveLength(before);
    const report = await assertInvariants(rig, { minWindows: 1 });
    expect(report.windows[0]!.accepted).toBe(0);
  });

  it('should stop between windows at the Lambda deadline and leave the rest to the next runs', async () => {
    // Data across midnight: a manual range over it is two windows (spans end on day boundaries).
    rig = await startRig({ stack: { dataset: { seed: 7, count: 1500, start: NOW - 16 * H, end: NOW - 30 * MIN } } });
    // Mixpanel throttles the first query twice (Retry-After 80 s): after the first window 80 s of the 4 minutes remain.
    rig.stack.mixpanel.injectFault({ kind: 'status', status: 429, retryAfterSeconds: 80 });
    rig.stack.mixpanel.injectFault({ kind: 'status', status: 429, retryAfterSeconds: 80 });
    const first = await rig.exportHandler(
      { from: new Date(NOW - 16 * H).toISOString(), to: new Date(LAST_WINDOW.to).toISOString() },
      rig.context(4 * MIN),
    );
    // The first window is the probe (no rate known yet); the rest of the range, sized after it, is two windows.
    expect(first.windows.map((w) => w.status)).toEqual(['committed']);
    expect(first.remaining).toMatchObject({ windows: 2, reason: 'deadline' });
    // The next scheduled run continues the manual range without an operator.
    rig.advance(H);
    const next = await rig.exportHandler(schedule(rig.now()), rig.context(EXPORT_TIMEOUT_MS));
    expect(next.remaining).toBeUndefined();
    await rig.drainQueue();
    const report = await assertInvariants(rig, { minWindows: 2 });
    expect(report.windows.map((w) => w.window)).toContain(first.windows[0]!.id);
  });

  it('should export a window once when the same schedule event arrives twice in sequence', async () => {
    rig = await startRig();
    const a = await rig.exportHandler(schedule(), rig.context(EXPORT_TIMEOUT_MS));
    await rig.drainQueue();
    const b = await rig.exportHandler(schedule(), rig.context(EXPORT_TIMEOUT_MS));
    expect(a.windows.map((w) => w.status)).toEqual(['committed']);
    expect(b.windows).toEqual([]);
    await rig.drainQueue();
    expect(rig.stack.mixpanel.requests.filter((r) => r.status === 200)).toHaveLength(1);
    await assertInvariants(rig, { minWindows: 1 });
  });

  it('should deliver every id once when the same schedule event is processed twice at the same time', async () => {
    rig = await startRig();
    // Two invocations race: both export the window (two runs, the later manifest wins), both manifests are notified.
    const [a, b] = await Promise.all([
      rig.exportHandler(schedule(), rig.context(EXPORT_TIMEOUT_MS)),
      rig.exportHandler(schedule(), rig.context(EXPORT_TIMEOUT_MS)),
    ]);
    expect([...a.windows, ...b.windows].map((w) => w.status)).toEqual(['committed', 'committed']);
    rig.notify();
    expect(rig.queue).toHaveLength(2);
    // The two notifications are processed concurrently (the event source runs up to 2 forwarders).
    await rig.drainQueue({ concurrency: 2 });
    const report = await assertInvariants(rig, { minWindows: 1 });
    expect(new Set(rig.stack.aep.acceptedIds()).size).toBe(
      report.windows[0]!.accepted + (await deliveredByOtherRuns(rig)),
    );
  });
});

/** Ids accepted under runs other than the manifest's (a duplicate export raced and lost the manifest). */
async function deliveredByOtherRuns(r: Rig): Promise<number> {
  const report = await r.invariants();
  const current = new Set(report.windows.map((w) => w.runId));
  let n = 0;
  for (const key of await listKeys(r.direct, r.bucket, 'delivery/')) {
    const m = /run=([^/]+)\/part-\d+\.json$/.exec(key);
    if (m === null || current.has(m[1]!)) continue;
    n += (await getJson<{ accepted: number }>(r.direct, r.bucket, key))!.accepted;
  }
  return n;
}

function randomText(n: number): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[Math.floor(Math.random() * 64)];
  return s;
}
