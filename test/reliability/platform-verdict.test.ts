/**
 * Reliability, Platform's verdict: what Platform does with records after accepting them. Streamed records are
 * validated asynchronously and refused ones land in failed batches (AdobeDocs/experience-platform.en
 * help/ingestion/quality/streaming-validation.md); an ingestion batch can fail whole or, with partial ingestion, lose
 * some rows (help/ingestion/batch-ingestion/partial.md). The verifier finds each refused record, keeps it in rejected/
 * with Platform's reason, and records `platform` in window.json; every scenario ends with
 * `exported = ingested + failed at Platform + rejected + quarantined` and no `_id` stored twice.
 */
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { listKeys } from '#cli/invariants';
import type { WindowReceipt } from '#forward/receipt';
import { getBytes, getJson } from '#staging/s3';
import { resendFailedBatch } from '#verify/resend';
import { batchesAtPlatform, forwardScheduledWindow, startBatchRig } from './batch-scenarios.ts';
import { type Rig, assertInvariants, startRig } from './harness.ts';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

const REFUSAL = 'expected integer, found string (the field was retyped after provisioning)';

interface RefusedLine {
  readonly reason: string;
  readonly detail: string;
  readonly line: string;
  readonly batchId: string;
}

async function verdictOf(r: Rig, prefix: string): Promise<WindowReceipt> {
  return (await getJson<WindowReceipt>(r.direct, r.bucket, `${prefix}window.json`))!;
}

async function platformRejects(r: Rig): Promise<RefusedLine[]> {
  const keys = (await listKeys(r.direct, r.bucket, 'rejected/')).filter((k) => k.includes('/platform-part-'));
  const out: RefusedLine[] = [];
  for (const k of keys) {
    const text = gunzipSync((await getBytes(r.direct, r.bucket, k))!).toString('utf8');
    out.push(
      ...text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as RefusedLine),
    );
  }
  return out;
}

const pendingMarkers = async (r: Rig): Promise<string[]> => listKeys(r.direct, r.bucket, 'verify/pending/');

describe("Platform's verdict, streaming", () => {
  it('should find the records Platform refused asynchronously, keep them with its reason, and count the rest ingested', async () => {
    // Prepare: every 40th message of the first request is taken by DCS and refused later by validation
    rig = await startRig();
    rig.stack.aep.injectFault({ kind: 'partial', everyNth: 40, statusCode: 400, asynchronous: true, message: REFUSAL });
    const run = await forwardScheduledWindow(rig);
    const forwarded = await verdictOf(rig, run.prefix);
    expect(forwarded.platform).toMatchObject({ status: 'pending', ingested: 0, failed: 0 });
    expect(await pendingMarkers(rig)).toHaveLength(1);

    // Act 1: the schedule fires before Platform's data-lake latency has passed
    const early = await rig.verify({ settle: false, advanceMs: 0 });

    // Assess 1: nothing is concluded yet
    expect(early).toMatchObject({ checked: 1, settled: 0, pending: 1 });
    expect((await verdictOf(rig, run.prefix)).platform?.detail).toMatch(/data-lake latency/);

    // Act 2: after Platform has closed its batches
    const round = await rig.verify();

    // Assess 2: the refused records are traced to their staged lines, with Platform's reason
    expect(round).toMatchObject({ checked: 1, settled: 1, pending: 0, errors: 0 });
    const v = (await verdictOf(rig, run.prefix)).platform!;
    const refusedAtPlatform = rig.stack.aep.stats.recordsFailedValidation;
    expect(refusedAtPlatform).toBeGreaterThan(0);
    expect(v).toMatchObject({ status: 'verified', failed: refusedAtPlatform });
    expect(v.ingested).toBe(forwarded.accepted - refusedAtPlatform);
    expect(v.byReason).toEqual({ 'platform-validation': refusedAtPlatform });
    const rejects = await platformRejects(rig);
    expect(rejects).toHaveLength(refusedAtPlatform);
    for (const r of rejects) {
      expect(r.reason).toBe('platform-validation');
      expect(r.detail).toContain(REFUSAL);
      expect(JSON.parse(r.line)).toHaveProperty('event');
    }
    // Platform holds exactly the ingested ones, each once
    expect(new Set(rig.stack.aep.acceptedIds()).size).toBe(v.ingested);
    expect(await pendingMarkers(rig)).toEqual([]);
    expect(rig.logs.some((l) => l.level === 'error' && /Platform refused records/.test(l.message))).toBe(true);
    await assertInvariants(rig, { minWindows: 1, requireVerified: true });

    // Act 3: a later round, and a check by hand, change nothing
    const again = await rig.verify();
    expect(again).toMatchObject({ checked: 0 });
    expect((await verdictOf(rig, run.prefix)).platform).toMatchObject({ ingested: v.ingested, failed: v.failed });
  });
});

describe("Platform's verdict, batch sink", () => {
  it('should keep a run pending while its batch is still being promoted, then conclude', async () => {
    rig = await startBatchRig({ stack: { aep: { batchSettleDelayMs: 3 * 3_600_000 } } });
    const run = await forwardScheduledWindow(rig);
    const pending = await rig.verify({ settle: false });
    expect(pending).toMatchObject({ checked: 1, settled: 0, pending: 1 });
    expect((await verdictOf(rig, run.prefix)).platform).toMatchObject({ status: 'pending', checks: 1 });
    expect((await verdictOf(rig, run.prefix)).platform?.detail).toMatch(/is staging|is processing|is loading/);
    expect(await pendingMarkers(rig)).toHaveLength(1);
    await rig.verify();
    const report = await assertInvariants(rig, { minWindows: 1, requireVerified: true });
    expect(report.windows[0]!.platform).toMatchObject({ status: 'verified', failed: 0, checks: 2 });
    expect(await pendingMarkers(rig)).toEqual([]);
  });

  it('should report a batch Platform failed as an error, and re-send it once so that everything is stored once', async () => {
    // Prepare: Platform fails the window's batch after COMPLETE
    rig = await startBatchRig();
    rig.stack.aep.injectFault({ kind: 'promotion', states: ['staging', 'failed'] });
    const run = await forwardScheduledWindow(rig);
    const accepted = (await verdictOf(rig, run.prefix)).accepted;
    expect(rig.stack.aep.acceptedIds()).toEqual([]);

    // Act 1: the verifier reads the verdict
    await rig.verify();

    // Assess 1: every record of the batch failed at Platform, kept with the batch's reason; the run is `failed`
    const failed = (await verdictOf(rig, run.prefix)).platform!;
    expect(failed).toMatchObject({ status: 'failed', ingested: 0, failed: accepted });
    expect(failed.detail).toMatch(/resend --window/);
    expect(rig.logs.some((l) => l.level === 'error' && /Platform refused records/.test(l.message))).toBe(true);
    const rejects = await platformRejects(rig);
    expect(rejects).toHaveLength(accepted);
    expect(new Set(rejects.map((r) => r.reason))).toEqual(new Set(['platform-batch-failed']));
    await assertInvariants(rig, { minWindows: 1, requireVerified: true });

    // Act 2: the operator re-sends the failed batch (what `npm run cli -- resend --window` runs), then verifies
    const ref = rig.layout.parseManifestKey(run.manifestKey)!;
    const d = rig.forwardDeps;
    if (d.sink.kind !== 'batch') throw new Error('batch sink expected');
    const resent = await resendFailedBatch(
      { ...ref, runId: run.runId },
      { ...d, batches: d.sink.batches, platform: d.platform },
    );
    await rig.verify();

    // Assess 2: one new batch with exactly those records; all ingested once; the superseded rejects are gone
    expect(resent.records).toBe(accepted);
    expect(
      batchesAtPlatform(rig)
        .map((b) => b.status)
        .sort(),
    ).toEqual(['failed', 'success']);
    const v = (await verdictOf(rig, run.prefix)).platform!;
    expect(v).toMatchObject({ status: 'verified', ingested: accepted, failed: 0 });
    expect(v.batches?.map((b) => b.status)).toEqual(['failed', 'success']);
    expect(await platformRejects(rig)).toEqual([]);
    expect(rig.stack.aep.acceptedIds()).toHaveLength(accepted);
    await assertInvariants(rig, { minWindows: 1, requireVerified: true });

    // Act 3: re-sending a batch that did not fail is refused (Platform stored it)
    await expect(
      resendFailedBatch({ ...ref, runId: run.runId }, { ...d, batches: d.sink.batches, platform: d.platform }),
    ).rejects.toThrow(/not failed/);
  });

  it("should trace the rows Platform refused in a partially ingested batch to rejected/ with Platform's reason", async () => {
    // Prepare: every 30th row of the first file fails at COMPLETE; partial ingestion (default 5 %) keeps the rest
    rig = await startBatchRig({ export: { partMaxEvents: 1_000_000 } });
    rig.stack.aep.injectFault({ kind: 'partial', everyNth: 30, statusCode: 400, asynchronous: true, message: REFUSAL });
    const run = await forwardScheduledWindow(rig);
    const accepted = (await verdictOf(rig, run.prefix)).accepted;

    // Act
    await rig.verify();

    // Assess
    const [batch] = batchesAtPlatform(rig);
    expect(batch).toMatchObject({ status: 'success' });
    const v = (await verdictOf(rig, run.prefix)).platform!;
    const refused = Math.floor(accepted / 30);
    expect(refused).toBeGreaterThan(0);
    expect(v).toMatchObject({ status: 'verified', failed: refused, ingested: accepted - refused });
    expect(v.untraced ?? 0).toBe(0);
    const rejects = await platformRejects(rig);
    expect(rejects).toHaveLength(refused);
    for (const r of rejects) {
      expect(r.reason).toBe('platform-row-error');
      expect(r.detail).toContain(REFUSAL);
    }
    expect(new Set(rig.stack.aep.acceptedIds()).size).toBe(accepted - refused);
    await assertInvariants(rig, { minWindows: 1, requireVerified: true });
  });
});
