/**
 * Reliability, forward side: AEP (IMS, DCS, batch) and S3 faults, Lambda deadlines, crashes, SQS redelivery and
 * concurrent forwarders; each scenario ends with the queue drained and the invariants checked.
 */
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { listKeys } from '#cli/invariants';
import type { Receipt } from '#forward/receipt';
import { getBytes, getJson } from '#staging/s3';
import {
  EXPORT_TIMEOUT_MS,
  FORWARD_TIMEOUT_MS,
  H,
  MIN,
  NOW,
  type Rig,
  assertInvariants,
  expectActionable,
  schedule,
  startRig,
} from './harness.ts';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

/** Exports the scheduled window and queues its manifest notification. */
async function exported(r: Rig): Promise<string> {
  const result = await r.exportHandler(schedule(), r.context(EXPORT_TIMEOUT_MS));
  expect(result.windows.map((w) => w.status)).toEqual(['committed']);
  r.notify();
  return result.windows[0]!.manifestKey!;
}

const dcsRequests = (r: Rig) => r.stack.aep.requests.filter((q) => q.path.startsWith('/collection/'));
const errorsLogged = (r: Rig) => r.logs.filter((l) => l.level === 'error');

async function receipts(r: Rig): Promise<Receipt[]> {
  const keys = (await listKeys(r.direct, r.bucket, 'delivery/')).filter((k) => /part-\d+\.json$/.test(k));
  return Promise.all(keys.map(async (k) => (await getJson<Receipt>(r.direct, r.bucket, k))!));
}

async function rejectedLines(r: Rig): Promise<Array<{ reason: string; detail: string; id?: string }>> {
  const out: Array<{ reason: string; detail: string }> = [];
  for (const k of await listKeys(r.direct, r.bucket, 'rejected/')) {
    out.push(
      ...gunzipSync((await getBytes(r.direct, r.bucket, k))!)
        .toString('utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l)),
    );
  }
  return out;
}

/** Last error logged by the forward handler (what an operator reads in CloudWatch). */
function lastForwardError(r: Rig): string {
  const entry = errorsLogged(r).findLast((l) => l.message.startsWith('forward failed'));
  expect(entry, 'a forward failure was logged').toBeDefined();
  return ((entry!.fields[0] as { error: Error }).error as Error).message;
}

/** The kind the forward handler logged with its last failure: can redelivery cure it? */
function lastForwardKind(r: Rig): unknown {
  const entry = errorsLogged(r).findLast((l) => l.message.startsWith('forward failed'));
  return (entry?.fields[0] as { kind?: unknown } | undefined)?.kind;
}

describe('AEP faults', () => {
  it("should re-send the retryable messages of a 207 and keep the refused ones in rejected/ with Adobe's reason", async () => {
    rig = await startRig();
    await exported(rig);
    rig.stack.aep.injectFault({ kind: 'partial', everyNth: 5, statusCode: 503 });
    rig.stack.aep.injectFault({ kind: 'partial', everyNth: 7, statusCode: 400, message: 'emulated schema violation' });
    await rig.drainQueue();
    const report = await assertInvariants(rig, { minWindows: 1 });
    expect(report.windows[0]!.retried).toBeGreaterThan(0);
    const refused = (await rejectedLines(rig)).filter((l) => l.reason === 'aep-rejected');
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((l) => /emulated schema violation/.test(l.detail))).toBe(true);
  });

  it.each([
    { status: 413, what: 'a request over the size limit (split in two and re-sent)' },
    { status: 429, what: 'throttling' },
    { status: 500, what: 'a server error' },
    { status: 503, retryAfterSeconds: 30, what: 'unavailability with Retry-After' },
  ])('should deliver everything once through DCS $status: $what', async ({ status, retryAfterSeconds }) => {
    rig = await startRig();
    await exported(rig);
    for (let i = 0; i < 2; i++)
      rig.stack.aep.injectFault({
        kind: 'status',
        target: 'dcs',
        status,
        ...(retryAfterSeconds ? { retryAfterSeconds } : {}),
      });
    const { failures } = await rig.drainQueue();
    expect(failures).toBe(0);
    expect(dcsRequests(rig).filter((q) => q.status === status)).toHaveLength(2);
    if (retryAfterSeconds !== undefined)
      expect(rig.slept.filter((ms) => ms >= retryAfterSeconds * 1000).length).toBeGreaterThanOrEqual(2);
    await assertInvariants(rig, { minWindows: 1 });
  });

  it('should stop on DCS unavailable beyond the retry budget, keep its progress, and resume on redelivery', async () => {
    rig = await startRig({ forward: { chunkRecords: 50 } });
    await exported(rig);
    // The first chunks go through, then DCS answers 503 to every attempt of one request (5 = the retry budget).
    let dcs = 0;
    rig.beforeFetch.push((url) => {
      if (url.includes('/collection/') && ++dcs === 3)
        for (let i = 0; i < 5; i++) rig!.stack.aep.injectFault({ kind: 'status', target: 'dcs', status: 503 });
    });
    const { failures } = await rig.drainQueue();
    expect(failures).toBe(1);
    expectActionable(rig, lastForwardError(rig), /503.*(again|resend|send the unsent)/i);
    await assertInvariants(rig, { minWindows: 1 });
  });

  it('should renew an access token that expires in the middle of a window and send nothing twice', async () => {
    rig = await startRig({ forward: { chunkRecords: 50 } });
    await exported(rig);
    let dcs = 0;
    rig.beforeFetch.push((url) => {
      if (url.includes('/collection/') && ++dcs === 3) rig!.stack.aep.expireTokens();
    });
    const { failures } = await rig.drainQueue();
    expect(failures).toBe(0);
    expect(dcsRequests(rig).filter((q) => q.status === 401)).toHaveLength(1);
    expect(rig.stack.aep.stats.tokensIssued).toBe(2);
    await assertInvariants(rig, { minWindows: 1 });
  });

  it('should fail the message while IMS is down, say so, and deliver once IMS is back', async () => {
    rig = await startRig();
    await exported(rig);
    for (let i = 0; i < 5; i++) rig.stack.aep.injectFault({ kind: 'status', target: 'ims', status: 503 });
    const { failures } = await rig.drainQueue();
    expect(failures).toBe(1);
    expectActionable(rig, lastForwardError(rig), /IMS.*503.*try again later/);
    expect(lastForwardKind(rig)).toBe('transient');
    await assertInvariants(rig, { minWindows: 1 });
  });

  it('should name the credential to check when IMS refuses it, and deliver after the secret is fixed', async () => {
    rig = await startRig();
    await exported(rig);
    rig.stack.aep.injectFault({
      kind: 'status',
      target: 'ims',
      status: 401,
      body: { error: 'invalid_client', error_description: 'invalid client_secret parameter' },
    });
    const { failures } = await rig.drainQueue();
    expect(failures).toBe(1);
    expectActionable(rig, lastForwardError(rig), /IMS refused .*401.*client secret/);
    expect(lastForwardKind(rig)).toBe('permanent');
    await assertInvariants(rig, { minWindows: 1 });
  });

  it('should retry batch ingestion failures (create 503, upload 500) and deliver one batch', async () => {
    rig = await startRig({ sink: 'batch' });
    await exported(rig);
    rig.stack.aep.injectFault({ kind: 'status', target: 'batch-create', status: 503, retryAfterSeconds: 2 });
    rig.stack.aep.injectFault({ kind: 'status', target: 'batch-upload', status: 500 });
    const { failures } = await rig.drainQueue();
    expect(failures).toBe(0);
    expect(Object.keys(rig.stack.aep.stats.batches)).toHaveLength(1);
    await assertInvariants(rig, { minWindows: 1 });
  });
});

describe('S3 faults on the forward', () => {
  it.each([
    { op: 'get' as const, key: /part-\d+\.jsonl\.gz$/, status: 500, what: 'reading a part' },
    { op: 'get' as const, key: /manifest\.json$/, status: 503, what: 'reading the manifest' },
    { op: 'put' as const, key: /part-\d+\.ids$/, status: 503, what: 'saving a ledger' },
    { op: 'put' as const, key: /delivery\/.*part-\d+\.json$/, status: 500, what: 'saving a receipt' },
    { op: 'put' as const, key: /rejected\//, status: 503, what: 'saving rejected records' },
  ])('should ride out a transient S3 error $what', async ({ op, key, status }) => {
    rig = await startRig();
    await exported(rig);
    rig.proxy.inject({ op, key, action: { kind: 'status', status }, times: 2 });
    const { failures } = await rig.drainQueue();
    expect(failures).toBe(0);
    expect(rig.proxy.requests.filter((r) => r.fault === 'status')).toHaveLength(2);
    await assertInvariants(rig, { minWindows: 1 });
  });

  it('should not send a chunk twice when S3 keeps refusing the progress save for longer than the client retries', async () => {
    rig = await startRig({ forward: { chunkRecords: 50 } });
    await exported(rig);
    // Six refusals in a row: the SDK gives up after 3; the delivered chunk must still be recorded.
    rig.proxy.inject({ op: 'put', key: /part-\d+\.ids$/, action: { kind: 'status', status: 503 }, skip: 1, times: 6 });
    await rig.drainQueue();
    await assertInvariants(rig, { minWindows: 1 });
  });

  it('should record a receipt whose PUT answer was lost (the SDK re-sends it) without sending anything twice', async () => {
    rig = await startRig({ forward: { chunkRecords: 50 } });
    await exported(rig);
    rig.proxy.inject({
      op: 'put',
      key: /delivery\/.*part-\d+\.json$/,
      action: { kind: 'reset', when: 'after' },
      skip: 1,
      times: 2,
    });
    const { failures } = await rig.drainQueue();
    expect(failures).toBe(0);
    await assertInvariants(rig, { minWindows: 1 });
  });

  it('should hold its own lease when the answer to its conditional PUT was lost (the retry then fails its precondition)', async () => {
    rig = await startRig();
    await exported(rig);
    rig.proxy.inject({ op: 'put', key: /forwarder\.lease$/, action: { kind: 'reset', when: 'after' } });
    const { failures } = await rig.drainQueue();
    expect(failures).toBe(0);
    expect(
      rig.proxy.requests.filter((r) => r.key.endsWith('forwarder.lease') && r.fault === 'precondition'),
    ).toHaveLength(1);
    await assertInvariants(rig, { minWindows: 1 });
  });
});

describe('Lambda deadlines, crashes, redelivery and concurrency', () => {
  it('should stop before the Lambda deadline mid-window and resume on redelivery without sending an id twice', async () => {
    rig = await startRig({ forward: { chunkRecords: 50 } });
    await exported(rig);
    // Slow DCS: the third request takes the invocation past its deadline.
    let dcs = 0;
    rig.beforeFetch.push((url) => {
      if (url.includes('/collection/') && ++dcs === 3) rig!.advance(FORWARD_TIMEOUT_MS);
    });
    const { failures, invocations } = await rig.drainQueue();
    expect(failures).toBe(1);
    expect(invocations).toBe(2);
    const partial = rig.forwarded.find((f) => !f.complete);
    expect(partial?.accepted).toBeGreaterThan(0);
    expect(rig.logs.some((l) => /stopped before the deadline; it resumes on redelivery/.test(dump(l)))).toBe(true);
    await assertInvariants(rig, { minWindows: 1 });
  });

  it('should send nothing again when SQS redelivers a manifest already forwarded', async () => {
    rig = await startRig();
    const key = await exported(rig);
    await rig.drainQueue();
    const accepted = rig.stack.aep.acceptedIds().length;
    const requests = dcsRequests(rig).length;
    rig.queue.push({ id: 'again-1', key, receives: 0 }, { id: 'again-2', key, receives: 0 });
    await rig.drainQueue();
    expect(rig.stack.aep.acceptedIds()).toHaveLength(accepted);
    expect(dcsRequests(rig)).toHaveLength(requests);
    await assertInvariants(rig, { minWindows: 1 });
  });

  it('should let one of two forwarders of the same manifest work and retry the other later (window lease)', async () => {
    rig = await startRig({ forward: { chunkRecords: 50 } });
    const key = await exported(rig);
    rig.queue.push({ id: 'duplicate-notification', key, receives: 0 });
    const { failures } = await rig.drainQueue({ concurrency: 2 });
    expect(failures).toBe(1);
    expect(rig.logs.some((l) => l.message === 'window busy; the message will be redelivered')).toBe(true);
    await assertInvariants(rig, { minWindows: 1 });
  });

  it('should keep a forced re-export from racing the forward of the run it replaces', async () => {
    rig = await startRig({ forward: { chunkRecords: 50 } });
    await exported(rig);
    const run1 = rig.queue.shift()!;
    // Forwarder A starts on run 1 and is held before its second DCS request until B has tried.
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    let dcs = 0;
    let held!: () => void;
    const holding = new Promise<void>((resolve) => (held = resolve));
    rig.beforeFetch.push(async (url) => {
      if (url.includes('/collection/') && ++dcs === 2) {
        held();
        await gate;
      }
    });
    const a = rig.forwardHandler(sqsFor(rig, run1), rig.context(FORWARD_TIMEOUT_MS));
    await holding;
    // … an operator forces a re-export of the window (run 2, a new manifest and notification) …
    const forced = await rig.exportHandler(
      { from: new Date(NOW - 130 * MIN).toISOString(), to: new Date(NOW - 70 * MIN).toISOString(), force: true },
      rig.context(EXPORT_TIMEOUT_MS),
    );
    expect(forced.windows.map((w) => w.status)).toEqual(['committed']);
    rig.notify();
    const run2 = rig.queue.shift()!;
    // … and forwarder B gets run 2 while A is still sending run 1: B must not send A's ids.
    const b = await rig.forwardHandler(sqsFor(rig, run2), rig.context(FORWARD_TIMEOUT_MS));
    expect(b.batchItemFailures).toHaveLength(1);
    expect(rig.logs.some((l) => l.message === 'window busy; the message will be redelivered')).toBe(true);
    release();
    expect((await a).batchItemFailures).toEqual([]);
    // SQS redelivers B's message: run 2 is forwarded, every id already delivered by run 1 becomes a `duplicate`.
    run2.receives = 1;
    rig.queue.push(run2);
    await rig.drainQueue();
    const report = await assertInvariants(rig, { minWindows: 1 });
    expect(report.windows[0]!.accepted).toBe(0);
  });

  it('should stop every part when one fails, and send nothing after the invocation answered', async () => {
    // Two parts of 300 events, forwarded side by side in chunks of 20.
    rig = await startRig({
      events: 3000,
      export: { partMaxEvents: 300 },
      forward: { chunkRecords: 20, partConcurrency: 2 },
    });
    const key = await exported(rig);
    // Part 1's third receipt write (the intent before its second chunk) is refused: nothing of that chunk is sent.
    rig.proxy.inject({
      op: 'put',
      key: /delivery\/.*part-00001\.json$/,
      action: { kind: 'status', status: 403, code: 'AccessDenied' },
      skip: 2,
    });
    let sentAfterAnswer = 0;
    let answered = false;
    rig.beforeFetch.push(() => void (answered && sentAfterAnswer++));
    const reply = await rig.forwardHandler(sqs(rig), rig.context(FORWARD_TIMEOUT_MS));
    answered = true;
    expect(reply.batchItemFailures).toHaveLength(1);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(sentAfterAnswer).toBe(0);
    expectActionable(rig, lastForwardError(rig), /AccessDenied|Access Denied/);
    // SQS redelivers; the permission is back.
    rig.advance(H);
    rig.queue.push({ id: 'redelivered', key, receives: 1 });
    await rig.drainQueue();
    const report = await assertInvariants(rig, { minWindows: 1 });
    expect((await receipts(rig)).filter((r) => r.runId === report.windows[0]!.runId)).toHaveLength(2);
  });

  it('should bound and report what a crash between a DCS answer and the progress save re-sends (documented limit)', async () => {
    const chunk = 50;
    rig = await startRig({ forward: { chunkRecords: chunk, partConcurrency: 1 } });
    await exported(rig);
    // The process dies right after DCS accepted the second chunk, before its ledger is saved.
    rig.proxy.inject({ op: 'put', key: /part-\d+\.ids$/, action: { kind: 'crash' }, skip: 1 });
    const first = await rig.forwardHandler(sqs(rig), rig.context(FORWARD_TIMEOUT_MS)).catch((e: unknown) => e);
    expect(first).toMatchObject({ batchItemFailures: [{}] });
    await rig.proxy.revive();
    await rig.coldStart();
    // SQS redelivers after the visibility timeout; the new invocation resumes from the last saved progress.
    rig.advance(H);
    rig.queue.splice(0);
    rig.queue.push({ id: 'redelivered', key: await firstManifest(rig), receives: 1 });
    await rig.drainQueue();
    const report = await rig.invariants();
    // Nothing lost, and the only ids Platform holds twice are the one chunk that was in flight — counted as ambiguous.
    expect(report.problems.filter((p) => !/more than once|Platform holds/.test(p))).toEqual([]);
    expect(report.duplicatesAtPlatform).toBeGreaterThan(0);
    expect(report.duplicatesAtPlatform).toBeLessThanOrEqual(chunk);
    const ambiguous = (await receipts(rig)).reduce((n, r) => n + r.ambiguous, 0);
    expect(ambiguous).toBe(report.duplicatesAtPlatform);
    expect(rig.logs.some((l) => l.level === 'warn' && /in flight/.test(l.message))).toBe(true);
  });
});

function sqs(r: Rig) {
  return sqsFor(r, r.queue.shift()!);
}

function sqsFor(r: Rig, m: { id: string; key: string }) {
  return {
    Records: [
      {
        messageId: m.id,
        receiptHandle: m.id,
        body: JSON.stringify({
          Records: [{ eventName: 'ObjectCreated:Put', s3: { bucket: { name: r.bucket }, object: { key: m.key } } }],
        }),
        attributes: {},
        messageAttributes: {},
        md5OfBody: '',
        eventSource: 'aws:sqs',
        eventSourceARN: 'arn:aws:sqs:us-east-1:0:q',
        awsRegion: 'us-east-1',
      },
    ],
  } as never;
}

async function firstManifest(r: Rig): Promise<string> {
  return (await listKeys(r.direct, r.bucket, 'staging/')).find((k) => k.endsWith('manifest.json'))!;
}

function dump(l: unknown): string {
  return JSON.stringify(l, (_k, v: unknown) => (v instanceof Error ? { message: v.message } : v));
}
