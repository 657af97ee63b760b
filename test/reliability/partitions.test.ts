/**
 * Partitioned staging and the fan-out, end to end: a window big enough for several partitions is staged by `_id`
 * partition, its notification sends one message per partition to the queue, and the partitions are forwarded by
 * concurrent invocations — every `_id` delivered once, a partition cut short resumes on redelivery, and the window's
 * reconciliation is written once every part is complete.
 */
import { createWriteStream } from 'node:fs';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { listKeys } from '#cli/invariants';
import { StagingSpaceError } from '#staging/gzip-object';
import type { WindowReceipt } from '#forward/receipt';
import type { Manifest } from '#staging/manifest';
import { getJson } from '#staging/s3';
import {
  DATA_START,
  FORWARD_TIMEOUT_MS,
  LAST_WINDOW,
  NOW,
  type Rig,
  assertInvariants,
  dump,
  expectActionable,
  failure,
} from './harness.ts';
import { schedule, startRig } from './harness.ts';

let rig: Rig | undefined;
let spillRoot: string | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
  if (spillRoot !== undefined) await rm(spillRoot, { recursive: true, force: true });
  spillRoot = undefined;
});

/** A spill file that takes `capacity` bytes, then fails as a full disk does. */
function fullDisk(capacity: number): Writable {
  let used = 0;
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      used += chunk.length;
      if (used <= capacity) return callback();
      callback(Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }));
    },
  });
}

const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * Stages the data before the last window in one run (no rate known yet: a probe hour, then windows sized and
 * partitioned by its rate) and forwards it, then stages the last window, which the observed rate splits into
 * partitions. Returns the last window's manifest.
 */
async function stagePartitioned(r: Rig): Promise<{ key: string; manifest: Manifest }> {
  await r.exportHandler({ from: iso(DATA_START), to: iso(LAST_WINDOW.from), mode: 'processing-time' });
  await r.drainQueue();
  const run = await r.exportHandler(schedule(NOW));
  const key = run.windows.at(-1)!.manifestKey!;
  return { key, manifest: (await getJson<Manifest>(r.direct, r.bucket, key))! };
}

describe('partitioned windows', () => {
  it('should stage a window by _id partition and forward its partitions concurrently, every _id once', async () => {
    // Prepare: parts of 100 events; a rate of ~550 events an hour makes the last window 8 partitions
    rig = await startRig({ events: 3000, export: { partMaxEvents: 100 }, fanOut: true });
    const { manifest } = await stagePartitioned(rig);
    expect(manifest.partitions).toBe(8);
    expect(new Set(manifest.parts.map((p) => p.partition)).size).toBe(8);
    expect(manifest.parts.every((p) => p.events <= 100)).toBe(true);

    // Act: the notification fans out, then four invocations at a time forward the partitions
    const { invocations, failures } = await rig.drainQueue({ concurrency: 4 });

    // Assess: one invocation for the notification and one per partition; the window is reconciled once complete
    expect(failures).toBe(0);
    expect(invocations).toBe(1 + 8);
    // (The earlier windows were fanned out too: after the first backfill's probe, they were sized and partitioned.)
    expect(rig.forwarded.filter((f) => f.fannedOut !== undefined).at(-1)?.fannedOut).toBe(8);
    const perPartition = rig.forwarded.filter((f) => f.partitions !== undefined && f.runId === manifest.runId);
    expect(perPartition.map((f) => f.partitions![0]).sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(perPartition.reduce((n, f) => n + f.accepted + f.rejected, 0)).toBe(manifest.events);
    const report = await assertInvariants(rig, { minWindows: 2 });
    const accepted = rig.stack.aep.acceptedIds();
    expect(new Set(accepted).size).toBe(accepted.length);
    expect(report.windows.every((w) => w.forwarded)).toBe(true);
  }, 120_000);

  it('should deliver nothing twice when a partitioned window is re-exported and forwarded again', async () => {
    // Prepare: a forwarded partitioned window, then the same window forced again (a new run, same partitions)
    rig = await startRig({ events: 3000, export: { partMaxEvents: 100 }, fanOut: true });
    await stagePartitioned(rig);
    await rig.drainQueue({ concurrency: 4 });
    const accepted = rig.stack.aep.acceptedIds().length;
    const again = await rig.exportHandler({ from: iso(LAST_WINDOW.from), to: iso(LAST_WINDOW.to), force: true });
    expect(again.windows[0]!.status).toBe('committed');

    // Act
    const { failures } = await rig.drainQueue({ concurrency: 4 });

    // Assess: every record of the new run is a duplicate of the earlier run's, found in its partition's ledgers
    expect(failures).toBe(0);
    expect(rig.stack.aep.acceptedIds()).toHaveLength(accepted);
    const run2 = (await getJson<Manifest>(rig.direct, rig.bucket, again.windows[0]!.manifestKey!))!;
    expect(run2.partitions).toBe(8);
    const rerun = rig.forwarded.filter((f) => f.partitions !== undefined && f.runId === run2.runId);
    expect(rerun).toHaveLength(8);
    expect(rerun.every((f) => f.accepted === 0 && f.rejected === f.byReason.duplicate)).toBe(true);
    await assertInvariants(rig, { minWindows: 2 });
  });

  it('should resume partitions whose invocation ran out of time, without sending an id twice', async () => {
    // Prepare: small chunks; the fourth DCS request takes the invocations running then past their deadline
    rig = await startRig({ events: 3000, export: { partMaxEvents: 100 }, forward: { chunkRecords: 20 }, fanOut: true });
    const { manifest } = await stagePartitioned(rig);
    let dcs = 0;
    const lastWindowSends = rig.stack.aep.acceptedIds().length;
    rig.beforeFetch.push((url) => {
      if (url.includes('/collection/') && ++dcs === 4) rig!.advance(FORWARD_TIMEOUT_MS);
    });

    // Act
    const { failures } = await rig.drainQueue({ concurrency: 2 });

    // Assess: interrupted partitions came back and finished; all of the window's events settled once
    expect(failures).toBeGreaterThan(0);
    expect(rig.forwarded.some((f) => f.partitions !== undefined && !f.complete)).toBe(true);
    expect(rig.logs.some((l) => /stopped before the deadline; it resumes on redelivery/.test(dump(l)))).toBe(true);
    const receipts = (await listKeys(rig.direct, rig.bucket, 'delivery/')).filter((k) =>
      k.includes(`run=${manifest.runId}/part-`),
    );
    expect(receipts.filter((k) => k.endsWith('.json'))).toHaveLength(manifest.parts.length);
    const accepted = rig.stack.aep.acceptedIds();
    expect(new Set(accepted).size).toBe(accepted.length);
    expect(accepted.length).toBeGreaterThan(lastWindowSends);
    await assertInvariants(rig, { minWindows: 2 });
  });

  it('should forward every partition in one invocation when there is no fan-out', async () => {
    // Prepare
    rig = await startRig({ events: 3000, export: { partMaxEvents: 100 } });
    const { manifest } = await stagePartitioned(rig);
    expect(manifest.partitions).toBeGreaterThan(1);
    // Act
    const { invocations } = await rig.drainQueue();
    // Assess
    expect(invocations).toBe(1);
    const last = rig.forwarded.at(-1)!;
    expect(last.complete).toBe(true);
    expect(last.accepted + last.rejected).toBe(manifest.events);
    await assertInvariants(rig, { minWindows: 2 });
  });

  it('should spill partitions to temporary files and leave none behind once the window is committed', async () => {
    // Prepare: the spill directory's parent is the test's own
    spillRoot = await mkdtemp(path.join(tmpdir(), 'spill-test-'));
    const opened: string[] = [];
    const open = (file: string) => {
      opened.push(file);
      return createWriteStream(file);
    };
    rig = await startRig({ events: 3000, export: { partMaxEvents: 100, spill: { root: spillRoot, open } } });
    // Act
    const { manifest } = await stagePartitioned(rig);
    // Assess: every part of every partitioned window (the windows after the probe, then the last one) went through a
    // file under the root; none is left
    expect(manifest.partitions).toBe(8);
    const manifests = (await listKeys(rig.direct, rig.bucket, 'staging/')).filter((k) => k.endsWith('manifest.json'));
    let spilledParts = 0;
    for (const key of manifests) {
      const m = (await getJson<Manifest>(rig.direct, rig.bucket, key))!;
      if ((m.partitions ?? 1) > 1) spilledParts += m.parts.length;
    }
    expect(opened).toHaveLength(spilledParts);
    expect(opened.every((f) => f.startsWith(spillRoot!))).toBe(true);
    expect(await readdir(spillRoot)).toEqual([]);
    await rig.drainQueue();
    await assertInvariants(rig, { minWindows: 2 });
  });

  it('should abandon a window whose spill disk fills up, commit nothing of it and remove its files', async () => {
    // Prepare: the windows before the last one stage on a working disk; then the disk is full
    spillRoot = await mkdtemp(path.join(tmpdir(), 'spill-test-'));
    let diskFull = false;
    const open = (file: string) => (diskFull ? fullDisk(4096) : createWriteStream(file));
    rig = await startRig({ events: 3000, export: { partMaxEvents: 100, spill: { root: spillRoot, open } } });
    await rig.exportHandler({ from: iso(DATA_START), to: iso(LAST_WINDOW.from), mode: 'processing-time' });
    const before = await listKeys(rig.direct, rig.bucket, 'staging/');
    diskFull = true;

    // Act
    const error = await failure(rig.exportHandler({ from: iso(LAST_WINDOW.from), to: iso(LAST_WINDOW.to) }));

    // Assess: a clear error naming the full disk; no manifest, no part of the attempt, no temporary file
    expect(error.cause).toBeInstanceOf(StagingSpaceError);
    expectActionable(rig, error.message, /no space left/);
    expect(error.message).toMatch(/ephemeral storage/);
    expect(await listKeys(rig.direct, rig.bucket, 'staging/')).toEqual(before);
    expect(await readdir(spillRoot)).toEqual([]);
  });
});

/**
 * The run's one batch holds what its window receipt says was accepted, Platform holds no `_id` twice, and once
 * verified the invariants hold. Returns the window receipt.
 */
async function expectBatchDelivered(r: Rig, key: string, manifest: Manifest, batch: { records: number }) {
  const ref = r.layout.parseManifestKey(key)!;
  const window = await getJson<WindowReceipt>(
    r.direct,
    r.bucket,
    r.layout.windowReceiptKey({ ...ref, runId: manifest.runId }),
  );
  expect(batch.records).toBe(window?.accepted);
  const accepted = r.stack.aep.acceptedIds();
  expect(new Set(accepted).size).toBe(accepted.length);
  await r.verify();
  await assertInvariants(r, { minWindows: 2, requireVerified: true });
  return window;
}

/** The batches Platform holds that were not there before: id, status, file names, records. */
function newBatches(r: Rig, before: ReadonlySet<string>) {
  return Object.entries(r.stack.aep.stats.batches)
    .filter(([id]) => !before.has(id))
    .map(([id, b]) => ({ id, ...b }));
}

describe('partitioned windows, batch sink', () => {
  const batchRig = (partMaxEvents = 100, forward: { chunkRecords?: number; partConcurrency?: number } = {}) =>
    startRig({ events: 3000, export: { partMaxEvents }, forward, fanOut: true, sink: 'batch' });

  it('should forward the partitions concurrently into one Platform batch, completed once, every _id once', async () => {
    // Prepare: count the COMPLETE signals the forwarders send
    rig = await batchRig();
    const { key, manifest } = await stagePartitioned(rig);
    const before = new Set(Object.keys(rig.stack.aep.stats.batches));
    const completes: string[] = [];
    rig.beforeFetch.push((url) => void (url.includes('action=COMPLETE') && completes.push(url)));

    // Act
    const { invocations, failures } = await rig.drainQueue({ concurrency: 4 });

    // Assess: one invocation per partition after the notification's, all into the run's one batch
    expect(failures).toBe(0);
    expect(invocations).toBe(1 + 8);
    const [batch, ...others] = newBatches(rig, before);
    expect(others).toEqual([]);
    expect(batch?.status).toBe('success');
    expect(completes).toHaveLength(1);
    expect(completes[0]).toContain(batch!.id);
    // One file per part, named by its part number: a partition never writes another's file.
    const names = manifest.parts.map((_, i) => `part-${String(i).padStart(5, '0')}.json`);
    expect(batch!.files.sort()).toEqual(names);
    // Platform's verdict follows the run's one batch.
    const window = await expectBatchDelivered(rig, key, manifest, batch!);
    expect(window?.batch).toMatchObject({ id: batch!.id });
  }, 120_000);

  it('should resume a partition invocation cut short, without a second file or record', async () => {
    // Prepare: 16 partitions of about two parts, forwarded one part at a time in small chunks; the first file upload
    // takes the invocations running then past their deadline, so the uploader's next part stops at its first chunk
    rig = await batchRig(20, { chunkRecords: 10, partConcurrency: 1 });
    const { key, manifest } = await stagePartitioned(rig);
    expect(manifest.partitions).toBe(16);
    expect(manifest.parts.length).toBeGreaterThan(16);
    const before = new Set(Object.keys(rig.stack.aep.stats.batches));
    let uploads = 0;
    rig.beforeFetch.push((url) => {
      if (url.includes('/files/') && ++uploads === 1) rig!.advance(FORWARD_TIMEOUT_MS);
    });

    // Act
    const { failures } = await rig.drainQueue({ concurrency: 2 });

    // Assess: cut-short partitions came back and finished into the same batch, each part's file once
    expect(failures).toBeGreaterThan(0);
    expect(rig.forwarded.some((f) => f.partitions !== undefined && !f.complete)).toBe(true);
    const [batch, ...others] = newBatches(rig, before);
    expect(others).toEqual([]);
    expect(batch?.status).toBe('success');
    expect(batch!.files).toHaveLength(manifest.parts.length);
    await expectBatchDelivered(rig, key, manifest, batch!);
  }, 120_000);

  it('should leave no open or empty batch when every partition has nothing to send', async () => {
    // Prepare: the partitioned window is delivered, then exported again with the same events (all duplicates)
    rig = await batchRig();
    await stagePartitioned(rig);
    await rig.drainQueue({ concurrency: 4 });
    const before = new Set(Object.keys(rig.stack.aep.stats.batches));
    const ids = rig.stack.aep.acceptedIds().length;
    const again = await rig.exportHandler({ from: iso(LAST_WINDOW.from), to: iso(LAST_WINDOW.to), force: true });
    const run = (await getJson<Manifest>(rig.direct, rig.bucket, again.windows[0]!.manifestKey!))!;
    expect(run.partitions).toBe(8);

    // Act
    const { failures } = await rig.drainQueue({ concurrency: 4 });

    // Assess: the batch opened for the fan-out was aborted (ABORT, batch-ingestion.yaml), not completed empty
    expect(failures).toBe(0);
    expect(newBatches(rig, before)).toEqual([expect.objectContaining({ status: 'aborted', files: [], records: 0 })]);
    expect(Object.values(rig.stack.aep.stats.batches).some((b) => b.status === 'loading')).toBe(false);
    const ref = rig.layout.parseManifestKey(again.windows[0]!.manifestKey!)!;
    const window = await getJson<WindowReceipt>(
      rig.direct,
      rig.bucket,
      rig.layout.windowReceiptKey({ ...ref, runId: run.runId }),
    );
    expect(window).toMatchObject({ accepted: 0, byReason: { duplicate: run.events } });
    expect(window?.batch).toBeUndefined();
    expect(rig.stack.aep.acceptedIds()).toHaveLength(ids);
    await rig.verify();
    await assertInvariants(rig, { minWindows: 2, requireVerified: true });
  }, 120_000);
});
