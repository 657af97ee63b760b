/**
 * Reliability, bad input: malformed export lines (each ends in quarantine/ or rejected/ with a reason, nothing lost),
 * bad manual payloads, bad configuration, a bad mapping file, malformed SQS/S3 messages and damaged staging.
 */
import { gunzipSync } from 'node:zlib';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterEach, describe, expect, it } from 'vitest';
import { listKeys } from '#cli/invariants';
import { ConfigError, readConfig } from '#common/config';
import { createForwardDeps } from '#forward/deps';
import type { WindowReceipt } from '#forward/receipt';
import { getBytes, getJson } from '#staging/s3';
import type { Manifest } from '#staging/manifest';
import { createForwardHandler } from '#forward/handler';
import {
  EXPORT_TIMEOUT_MS,
  FORWARD_TIMEOUT_MS,
  H,
  MIN,
  NOW,
  PROJECT_ID,
  type Rig,
  assertInvariants,
  dump,
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

const DAY = new Date(NOW).toISOString().slice(0, 10);
/** Inside the window the scheduled run at NOW exports ([10:00, 11:00)). */
const PROCESSED = NOW - 100 * MIN;
const SECONDS = Math.floor((NOW - 110 * MIN) / 1000);
const event = (name: string, props: Record<string, unknown>) =>
  JSON.stringify({ event: name, properties: { mp_processing_time_ms: PROCESSED, ...props } });

async function gzLines(r: Rig, prefix: string): Promise<Array<Record<string, unknown>>> {
  const out: Array<Record<string, unknown>> = [];
  for (const k of await listKeys(r.direct, r.bucket, prefix)) {
    if (!k.endsWith('.gz')) continue;
    out.push(
      ...gunzipSync((await getBytes(r.direct, r.bucket, k))!)
        .toString('utf8')
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    );
  }
  return out;
}

describe('bad export lines', () => {
  it('should quarantine or reject every malformed line with a reason, deliver the good ones, and lose nothing', async () => {
    rig = await startRig({ events: 400 });
    const nested = `{"event":"Deep","properties":{"mp_processing_time_ms":${PROCESSED},"time":${SECONDS},"distinct_id":"deep","$insert_id":"deep-1","n":${'['.repeat(20_000)}${']'.repeat(20_000)}}}`;
    const wide = Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`p${i}`, `value-${i}`]));
    const invalidUtf8 = Buffer.concat([
      Buffer.from(
        `{"event":"Bytes","properties":{"mp_processing_time_ms":${PROCESSED},"time":${SECONDS},"distinct_id":"caf`,
      ),
      Buffer.from([0xc3, 0x28, 0xff]),
      Buffer.from('","$insert_id":"utf-1"}}'),
    ]);
    const lines: Array<{ line: string | Uint8Array; expect: string }> = [
      { line: 'not json at all', expect: 'quarantine:not-json' },
      { line: '[1,2,3]', expect: 'quarantine:not-an-object' },
      { line: '"just a string"', expect: 'quarantine:not-an-object' },
      {
        line: JSON.stringify({ properties: { time: SECONDS, mp_processing_time_ms: PROCESSED } }),
        expect: 'quarantine:missing-event',
      },
      { line: JSON.stringify({ event: 'No properties' }), expect: 'quarantine:missing-properties' },
      { line: JSON.stringify({ event: 'Null properties', properties: null }), expect: 'quarantine:missing-properties' },
      { line: JSON.stringify({ event: 'Empty properties', properties: {} }), expect: 'quarantine:outside-window' },
      { line: invalidUtf8, expect: 'quarantine:invalid-utf8' },
      { line: event('No time', { distinct_id: 'a', $insert_id: 'no-time' }), expect: 'rejected:missing-time' },
      {
        line: event('Text time', { time: 'yesterday', distinct_id: 'a', $insert_id: 'text-time' }),
        expect: 'rejected:invalid-time',
      },
      {
        line: event('Null time', { time: null, distinct_id: 'a', $insert_id: 'null-time' }),
        expect: 'rejected:missing-time',
      },
      {
        line: event('Future', { time: Math.floor((NOW + 10 * 24 * H) / 1000), distinct_id: 'a', $insert_id: 'future' }),
        expect: 'rejected:future-time',
      },
      {
        line: event('Huge', { time: SECONDS, distinct_id: 'a', $insert_id: 'huge', blob: 'x'.repeat(1_100_000) }),
        expect: 'rejected:record-too-large',
      },
      { line: nested, expect: 'rejected:unmappable' },
      {
        line: event('Millis', { time: SECONDS * 1000 + 123, distinct_id: 'ms', $insert_id: 'millis' }),
        expect: 'accepted',
      },
      { line: event('Wide', { time: SECONDS, distinct_id: 'w', $insert_id: 'wide', ...wide }), expect: 'accepted' },
      {
        line: event('Null values', {
          time: SECONDS,
          distinct_id: 'n',
          $insert_id: 'nulls',
          a: null,
          b: '',
          c: [],
          d: {},
        }),
        expect: 'accepted',
      },
      // The same $insert_id on different events: different dedupe tuples, so both are delivered.
      {
        line: event('Signed up', { time: SECONDS, distinct_id: 'u1', $insert_id: 'same-insert-id' }),
        expect: 'accepted',
      },
      {
        line: event('Logged in', { time: SECONDS, distinct_id: 'u2', $insert_id: 'same-insert-id' }),
        expect: 'accepted',
      },
      // An exact repeat (Mixpanel returns them): staged (verbatim audit trail), sent once, the repeat rejected as duplicate.
      {
        line: event('Signed up', { time: SECONDS, distinct_id: 'u1', $insert_id: 'same-insert-id' }),
        expect: 'rejected:duplicate',
      },
    ];
    rig.stack.mixpanel.addRawLines(
      PROJECT_ID,
      lines.map((l) => ({ line: l.line, date: DAY })),
    );
    const result = await rig.exportHandler(schedule(), rig.context(EXPORT_TIMEOUT_MS));
    await rig.drainQueue();
    const report = await assertInvariants(rig, { minWindows: 1 });
    const w = report.windows[0]!;

    // Quarantine: exactly the lines that are not events of the window, with their reasons; raw bytes kept when not UTF-8.
    const quarantined = await gzLines(rig, 'quarantine/');
    const wantQ = lines
      .filter((l) => l.expect.startsWith('quarantine:'))
      .map((l) => l.expect.slice(11))
      .sort();
    expect(quarantined.map((q) => q.reason).sort()).toEqual(wantQ);
    expect(result.windows[0]!.quarantined).toBe(wantQ.length);
    const utf = quarantined.find((q) => q.reason === 'invalid-utf8')!;
    expect(Buffer.from(utf.lineBase64 as string, 'base64').equals(invalidUtf8)).toBe(true);
    for (const q of quarantined) expect(String(q.detail)).not.toBe('');

    // Rejected: the staged events that cannot be delivered, each with a reason and a detail; the generator's own
    // duplicates come back as `duplicate` too.
    const rejected = await gzLines(rig, 'rejected/');
    const wantR = lines.filter((l) => l.expect.startsWith('rejected:')).map((l) => l.expect.slice(9));
    for (const reason of new Set(wantR))
      expect(rejected.filter((r) => r.reason === reason).length, reason).toBeGreaterThanOrEqual(
        wantR.filter((x) => x === reason).length,
      );
    expect(
      rejected
        .filter((r) => r.reason !== 'duplicate')
        .map((r) => r.reason)
        .sort(),
    ).toEqual(wantR.filter((r) => r !== 'duplicate').sort());
    expect(rejected.find((r) => r.reason === 'future-time')!.detail).toMatch(
      /later than now.*refuses ExperienceEvents dated in the future/,
    );
    expect(rejected.find((r) => r.reason === 'record-too-large')!.detail).toMatch(/over the 1000000-byte limit/);
    expect(rejected.every((r) => typeof r.detail === 'string' && r.detail !== '')).toBe(true);

    // Accepted: the good ones, with the right instant for a `time` in milliseconds.
    const records = rig.stack.aep.acceptedRecords() as Array<{
      _id: string;
      timestamp: string;
      _acme: { mixpanel: { eventName: string; insertId?: string } };
    }>;
    const byName = (n: string) => records.filter((r) => r._acme.mixpanel.eventName === n);
    expect(byName('Millis')[0]!.timestamp).toBe(new Date(SECONDS * 1000 + 123).toISOString());
    expect(byName('Wide')).toHaveLength(1);
    expect(byName('Null values')).toHaveLength(1);
    expect(byName('Signed up')).toHaveLength(1);
    expect(byName('Logged in')).toHaveLength(1);
    expect(byName('Signed up')[0]!._id).not.toBe(byName('Logged in')[0]!._id);
    // The reconciliation, as the window receipt states it.
    const summary = (await getJson<WindowReceipt>(
      rig.direct,
      rig.bucket,
      rig.layout.windowReceiptKey({
        projectId: PROJECT_ID,
        mode: 'processing-time',
        windowId: w.window,
        runId: w.runId,
      }),
    ))!;
    expect(summary).toMatchObject({
      exported: w.lines,
      quarantined: wantQ.length,
      accepted: w.accepted,
      rejected: w.rejected,
    });
    expect(summary.exported).toBe(summary.accepted + summary.rejected + summary.quarantined);
    expect(summary.quarantinedByReason).toMatchObject({ 'invalid-utf8': 1, 'not-json': 1 });
    expect(summary.byReason).toMatchObject({ 'future-time': 1, 'record-too-large': 1, 'missing-time': 2 });
    // … and as the log says it.
    const logged = rig.logs.find((l) => l.message === 'window forwarded')!.fields[0] as Record<string, number>;
    expect(logged).toMatchObject({
      exported: summary.exported,
      quarantined: summary.quarantined,
      accepted: summary.accepted,
      rejected: summary.rejected,
      retried: summary.retried,
    });
  });
});

describe('a line the mapper fails on', () => {
  it('should keep that line in rejected/ with the error and deliver the rest, not fail the part on every redelivery', async () => {
    // Prepare: a mapper that throws on one event (the mapper itself never should: this guards against a bug in it)
    rig = await startRig({ events: 60 });
    const deps = rig.forwardDeps as { mapperFor: typeof rig.forwardDeps.mapperFor };
    const real = deps.mapperFor;
    deps.mapperFor = (manifest) => {
      const mapper = real(manifest);
      return (e) => {
        if ((e as { event?: unknown }).event === 'Poison') throw new RangeError('Invalid time value');
        return mapper(e);
      };
    };
    rig.stack.mixpanel.addRawLines(PROJECT_ID, [
      { line: event('Poison', { time: SECONDS, distinct_id: 'p', $insert_id: 'poison' }), date: DAY },
    ]);
    // Act
    await rig.exportHandler(schedule(), rig.context(EXPORT_TIMEOUT_MS));
    await rig.drainQueue();
    // Assess: every window complete, nothing lost, and the poison line kept with the error
    await assertInvariants(rig, { minWindows: 1 });
    expect(rig.forwarded.every((f) => f.complete)).toBe(true);
    const unmappable = (await gzLines(rig, 'rejected/')).filter((r) => r.reason === 'unmappable');
    expect(unmappable).toHaveLength(1);
    expect(unmappable[0]!.detail).toBe('the mapper failed on this line: Invalid time value');
    expect(String(unmappable[0]!.line)).toContain('"Poison"');
  });
});

describe('bad manual payloads', () => {
  it.each([
    {
      name: 'from after to',
      event: { from: '2026-11-20T05:00:00Z', to: '2026-11-20T04:00:00Z' },
      error: /"from" must be before "to"/,
    },
    {
      name: 'from equal to to',
      event: { from: '2026-11-20T05:00:00Z', to: '2026-11-20T05:00:00Z' },
      error: /"from" must be before "to"/,
    },
    {
      name: 'unparsable from',
      event: { from: 'yesterday', to: '2026-11-20T05:00:00Z' },
      error: /"from" must be an ISO-8601 time/,
    },
    {
      name: 'impossible date',
      event: { from: '2026-13-45T00:00:00Z', to: '2026-11-20T05:00:00Z' },
      error: /"from" must be an ISO-8601 time/,
    },
    {
      name: 'time without a zone',
      event: { from: '2026-11-20T04:00:00', to: '2026-11-20T05:00:00Z' },
      error: /with a zone/,
    },
    {
      name: 'range over the 400-day maximum',
      event: { from: '2024-01-01T00:00:00Z', to: '2026-11-20T05:00:00Z' },
      error: /more than 400 days: split it/,
    },
    {
      name: 'range past the last settled window',
      event: { from: '2026-11-20T04:00:00Z', to: '2026-11-21T05:00:00Z' },
      error: /later than the last settled .* choose an earlier "to"/,
    },
    {
      name: 'unknown field',
      event: { from: '2026-11-20T04:00:00Z', to: '2026-11-20T05:00:00Z', frm: 'x' },
      error: /unknown field\(s\) "frm"/,
    },
    {
      name: 'force not a boolean',
      event: { from: '2026-11-20T04:00:00Z', to: '2026-11-20T05:00:00Z', force: 'yes' },
      error: /"force" must be true or false/,
    },
    {
      name: 'unknown mode',
      event: { from: '2026-11-20T04:00:00Z', to: '2026-11-20T05:00:00Z', mode: 'ingest-time' },
      error: /"mode" must be "processing-time" or "event-time"/,
    },
    { name: 'schedule without scheduledTime', event: { source: 'schedule' }, error: /scheduledTime/ },
    { name: 'an array', event: [1, 2], error: /must be a JSON object/ },
    { name: 'null', event: null, error: /must be a JSON object/ },
  ])('should refuse a manual payload with $name, naming the problem, and write nothing', async ({ event, error }) => {
    rig = await startRig({ events: 50 });
    const e = await failure(rig.exportHandler(event, rig.context(EXPORT_TIMEOUT_MS)));
    expectActionable(rig, e.message, error);
    expect(await listKeys(rig.direct, rig.bucket, '')).toEqual([]);
    expect(rig.stack.mixpanel.requests).toEqual([]);
  });
});

describe('bad configuration and mapping', () => {
  it('should name every bad variable at once, with what it expects, and never echo a secret', () => {
    const secret = 'super-secret-value-123';
    const e = (() => {
      try {
        readConfig(
          {
            MIXPANEL_PROJECT_ID: 'abc',
            MIXPANEL_REGION: 'mars',
            MIXPANEL_USERNAME: 'u',
            MIXPANEL_SECRET: secret,
            WINDOW_MINUTES: '7',
            STAGING_BUCKET: 'Bad_Bucket',
            AEP_CLIENT_SECRET: secret,
            AWS_LAMBDA_FUNCTION_NAME: 'fn',
          },
          'export',
        );
      } catch (error) {
        return error as Error;
      }
      throw new Error('expected a ConfigError');
    })();
    expect(e).toBeInstanceOf(ConfigError);
    for (const name of [
      'MIXPANEL_PROJECT_ID',
      'MIXPANEL_REGION',
      'WINDOW_MINUTES',
      'STAGING_BUCKET',
      'MIXPANEL_SECRET',
    ])
      expect(e.message).toContain(name);
    expect(e.message).toMatch(/must divide a day/);
    expect(e.message).toMatch(/Secrets Manager/);
    expect(e.message).not.toContain(secret);
  });

  it.each([
    {
      name: 'missing object',
      body: undefined,
      error: /no object at s3:\/\/.*mapping\.json; upload the mapping JSON there or set MAPPING to a preset/,
    },
    { name: 'not JSON', body: '{ "preset": ', error: /not valid JSON/ },
    {
      name: 'invalid',
      body: JSON.stringify({
        preset: 'nope',
        fields: [{ from: 'properties.x', to: 'outside.tenant', type: 'string' }],
      }),
      error: /preset|fields/,
    },
  ])(
    'should refuse a bad mapping file ($name) with an actionable error, then deliver once it is fixed',
    async ({ body, error }) => {
      rig = await startRig({ events: 300 });
      const key = 'config/mapping.json';
      if (body !== undefined) await rig.direct.send(new PutObjectCommand({ Bucket: rig.bucket, Key: key, Body: body }));
      const config = readConfig({ ...rig.stack.env, MAPPING: `s3://${rig.bucket}/${key}` }, 'forward');
      let deps: ReturnType<typeof createForwardDeps> | undefined;
      const handler = createForwardHandler(
        () =>
          (deps ??= createForwardDeps(config, { s3: rig!.s3, now: rig!.now, log: rig!.forwardDeps.log }).catch(
            (e: unknown) => {
              deps = undefined;
              throw e;
            },
          )),
      );
      await rig.exportHandler(schedule(), rig.context(EXPORT_TIMEOUT_MS));
      rig.notify();
      const m = rig.queue.shift()!;
      const e = await failure(
        handler(
          {
            Records: [
              {
                messageId: m.id,
                body: JSON.stringify({
                  Records: [
                    { eventName: 'ObjectCreated:Put', s3: { bucket: { name: rig.bucket }, object: { key: m.key } } },
                  ],
                }),
              },
            ],
          } as never,
          rig.context(FORWARD_TIMEOUT_MS),
        ),
      );
      expectActionable(rig, e.message, error);
      expect(rig.stack.aep.requests).toEqual([]);
      // Fixed: the message is redelivered and forwarded.
      await rig.direct.send(
        new PutObjectCommand({
          Bucket: rig.bucket,
          Key: key,
          Body: JSON.stringify({ preset: 'default', tenant: 'acme' }),
        }),
      );
      m.receives = 1;
      rig.queue.push(m);
      rig.forwardHandler = handler;
      await rig.drainQueue();
      await assertInvariants(rig, { minWindows: 1 });
    },
  );
});

describe('malformed SQS messages and damaged staging', () => {
  const body = (key: string, extra: Record<string, unknown> = {}) =>
    JSON.stringify({
      Records: [
        { eventName: 'ObjectCreated:Put', s3: { bucket: { name: 'mixpanel-aep-staging' }, object: { key } }, ...extra },
      ],
    });
  it.each([
    { name: 'not JSON', body: 'garbage', reason: /not JSON/ },
    { name: 'JSON but not a notification', body: '{"hello":"world"}', reason: /not an S3 event notification/ },
    { name: 'empty Records', body: '{"Records":[]}', reason: /not an S3 event notification/ },
    {
      name: 'a removal event',
      body: JSON.stringify({
        Records: [
          {
            eventName: 'ObjectRemoved:Delete',
            s3: { bucket: { name: 'b' }, object: { key: 'staging/x/manifest.json' } },
          },
        ],
      }),
      reason: /names no manifest\.json ObjectCreated event/,
    },
    {
      name: 'a key that is not a manifest',
      body: body('staging/project=3141592/mode=processing-time/window=x/run=1/part-00000.jsonl.gz'),
      reason: /names no manifest/,
    },
    { name: 'a badly encoded key', body: body('staging/%E0%A4%A/manifest.json'), reason: /not URL-encoded text/ },
  ])('should report $name for the DLQ and not touch anything', async ({ body: b, reason }) => {
    rig = await startRig({ events: 50 });
    const reply = await rig.forwardHandler(
      { Records: [{ messageId: 'bad', body: b }] } as never,
      rig.context(FORWARD_TIMEOUT_MS),
    );
    expect(reply.batchItemFailures).toEqual([{ itemIdentifier: 'bad' }]);
    const logged = rig.logs.find((l) => l.message === 'malformed forward message')!;
    expect((logged.fields[0] as { reason: string }).reason).toMatch(reason);
    expect(rig.stack.aep.requests).toEqual([]);
  });

  it('should acknowledge the S3 test event, and a manifest of another bucket or prefix is a failure that says why', async () => {
    rig = await startRig({ events: 50 });
    const reply = await rig.forwardHandler(
      {
        Records: [
          {
            messageId: 'test',
            body: JSON.stringify({ Service: 'Amazon S3', Event: 's3:TestEvent', Bucket: 'mixpanel-aep-staging' }),
          },
          {
            messageId: 'other',
            body: JSON.stringify({
              Records: [
                {
                  eventName: 'ObjectCreated:Put',
                  s3: {
                    bucket: { name: 'someone-else' },
                    object: { key: 'staging/project=1/mode=event-time/window=x/manifest.json' },
                  },
                },
              ],
            }),
          },
        ],
      } as never,
      rig.context(FORWARD_TIMEOUT_MS),
    );
    expect(reply.batchItemFailures).toEqual([{ itemIdentifier: 'other' }]);
    expect(dump(rig.logs.find((l) => l.level === 'error')!.fields)).toMatch(
      /is not a manifest of this connector's staging \(bucket mixpanel-aep-staging\)/,
    );
  });

  it('should acknowledge a notification whose manifest is gone, and refuse a damaged manifest or part with what to do', async () => {
    rig = await startRig({ events: 300 });
    const key = (await rig.exportHandler(schedule(), rig.context(EXPORT_TIMEOUT_MS))).windows[0]!.manifestKey!;
    rig.notify();
    rig.queue.splice(0);
    const sqs = (k: string) => ({ Records: [{ messageId: 'm', body: body(k) }] }) as never;
    // Gone (deleted by an operator, lifecycle): nothing to do.
    const gone = await rig.forwardHandler(
      sqs(key.replace('window=', 'window=20200101T000000Z_20200101T010000Z-')),
      rig.context(FORWARD_TIMEOUT_MS),
    );
    expect(gone.batchItemFailures).toEqual([]);
    // A part changed after commit: refused, nothing sent.
    const m = (await getJson<Manifest>(rig.direct, rig.bucket, key))!;
    const original = (await getBytes(rig.direct, rig.bucket, m.parts[0]!.key))!;
    await rig.direct.send(
      new PutObjectCommand({
        Bucket: rig.bucket,
        Key: m.parts[0]!.key,
        Body: Buffer.concat([original, Buffer.from([0])]),
      }),
    );
    const damaged = await rig.forwardHandler(sqs(key), rig.context(FORWARD_TIMEOUT_MS));
    expect(damaged.batchItemFailures).toHaveLength(1);
    expectActionable(
      rig,
      dump(rig.logs.findLast((l) => l.level === 'error')!.fields),
      /does not match its manifest.*re-export the window with \\"force\\": true/,
    );
    expect(rig.stack.aep.stats.messagesAccepted).toBe(0);
    // A manifest that is not JSON: refused with the same advice.
    await rig.direct.send(new PutObjectCommand({ Bucket: rig.bucket, Key: key, Body: '{"version":' }));
    const broken = await rig.forwardHandler(sqs(key), rig.context(FORWARD_TIMEOUT_MS));
    expect(broken.batchItemFailures).toHaveLength(1);
    expectActionable(
      rig,
      dump(rig.logs.findLast((l) => l.level === 'error')!.fields),
      /is not JSON.*re-export the window with \\"force\\": true/,
    );
    // The advice works: a forced re-export commits a new run, which is forwarded.
    rig.advance(H);
    await rig.exportHandler({ from: m.window.from, to: m.window.to, force: true }, rig.context(EXPORT_TIMEOUT_MS));
    await rig.drainQueue();
    await assertInvariants(rig, { minWindows: 1 });
  });
});
