/**
 * Reliability, batch sink: a part with nothing to send contributes no file and a run with nothing to send creates no
 * batch, since Platform fails a whole batch holding an empty file (error 106, AdobeDocs/experience-platform.en
 * help/ingestion/batch-ingestion/troubleshooting.md); the AEP emulator answers so. Each scenario ends with the
 * invariants: `exported = accepted + rejected + quarantined`, nothing delivered twice.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  batchesAtPlatform,
  forceReexport,
  forwardScheduledWindow,
  runReceipts,
  runSavedBatch,
  startBatchRig,
} from './batch-scenarios.ts';
import { type Rig, assertInvariants } from './harness.ts';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

describe('batch sink: an empty part', () => {
  it('should create no batch for a forced re-export whose records were all delivered already', async () => {
    // Prepare: the window is delivered in one batch
    rig = await startBatchRig();
    const first = await forwardScheduledWindow(rig);
    const [delivered] = batchesAtPlatform(rig);
    const ids = rig.stack.aep.acceptedIds().length;

    // Act: Mixpanel returns the same events again; every record of the new run is a duplicate
    const again = await forceReexport(rig, 0);

    // Assess: no second batch, no batch.json, and the reconciliation names no batch
    expect(batchesAtPlatform(rig)).toEqual([delivered]);
    expect(delivered).toMatchObject({ status: 'success' });
    const { window, parts } = await runReceipts(rig, again);
    expect(parts.length).toBeGreaterThan(1);
    expect(window.accepted).toBe(0);
    expect(window.rejected).toBe(window.events);
    expect(window.byReason).toEqual({ duplicate: window.events });
    expect(window.batch).toBeUndefined();
    expect(await runSavedBatch(rig, again)).toBe(false);
    expect((await runReceipts(rig, first)).window.batch).toMatchObject({ id: delivered!.id, status: 'success' });
    expect(rig.stack.aep.acceptedIds().length).toBe(ids);
    // Platform's verdict closes the reconciliation: exported = ingested + failed at Platform + rejected + quarantined.
    await rig.verify();
    await assertInvariants(rig, { minWindows: 1, requireVerified: true });
  });

  it('should upload a file only for the parts with records to send, and the batch succeeds', async () => {
    // Prepare
    rig = await startBatchRig();
    await forwardScheduledWindow(rig);
    const ids = rig.stack.aep.acceptedIds().length;

    // Act: three late events join the window; the other records of the new run are duplicates
    const again = await forceReexport(rig, 3);

    // Assess: one file per part that accepted records, none for the parts of duplicates only
    const { window, parts } = await runReceipts(rig, again);
    const sending = parts.filter((p) => p.accepted > 0);
    expect(sending.length).toBeGreaterThan(0);
    expect(parts.length).toBeGreaterThan(sending.length);
    const second = batchesAtPlatform(rig).find((b) => b.id === window.batch?.id);
    expect(second).toMatchObject({ status: 'success', records: 3 });
    expect(second!.files).toHaveLength(sending.length);
    expect(second!.files.sort()).toEqual(sending.map((p) => `part-${String(p.part).padStart(5, '0')}.json`).sort());
    expect(batchesAtPlatform(rig).every((b) => b.status === 'success')).toBe(true);
    expect(window.accepted).toBe(3);
    expect(rig.stack.aep.acceptedIds().length).toBe(ids + 3);
    // Platform's verdict closes the reconciliation: exported = ingested + failed at Platform + rejected + quarantined.
    await rig.verify();
    await assertInvariants(rig, { minWindows: 1, requireVerified: true });
  });
});
