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
 * Stages the data before the last window in one run (no rate known yet: one partition) and forwards it, then stages
 * the last window, which the observed rate now splits into partitions. Returns the last window's manifest.
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
    expect(rig.forwarded.find((f) => f.fannedOut !== undefined)?.fannedOut).toBe(8);
    const perPartition = rig.forwarded.filter((f) => f.partitions !== undefined);
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
    // Assess: every part of the partitioned window went through a file under the root; none is left
    expect(manifest.partitions).toBe(8);
    expect(opened).toHaveLength(manifest.parts.length);
    expect(opened.every((f) => f.startsWith(spillRoot!))).toBe(true);
    expect(await readdir(spillRoot)).toEqual([]);
    await rig.drainQueue();
    await assertInvariants(rig, { minWindows: 2 });
  });

  it('should abandon a window whose spill disk fills up, commit nothing of it and remove its files', async () => {
    // Prepare: the first window stages in one partition (no spill); the partitioned one meets a full disk
    spillRoot = await mkdtemp(path.join(tmpdir(), 'spill-test-'));
    const open = () => fullDisk(4096);
    rig = await startRig({ events: 3000, export: { partMaxEvents: 100, spill: { root: spillRoot, open } } });
    await rig.exportHandler({ from: iso(DATA_START), to: iso(LAST_WINDOW.from), mode: 'processing-time' });
    const before = await listKeys(rig.direct, rig.bucket, 'staging/');

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
