/**
 * Reliability: forced re-export (only ids never delivered for the window are sent), replay (re-sends on purpose and
 * says so), and secrets (a full run with auth failures and retries leaves no secret in any log line, error, staged
 * object or output).
 */
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { listKeys } from '#cli/invariants';
import { forwardWindow } from '#forward/window';
import type { Receipt } from '#forward/receipt';
import { getBytes, getJson } from '#staging/s3';
import type { Manifest } from '#staging/manifest';
import {
  EXPORT_TIMEOUT_MS,
  FORWARD_TIMEOUT_MS,
  H,
  LAST_WINDOW,
  MIN,
  NOW,
  PROJECT_ID,
  type Rig,
  assertInvariants,
  dump,
  schedule,
  secretsOf,
  startRig,
} from './harness.ts';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

const range = { from: new Date(LAST_WINDOW.from).toISOString(), to: new Date(LAST_WINDOW.to).toISOString() };

describe('forced re-export and replay', () => {
  it('should deliver on "force": true only the records whose _id was never delivered for the window', async () => {
    rig = await startRig({ events: 1500 });
    await rig.exportHandler(schedule(), rig.context(EXPORT_TIMEOUT_MS));
    await rig.drainQueue();
    const before = rig.stack.aep.acceptedIds().length;
    // Mixpanel now returns three more events for the window (late in its export), and one changed copy of a known one.
    const late = [0, 1, 2].map((i) => ({
      event: 'Late arrival',
      properties: {
        time: Math.floor((LAST_WINDOW.from + 5 * MIN) / 1000),
        distinct_id: `late-${i}`,
        $insert_id: `late-${i}`,
        mp_processing_time_ms: LAST_WINDOW.from + 10 * MIN,
      },
    }));
    rig.stack.mixpanel.addEvents(PROJECT_ID, late);
    const forced = await rig.exportHandler({ ...range, force: true }, rig.context(EXPORT_TIMEOUT_MS));
    expect(forced.windows.map((w) => w.status)).toEqual(['committed']);
    await rig.drainQueue();
    const report = await assertInvariants(rig, { minWindows: 1 });
    expect(rig.stack.aep.acceptedIds().length).toBe(before + 3);
    const w = report.windows[0]!;
    expect(w.accepted).toBe(3);
    expect(w.rejected).toBe(w.exported - 3);
    // Without force, the committed window is skipped and nothing is sent.
    const again = await rig.exportHandler(range, rig.context(EXPORT_TIMEOUT_MS));
    expect(again.windows.map((x) => x.status)).toEqual(['skipped']);
    await rig.drainQueue();
    expect(rig.stack.aep.acceptedIds().length).toBe(before + 3);
  });

  it('should re-send everything on a replay, on purpose, under its own receipts marked replay', async () => {
    rig = await startRig({ events: 1500 });
    const key = (await rig.exportHandler(schedule(), rig.context(EXPORT_TIMEOUT_MS))).windows[0]!.manifestKey!;
    await rig.drainQueue();
    const once = new Set(rig.stack.aep.acceptedIds()).size;
    const ref = rig.layout.parseManifestKey(key)!;
    const result = await forwardWindow(
      ref,
      { ...rig.forwardDeps, deadlineMs: rig.now() + FORWARD_TIMEOUT_MS },
      { replay: true },
    );
    expect(result).toMatchObject({ replay: true, complete: true, accepted: once });
    expect(result.runId).toMatch(/\.replay-/);
    // Platform now holds every id twice: that is what a replay is for; the receipts say so.
    const report = await rig.invariants();
    expect(report.duplicatesAtPlatform).toBe(once);
    const receipts = await Promise.all(
      (await listKeys(rig.direct, rig.bucket, 'delivery/'))
        .filter((k) => k.includes('.replay-') && /part-\d+\.json$/.test(k))
        .map(async (k) => (await getJson<Receipt>(rig!.direct, rig!.bucket, k))!),
    );
    expect(receipts.length).toBeGreaterThan(0);
    expect(receipts.every((r) => r.replay)).toBe(true);
    expect(rig.logs.some((l) => l.message === 'window forwarded' && (l.fields[0] as { replay: boolean }).replay)).toBe(
      true,
    );
    // Everything else holds: nothing lost, checkpoint sound.
    expect(report.problems.filter((p) => !/more than once/.test(p))).toEqual([]);
  });
});

describe('secrets', () => {
  it('should leave no secret value in any log line, error, staged object or output of a full run with failures', async () => {
    rig = await startRig({ events: 800, secretIds: true, forward: { chunkRecords: 100 } });
    const outputs: unknown[] = [];
    // Failures on the way: Mixpanel refuses once (the secret is read again), IMS refuses once, a token expires
    // mid-window, DCS throttles, S3 slows down.
    rig.stack.mixpanel.injectFault({ kind: 'status', status: 401 });
    rig.stack.aep.injectFault({
      kind: 'status',
      target: 'ims',
      status: 401,
      body: { error: 'invalid_client', error_description: 'invalid client_secret parameter' },
    });
    rig.stack.aep.injectFault({ kind: 'status', target: 'dcs', status: 429, retryAfterSeconds: 1 });
    rig.proxy.inject({ op: 'put', key: /receipt|part-\d+\.json$/, action: { kind: 'status', status: 503 } });
    let dcs = 0;
    rig.beforeFetch.push((url) => {
      if (url.includes('/collection/') && ++dcs === 2) rig!.stack.aep.expireTokens();
    });
    // A bad payload and a failing window, whose errors a user reads.
    outputs.push(await rig.exportHandler({ from: 'x', to: 'y' }).catch((e: unknown) => e));
    for (let i = 0; i < 5; i++) rig.stack.mixpanel.injectFault({ kind: 'status', status: 500 });
    outputs.push(
      await rig
        .exportHandler(
          { from: new Date(NOW - 5 * H).toISOString(), to: new Date(NOW - 4 * H).toISOString() },
          rig.context(EXPORT_TIMEOUT_MS),
        )
        .catch((e: unknown) => e),
    );
    outputs.push(await rig.exportHandler(schedule(), rig.context(EXPORT_TIMEOUT_MS)).catch((e: unknown) => e));
    outputs.push(await rig.exportHandler(range, rig.context(EXPORT_TIMEOUT_MS)).catch((e: unknown) => e));
    await rig.drainQueue();
    outputs.push(rig.forwarded);
    await assertInvariants(rig, { minWindows: 1 });

    // The values to look for: both secrets and every bearer token the forwarder used.
    const secrets = secretsOf(rig);
    expect(rig.tokens.size).toBeGreaterThanOrEqual(2);
    expect(rig.secretsManager!.calls).toBeGreaterThanOrEqual(3);
    // Everything the product wrote or said.
    const logs = rig.logs.map((l) => dump(l));
    expect(logs.length).toBeGreaterThan(10);
    const objects: string[] = [];
    for (const key of await listKeys(rig.direct, rig.bucket, '')) {
      const bytes = Buffer.from((await getBytes(rig.direct, rig.bucket, key))!);
      objects.push(
        key,
        bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes).toString('utf8') : bytes.toString('utf8'),
      );
    }
    const platform = dump(rig.stack.aep.acceptedRecords());
    const haystacks = { logs: logs.join('\n'), outputs: dump(outputs), objects: objects.join('\n'), platform };
    for (const [where, text] of Object.entries(haystacks)) {
      for (const secret of secrets) expect(text.includes(secret), `a secret appears in ${where}`).toBe(false);
    }
    // The scan looked at real material: errors with advice, staged parts, receipts.
    expect(haystacks.outputs).toMatch(/was not exported/);
    expect(objects.some((o) => o.includes('"event"'))).toBe(true);
    const m = (await getJson<Manifest>(
      rig.direct,
      rig.bucket,
      (await listKeys(rig.direct, rig.bucket, 'staging/')).find((k) => k.endsWith('manifest.json'))!,
    ))!;
    expect(m.events).toBeGreaterThan(0);
  });
});
