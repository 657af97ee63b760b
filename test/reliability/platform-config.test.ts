/**
 * Reliability, Platform's configuration and Profile's limits: a refusal that hits every message for the same envelope
 * reason (wrong dataflow or schema id) is a configuration fault, not a record rejection: the window fails loudly, is
 * dead-lettered, and is delivered in full once the setting is fixed and the queue redriven. A missing AEP_FLOW_ID
 * stops before anything is sent. A Profile-enabled dataset gets no record over Profile's 10 KB event limit.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { listKeys } from '#cli/invariants';
import { Buffered } from '#cli/io';
import { runCli } from '#cli/main';
import { ConfigError, readConfig } from '#common/config';
import { createForwardDeps } from '#forward/deps';
import { createForwardHandler } from '#forward/handler';
import type { Receipt, WindowReceipt } from '#forward/receipt';
import { PROFILE_MAX_EVENT_BYTES } from '#mapping/mapper';
import { getBytes, getJson } from '#staging/s3';
import { sqsEventFor } from '#cli/pipeline';
import {
  DATA_START,
  EXPORT_TIMEOUT_MS,
  FORWARD_TIMEOUT_MS,
  MAX_RECEIVES,
  MIN,
  NOW,
  PROJECT_ID,
  type Rig,
  assertInvariants,
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

async function receipts(r: Rig): Promise<Receipt[]> {
  const keys = (await listKeys(r.direct, r.bucket, 'delivery/')).filter((k) => /part-\d+\.json$/.test(k));
  return Promise.all(keys.map(async (k) => (await getJson<Receipt>(r.direct, r.bucket, k))!));
}

async function windowReceipts(r: Rig): Promise<WindowReceipt[]> {
  const keys = (await listKeys(r.direct, r.bucket, 'delivery/')).filter((k) => k.endsWith('/window.json'));
  return Promise.all(keys.map(async (k) => (await getJson<WindowReceipt>(r.direct, r.bucket, k))!));
}

async function rejectedLines(r: Rig): Promise<Array<{ reason: string; detail: string; id?: string; line: string }>> {
  const out: Array<{ reason: string; detail: string; id?: string; line: string }> = [];
  for (const k of await listKeys(r.direct, r.bucket, 'rejected/')) {
    const text = gunzipSync((await getBytes(r.direct, r.bucket, k))!).toString('utf8');
    out.push(
      ...text
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l)),
    );
  }
  return out;
}

const dcsRequests = (r: Rig) => r.stack.aep.requests.filter((q) => q.path.startsWith('/collection/'));

/** The configuration faults the forward handler logged, with the fault it named. */
function configFaults(r: Rig): Array<{ kind: unknown; fault: unknown; message: string }> {
  return r.logs
    .filter((l) => l.level === 'error' && l.message.startsWith('Platform refused the configuration'))
    .map((l) => {
      const f = l.fields[0] as { kind: unknown; fault: unknown; error: Error };
      return { kind: f.kind, fault: f.fault, message: f.error.message };
    });
}

/**
 * Runs the queue with a setting Platform refuses, checks that nothing was rejected or marked done, then fixes the
 * setting, redrives the dead-letter queue and checks the window arrived in full, once.
 */
async function refusedThenFixed(wrong: Record<string, string>, fault: string, says: RegExp): Promise<void> {
  rig = await startRig();
  await exported(rig);
  const right = Object.fromEntries(Object.keys(wrong).map((k) => [k, rig!.stack.env[k]]));
  await rig.reconfigure(wrong);

  const first = await rig.drainQueue();

  // Loud: every receive failed, the message is dead-lettered, the fault is logged and counted.
  expect(first.failures).toBe(MAX_RECEIVES);
  expect(rig.deadLetters).toHaveLength(1);
  const faults = configFaults(rig);
  expect(faults).toHaveLength(MAX_RECEIVES);
  expect(faults[0]).toMatchObject({ kind: 'config', fault });
  expect(faults[0]!.message).toMatch(says);
  const counted = rig.metrics.filter((m) => m.name === 'PlatformConfigurationFaults');
  expect(counted).toHaveLength(MAX_RECEIVES);
  expect(counted[0]).toEqual({ name: 'PlatformConfigurationFaults', value: 1, dimensions: { ProjectId: PROJECT_ID } });
  // Nothing rejected, nothing stored, no receipt that says a line is done, no reconciliation.
  expect((await rejectedLines(rig)).filter((l) => l.reason === 'aep-rejected')).toEqual([]);
  expect(rig.stack.aep.acceptedIds()).toEqual([]);
  for (const r of await receipts(rig)) expect(r).toMatchObject({ status: 'partial', accepted: 0, linesDone: 0 });
  expect(await windowReceipts(rig)).toEqual([]);
  expect(dcsRequests(rig).length).toBeGreaterThan(0);

  // The operator fixes the setting and redrives the dead-letter queue.
  await rig.reconfigure(right);
  for (const m of rig.deadLetters.splice(0)) rig.queue.push({ ...m, receives: 0 });
  const second = await rig.drainQueue();

  expect(second.failures).toBe(0);
  await rig.verify();
  const report = await assertInvariants(rig, { minWindows: 1, requireVerified: true });
  const [window] = await windowReceipts(rig);
  expect(window!.byReason['aep-rejected']).toBeUndefined();
  expect(window!.accepted).toBeGreaterThan(0);
  // Delivered in full, once: every accepted id is at Platform exactly once.
  expect(rig.stack.aep.acceptedIds()).toHaveLength(window!.accepted);
  expect(report.duplicatesAtPlatform).toBe(0);
  expect(report.windows[0]!.accepted).toBe(window!.accepted);
}

describe('systemic refusals are configuration faults', () => {
  it('should fail loudly on a wrong dataflow id refused for every message, reject nothing, and deliver once fixed', async () => {
    await refusedThenFixed(
      { AEP_FLOW_ID: '0f0f0f0f-0000-4000-8000-000000000000' },
      'flow',
      /flowId.*Check AEP_FLOW_ID .*No record was marked rejected/s,
    );
  });

  it('should fail loudly on a wrong schema id refused for every message, reject nothing, and deliver once fixed', async () => {
    await refusedThenFixed(
      { AEP_SCHEMA_ID: 'https://ns.adobe.com/acme/schemas/00000000000000000000000000000000' },
      'schema',
      /schema.*Check AEP_SCHEMA_ID/s,
    );
  });

  it('should refuse to start without AEP_FLOW_ID, in the Lambda and in the CLI, and send nothing', async () => {
    rig = await startRig();
    const manifestKey = await exported(rig);
    const env = { ...rig.stack.env, AEP_FLOW_ID: undefined };
    const where = /AEP_FLOW_ID is required .*Sources > Dataflows.*GET \/flows.*`npm run cli -- provision` prints it/s;

    // The Lambda: reading the configuration fails, so the invocation fails and SQS redelivers the message.
    expect(() => readConfig(env, 'forward')).toThrow(ConfigError);
    expect(() => readConfig(env, 'forward')).toThrow(where);
    const handler = createForwardHandler(() => createForwardDeps(readConfig(env, 'forward'), { s3: rig!.s3 }));
    const error = await handler(sqsEventFor(rig.bucket, manifestKey)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).kind).toBe('config');

    // The CLI: a configuration error (exit 2) that says where to find the id.
    const dir = await mkdtemp(path.join(tmpdir(), 'no-flow-'));
    try {
      const io = { stdout: new Buffered(), stderr: new Buffered() };
      const windowId =
        manifestKey
          .split('/')
          .find((p) => p.startsWith('window='))
          ?.slice('window='.length) ?? '';
      const code = await runCli(['forward', '--window', windowId], env, io, { cwd: dir });
      expect(code).toBe(2);
      expect(io.stderr.text).toMatch(where);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }

    // Nothing was sent, nothing recorded.
    expect(dcsRequests(rig)).toEqual([]);
    expect(await receipts(rig)).toEqual([]);
    expect(rig.stack.aep.acceptedIds()).toEqual([]);
  });
});

describe('records without identity', () => {
  it('should count the accepted records without identity in the receipts and the reconciliation', async () => {
    // Prepare: adobe-source writes no identityMap
    rig = await startRig({ mapping: 'adobe-source' });
    await exported(rig);

    // Act
    await rig.drainQueue();

    // Assess
    await rig.verify();
    await assertInvariants(rig, { minWindows: 1, requireVerified: true });
    const [window] = await windowReceipts(rig);
    const parts = await receipts(rig);
    const unidentified = rig.stack.aep
      .acceptedRecords()
      .filter((r) => (r as { identityMap?: unknown }).identityMap === undefined);
    expect(window!.accepted).toBeGreaterThan(0);
    expect(window!.withoutIdentity).toBe(window!.accepted);
    expect(unidentified).toHaveLength(window!.accepted);
    expect(parts.reduce((n, p) => n + (p.withoutIdentity ?? 0), 0)).toBe(window!.withoutIdentity);
    expect(rig.forwarded.at(-1)!.withoutIdentity).toBe(window!.accepted);
  });

  it('should reject them as no-identity when the dataset is Profile-enabled, and reconcile', async () => {
    // Prepare
    rig = await startRig({ mapping: 'adobe-source', env: { AEP_PROFILE_ENABLED: 'true' } });
    await exported(rig);

    // Act
    await rig.drainQueue();

    // Assess: nothing reached Platform, every mapped record is kept in rejected/ with the reason
    await rig.verify();
    await assertInvariants(rig, { minWindows: 1, requireVerified: true });
    const [window] = await windowReceipts(rig);
    expect(window!.accepted).toBe(0);
    expect(window!.byReason['no-identity']).toBeGreaterThan(0);
    expect(rig.stack.aep.acceptedIds()).toEqual([]);
    const reasons = (await rejectedLines(rig)).filter((l) => l.reason === 'no-identity');
    expect(reasons).toHaveLength(window!.byReason['no-identity']!);
    expect(reasons[0]!.detail).toMatch(/AEP_PROFILE_ENABLED=true/);
  });
});

describe("Profile's limits", () => {
  it('should reject records over 10 KB before sending to a Profile-enabled dataset, and reconcile', async () => {
    rig = await startRig({
      stack: {
        profile: true,
        dataset: { seed: 7, count: 1500, start: DATA_START, end: NOW - 30 * MIN, largeFraction: 0.05 },
      },
    });
    await exported(rig);

    const { failures } = await rig.drainQueue({ timeoutMs: FORWARD_TIMEOUT_MS });

    expect(failures).toBe(0);
    await rig.verify();
    await assertInvariants(rig, { minWindows: 1, requireVerified: true });
    const tooLarge = (await rejectedLines(rig)).filter((l) => l.reason === 'too-large-for-profile');
    expect(tooLarge.length).toBeGreaterThan(0);
    for (const l of tooLarge) {
      expect(l.detail).toMatch(
        new RegExp(`the record is \\d+ bytes, over the ${PROFILE_MAX_EVENT_BYTES}-byte .*Profile`),
      );
      const bytes = Number(/is (\d+) bytes/.exec(l.detail)![1]);
      expect(bytes).toBeGreaterThan(PROFILE_MAX_EVENT_BYTES);
    }
    // None of them reached Platform, and Platform's own Profile check refused nothing (none was sent).
    const atPlatform = new Set(rig.stack.aep.acceptedIds());
    const [window] = await windowReceipts(rig);
    expect(window!.byReason['too-large-for-profile']).toBe(tooLarge.length);
    expect(atPlatform.size).toBe(window!.accepted);
    expect(rig.stack.aep.stats.recordsFailedValidation ?? 0).toBe(0);
  });
});
