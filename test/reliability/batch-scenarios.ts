/**
 * Setup shared by the batch sink's reliability scenarios: a rig with the batch sink, the scheduled window forwarded,
 * a forced re-export of it, and what Platform and the receipts then hold. Kept apart from the tests so further
 * scenarios (Platform's verdict on the same batches) can reuse it.
 */
import { expect } from 'vitest';
import { listKeys } from '#cli/invariants';
import type { Receipt, WindowReceipt } from '#forward/receipt';
import type { Manifest } from '#staging/manifest';
import { getJson } from '#staging/s3';
import {
  EXPORT_TIMEOUT_MS,
  LAST_WINDOW,
  MIN,
  PROJECT_ID,
  type Rig,
  type RigOptions,
  schedule,
  startRig,
} from './harness.ts';

/** A rig whose forwarder uses the batch sink, with parts small enough that a window has several. */
export function startBatchRig(o: RigOptions = {}): Promise<Rig> {
  return startRig({ sink: 'batch', export: { partMaxEvents: 100 }, ...o });
}

/** One export run of a window: its delivery folder holds the run's receipts, `window.json` and `batch.json`. */
export interface Run {
  readonly manifestKey: string;
  readonly runId: string;
  readonly prefix: string;
}

/** The run a manifest key names now (a forced re-export replaces the manifest: read it right after the export). */
async function runOf(r: Rig, manifestKey: string): Promise<Run> {
  const { runId } = (await getJson<Manifest>(r.direct, r.bucket, manifestKey))!;
  const prefix = `${r.layout.deliveryPrefix(r.layout.parseManifestKey(manifestKey)!)}run=${runId}/`;
  return { manifestKey, runId, prefix };
}

/** Exports the scheduled window and forwards it. */
export async function forwardScheduledWindow(r: Rig): Promise<Run> {
  const result = await r.exportHandler(schedule(), r.context(EXPORT_TIMEOUT_MS));
  expect(result.windows.map((w) => w.status)).toEqual(['committed']);
  const run = await runOf(r, result.windows[0]!.manifestKey!);
  await r.drainQueue();
  return run;
}

/**
 * Re-exports the scheduled window with `force` after Mixpanel learnt `late` new events of it, and forwards the new
 * run. With `late: 0` every record of the new run is a duplicate: it has nothing to send.
 */
export async function forceReexport(r: Rig, late: number): Promise<Run> {
  const events = Array.from({ length: late }, (_, i) => ({
    event: 'Late arrival',
    properties: {
      time: Math.floor((LAST_WINDOW.from + 5 * MIN) / 1000),
      distinct_id: `late-${i}`,
      $insert_id: `late-${i}`,
      mp_processing_time_ms: LAST_WINDOW.from + 10 * MIN,
    },
  }));
  if (late > 0) r.stack.mixpanel.addEvents(PROJECT_ID, events);
  const range = { from: new Date(LAST_WINDOW.from).toISOString(), to: new Date(LAST_WINDOW.to).toISOString() };
  const forced = await r.exportHandler({ ...range, force: true }, r.context(EXPORT_TIMEOUT_MS));
  expect(forced.windows.map((w) => w.status)).toEqual(['committed']);
  const run = await runOf(r, forced.windows[0]!.manifestKey!);
  await r.drainQueue();
  return run;
}

/** The batches the AEP emulator holds: id, status, file names and records. */
export function batchesAtPlatform(r: Rig): Array<{ id: string; status: string; files: string[]; records: number }> {
  return Object.entries(r.stack.aep.stats.batches).map(([id, b]) => ({ id, ...b }));
}

/** The run's reconciliation (`window.json`), and the receipts of its parts in part order. */
export async function runReceipts(r: Rig, run: Run): Promise<{ window: WindowReceipt; parts: Receipt[] }> {
  const window = (await getJson<WindowReceipt>(r.direct, r.bucket, `${run.prefix}window.json`))!;
  const keys = (await listKeys(r.direct, r.bucket, run.prefix)).filter((k) => /part-\d+\.json$/.test(k)).sort();
  const parts = await Promise.all(keys.map(async (k) => (await getJson<Receipt>(r.direct, r.bucket, k))!));
  return { window, parts };
}

/** Whether the run saved a batch (`batch.json`). */
export async function runSavedBatch(r: Rig, run: Run): Promise<boolean> {
  return (await getJson(r.direct, r.bucket, `${run.prefix}batch.json`)) !== undefined;
}
