/**
 * Windows sized to fit, end to end (Mixpanel emulator → export handler → s3rver): a busy day is exported in sub-day
 * windows that hold every event of the day exactly once, and a window that runs out of Lambda time is planned again
 * smaller instead of being retried at the same size.
 */
import { gunzipSync } from 'node:zlib';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import type { Context } from 'aws-lambda';
import { afterEach, describe, expect, it } from 'vitest';
import { listKeys } from '#cli/invariants';
import { type MixpanelEvent, generateDataset } from '#emulators/mixpanel/generator';
import type { Manifest } from '#staging/manifest';
import { getJson } from '#staging/s3';
import { H, NOW, PROJECT_ID, type Rig, assertInvariants, failure, schedule, startRig } from './harness.ts';

let rig: Rig | undefined;
afterEach(async () => {
  await rig?.close();
  rig = undefined;
});

/** The last settled event-time day at NOW (2026-11-20T12:10Z): 2026-11-19, UTC. */
const DAY = { from: Date.parse('2026-11-19T00:00:00Z'), to: Date.parse('2026-11-20T00:00:00Z') };
const dataset = (count: number) => ({ seed: 5, count, start: DAY.from, end: DAY.to });

/** Staged lines of every committed event-time window, by window id. */
async function stagedLines(r: Rig, manifestKeys?: readonly string[]): Promise<Map<string, string[]>> {
  const keys =
    manifestKeys ??
    (await listKeys(r.direct, r.bucket, `staging/project=${PROJECT_ID}/mode=event-time/`)).filter((k) =>
      k.endsWith('manifest.json'),
    );
  const out = new Map<string, string[]>();
  for (const key of keys) {
    const m = (await getJson<Manifest>(r.direct, r.bucket, key))!;
    const lines: string[] = [];
    for (const part of m.parts) {
      const got = await r.direct.send(new GetObjectCommand({ Bucket: r.bucket, Key: part.key }));
      const text = gunzipSync(Buffer.from(await got.Body!.transformToByteArray())).toString('utf8');
      lines.push(...text.split('\n').filter((l) => l !== ''));
    }
    out.set(m.window.id, lines);
  }
  return out;
}

/** The checkpoint knows a rate already (an earlier window was committed): the run plans no probe. */
async function knownRate(r: Rig, eventsPerMinute: number): Promise<void> {
  const checkpoint = await r.exportDeps.state.read();
  await r.exportDeps.state.write({
    ...checkpoint,
    'event-time': { ...checkpoint['event-time'], eventsPerMinute },
  });
}

const eventAt = (iso: string, id: string): MixpanelEvent => ({
  event: 'Boundary',
  properties: {
    time: Date.parse(iso) / 1000,
    distinct_id: `boundary-${id}`,
    $insert_id: `boundary-${id}`,
    mp_processing_time_ms: Date.parse(iso) + 1000,
  },
});

describe('sub-day event-time windows', () => {
  it('should export every event of a busy day once across its sub-day windows, boundaries included', async () => {
    // Prepare: ~25k events a day under a ceiling of 10,000 per query; events on and around every boundary
    rig = await startRig({
      env: { WINDOW_MODE: 'event-time', MAX_EVENTS_PER_EXPORT: '10000' },
      stack: { dataset: dataset(25_000) },
    });
    const edges = [
      '2026-11-18T23:59:59Z',
      '2026-11-19T00:00:00Z',
      '2026-11-19T07:59:59Z',
      '2026-11-19T08:00:00Z',
      '2026-11-19T15:59:59Z',
      '2026-11-19T16:00:00Z',
      '2026-11-19T23:59:59Z',
      '2026-11-20T00:00:00Z',
    ];
    rig.stack.mixpanel.addEvents(
      PROJECT_ID,
      edges.map((iso, i) => eventAt(iso, String(i))),
    );
    const range = { from: new Date(DAY.from).toISOString(), to: new Date(DAY.to).toISOString(), mode: 'event-time' };
    await knownRate(rig, 1);

    // Act: the day once whole (a quiet rate known), then again, sized by the rate that export observed
    const whole = await rig.exportHandler(range, rig.context(15 * 60_000));
    const split = await rig.exportHandler({ ...range, force: true }, rig.context(15 * 60_000));

    // Assess: three 8-hour windows (~25k a day is ~17 a minute: 480 minutes hold ~8.3k ≤ 10k, 720 minutes more)
    expect(whole.windows.map((w) => w.id)).toEqual(['20261119T000000Z_20261120T000000Z']);
    expect(split.windows.map((w) => w.id)).toEqual([
      '20261119T000000Z_20261119T080000Z',
      '20261119T080000Z_20261119T160000Z',
      '20261119T160000Z_20261120T000000Z',
    ]);
    expect(split.windows.every((w) => w.query?.where?.includes('number(properties["time"]) >= '))).toBe(true);
    const staged = await stagedLines(rig);
    const wholeLines = staged.get(whole.windows[0]!.id)!;
    const splitLines = split.windows.flatMap((w) => staged.get(w.id)!);
    // The same lines, as many times each: nothing lost at a boundary, nothing in two windows
    expect([...splitLines].sort()).toEqual([...wholeLines].sort());
    expect(splitLines.length).toBeGreaterThan(20_000);
    const windowOf = (id: string): string[] =>
      split.windows.map((w) => w.id).filter((w) => staged.get(w)!.some((l) => l.includes(`"boundary-${id}"`)));
    expect(edges.map((_, i) => windowOf(String(i)))).toEqual([
      [],
      ['20261119T000000Z_20261119T080000Z'],
      ['20261119T000000Z_20261119T080000Z'],
      ['20261119T080000Z_20261119T160000Z'],
      ['20261119T080000Z_20261119T160000Z'],
      ['20261119T160000Z_20261120T000000Z'],
      ['20261119T160000Z_20261120T000000Z'],
      [],
    ]);
  });
});

describe('a window that runs out of time', () => {
  it('should be planned again in smaller windows by the next runs, never at the same size', async () => {
    // Prepare: ~3,000 events on the day; each invocation has 120 s and spends 50 ms per line Mixpanel sends (an
    // injected deadline: the whole day needs ~150 s, half of it ~75 s)
    rig = await startRig({ env: { WINDOW_MODE: 'event-time' }, stack: { dataset: dataset(3000) } });
    const r = rig;
    await knownRate(r, 3000 / 1440);
    const served = (): number => r.stack.mixpanel.requests.reduce((n, q) => n + q.eventsServed, 0);
    const lambda = (): Pick<Context, 'getRemainingTimeInMillis'> => {
      const start = served();
      return { getRemainingTimeInMillis: () => 120_000 - (served() - start) * 50 };
    };
    const dayEvents = [...generateDataset({ ...dataset(3000), projectTimezone: 'UTC' })].filter((e) => {
      const ms = Number(e.properties.time) * 1000;
      return ms >= DAY.from && ms < DAY.to;
    }).length;

    // Act 1: the scheduled run tries the whole day and runs out of time
    const error = await failure(r.exportHandler(schedule(NOW), lambda()));

    // Assess 1: nothing committed, and the next runs plan the day in halves
    expect(error.message).toMatch(/deadline is near.*windows of at most 720 minutes/);
    const state = await getJson<{ 'event-time': { sizeHint?: { maxSpanMinutes: number; window: string } } }>(
      r.direct,
      r.bucket,
      r.layout.checkpointKey(PROJECT_ID),
    );
    expect(state?.['event-time'].sizeHint).toMatchObject({
      maxSpanMinutes: 720,
      window: '20261119T000000Z_20261120T000000Z',
    });
    expect(await stagedLines(r)).toEqual(new Map());

    // Act 2: the next two scheduled runs, each with the same 120 s
    r.advance(H);
    const second = await r.exportHandler(schedule(r.now()), lambda());
    r.advance(H);
    const third = await r.exportHandler(schedule(r.now()), lambda());

    // Assess 2: a half per run (the first half left too little time to start the second), then done
    expect(second.windows.map((w) => [w.id, w.status])).toEqual([['20261119T000000Z_20261119T120000Z', 'committed']]);
    expect(second.remaining).toMatchObject({ reason: 'deadline', to: new Date(DAY.to).toISOString() });
    expect(third.windows.map((w) => [w.id, w.status])).toEqual([['20261119T120000Z_20261120T000000Z', 'committed']]);
    expect(third.remaining).toBeUndefined();
    // The whole day was asked for once only; every event of the day is staged once
    const asked = r.stack.mixpanel.requests.map((q) => q.query.where ?? '');
    expect(asked.filter((w) => !w.includes('properties["time"]'))).toHaveLength(1);
    const staged = await stagedLines(r);
    expect([...staged.values()].reduce((n, lines) => n + lines.length, 0)).toBe(dayEvents);
  });
});

describe('the first window of a project with no rate', () => {
  it('should be a probe, and the windows after it of a busy first backfill are staged in partitions', async () => {
    // Prepare: nothing committed (no rate); ~3,000 events on the day, parts of 100 events
    rig = await startRig({
      env: { WINDOW_MODE: 'event-time' },
      stack: { dataset: dataset(3000) },
      export: { partMaxEvents: 100 },
    });
    const range = { from: new Date(DAY.from).toISOString(), to: new Date(DAY.to).toISOString(), mode: 'event-time' };

    // Act
    const run = await rig.exportHandler(range, rig.context(15 * 60_000));

    // Assess: an hour first, selected by a where on the event time; the rest of the day in windows sized by the
    // probe's rate, each staged in partitions; together every event of the day, once
    const [probe, ...after] = run.windows;
    expect(probe).toMatchObject({ id: '20261119T000000Z_20261119T010000Z', status: 'committed' });
    expect(probe!.query?.where).toContain('number(properties["time"]) >= ');
    expect(after.length).toBeGreaterThan(0);
    expect(after[0]!.from).toBe(probe!.to);
    expect(after.at(-1)!.to).toBe(new Date(DAY.to).toISOString());
    const manifests = await Promise.all(
      run.windows.map(async (w) => (await getJson<Manifest>(rig!.direct, rig!.bucket, w.manifestKey!))!),
    );
    expect(manifests[0]!.partitions).toBeUndefined();
    expect(manifests.slice(1).every((m) => (m.partitions ?? 1) > 1)).toBe(true);
    expect(rig.logs.some((l) => l.message.startsWith('probe window exported'))).toBe(true);
    const dayEvents = [...generateDataset({ ...dataset(3000), projectTimezone: 'UTC' })].filter((e) => {
      const ms = Number(e.properties.time) * 1000;
      return ms >= DAY.from && ms < DAY.to;
    }).length;
    expect(manifests.reduce((n, m) => n + m.events, 0)).toBe(dayEvents);

    // Forwarded as usual: the invariants hold
    await rig.drainQueue();
    await assertInvariants(rig, { minWindows: run.windows.length });
  });
});
