/**
 * The AEP client (IMS token provider, streaming sink, batch sink) against the AEP emulator on loopback.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { startAepEmulator, type AepEmulator, type AepEmulatorOptions } from '#emulators/aep/server';
import type { RetryPolicy } from '#common/retry';
import { ImsError, ImsTokenProvider, type AepCredentials } from '#aep/ims';
import { DCS_MAX_REQUEST_BYTES, StreamingDeliveryError, StreamingSink, type SinkRecord } from '#aep/streaming';
import { BatchSink } from '#aep/batch';

const CREDS: AepCredentials = { clientId: 'client-1', clientSecret: 'secret-value-1', orgId: 'ORG1@AdobeOrg' };
const DATASET = 'ds-events';
const SCHEMA = 'https://ns.adobe.com/acme/schemas/mixpanel-events';
const CONNECTION = 'conn-auth';
const FAST: RetryPolicy = { maxAttempts: 5, baseDelayMs: 50, maxDelayMs: 500, maxRetryAfterMs: 60_000 };

let aep: AepEmulator;
let waits: number[];

const EMULATOR: AepEmulatorOptions = {
  clients: [CREDS],
  tenant: 'acme',
  sandbox: 'dev',
  datasets: [{ id: DATASET, schemaId: SCHEMA }],
  connections: [{ id: CONNECTION, authenticated: true }],
  flows: [{ id: 'flow-1', connectionId: CONNECTION, datasetId: DATASET }],
};

beforeEach(async () => {
  aep = await startAepEmulator(EMULATOR);
  waits = [];
});

afterEach(async () => {
  await aep.close();
});

const sleep = async (ms: number): Promise<void> => void waits.push(ms);

function tokens(credentials: AepCredentials = CREDS): ImsTokenProvider {
  return new ImsTokenProvider({ imsUrl: aep.imsTokenUrl, credentials: async () => credentials, retry: FAST, sleep });
}

function streaming(extra: Partial<ConstructorParameters<typeof StreamingSink>[0]> = {}): StreamingSink {
  return new StreamingSink({
    target: {
      inletUrl: aep.inletUrl(CONNECTION),
      datasetId: DATASET,
      schemaId: SCHEMA,
      orgId: CREDS.orgId,
      sandbox: 'dev',
      flowId: 'flow-1',
    },
    tokens: tokens(),
    retry: FAST,
    sleep,
    ...extra,
  });
}

function batchSink(provider = tokens()): BatchSink {
  return new BatchSink({
    target: { platformUrl: aep.platformUrl, datasetId: DATASET, sandbox: 'dev' },
    tokens: provider,
    retry: FAST,
    sleep,
  });
}

/** A valid ExperienceEvent of roughly `bytes` bytes. */
function event(id: string, bytes = 300): SinkRecord {
  const base = {
    _id: id,
    timestamp: '2024-03-01T12:00:00.000Z',
    eventType: 'mixpanel.track',
    _acme: { mixpanel: { event: 'Signed Up', pad: '' } },
  };
  const padding = Math.max(0, bytes - JSON.stringify(base).length);
  base._acme.mixpanel.pad = 'x'.repeat(padding);
  return { id, json: JSON.stringify(base) };
}

function ids(n: number, prefix = 'e'): string[] {
  return Array.from({ length: n }, (_, i) => `${prefix}-${String(i).padStart(5, '0')}`);
}

function expectNoRepeats(list: string[]): void {
  expect(list.length).toBe(new Set(list).size);
}

describe('AEP client against the emulator: streaming', () => {
  it('should deliver many 1–50 KB records in requests that never exceed the byte limit, each id exactly once', async () => {
    // Prepare
    const all = ids(1500);
    const records = all.map((id, i) => event(id, 1_000 + ((i * 7919) % 49_000)));
    const sink = streaming({ maxInFlight: 6 });

    // Act
    const result = await sink.send(records);

    // Assess
    expect(result.accepted).toEqual(all);
    expect(result.rejected).toEqual([]);
    expect(result.unsent).toEqual([]);
    expect(aep.stats.maxRequestBytes).toBeLessThanOrEqual(DCS_MAX_REQUEST_BYTES);
    expect(result.maxRequestBytes).toBeLessThanOrEqual(DCS_MAX_REQUEST_BYTES);
    expect(aep.acceptedIds(DATASET).sort()).toEqual(all);
    expectNoRepeats(aep.acceptedIds());
    expect(aep.stats.tokensIssued).toBe(1);
    expect(result.aepIds.length).toBe(result.requests);
  });

  it('should re-send only the messages answered 503 inside the 207 and accept every id once', async () => {
    // Prepare
    aep.injectFault({ kind: 'partial', everyNth: 7, statusCode: 503 });
    aep.injectFault({ kind: 'partial', everyNth: 3, statusCode: 503 });
    const all = ids(200);

    // Act
    const result = await streaming({ maxInFlight: 1 }).send(all.map((id) => event(id)));

    // Assess
    expect(result.accepted).toEqual(all);
    expect(result.retried).toBeGreaterThan(0);
    expect(aep.acceptedIds(DATASET).sort()).toEqual(all);
    expectNoRepeats(aep.acceptedIds());
  });

  it('should reject messages answered 400 inside the 207 with Adobe’s message and never accept them', async () => {
    // Prepare
    aep.injectFault({ kind: 'partial', everyNth: 4, statusCode: 400, message: 'Message has unknown xdm format' });
    const all = ids(12);

    // Act
    const result = await streaming({ maxInFlight: 1 }).send(all.map((id) => event(id)));

    // Assess
    const rejectedIds = result.rejected.map((r) => r.id);
    expect(rejectedIds).toEqual([all[3], all[7], all[11]]);
    for (const r of result.rejected) {
      expect(r.status).toBe(400);
      expect(r.reason).toMatch(/Message has unknown xdm format/);
    }
    expect(result.accepted).toEqual(all.filter((id) => !rejectedIds.includes(id)));
    expect(aep.acceptedIds(DATASET).sort()).toEqual(result.accepted);
  });

  it('should report records the emulated Platform finds invalid as rejected with its validation message', async () => {
    // Prepare: a custom field outside the tenant object; the emulator answers the refusal inside the 207 (its test
    // convenience: Platform would accept the message and fail the record asynchronously)
    await aep.close();
    aep = await startAepEmulator({ ...EMULATOR, syncValidationForTests: true });
    const bad: SinkRecord = {
      id: 'bad-1',
      json: JSON.stringify({ _id: 'bad-1', timestamp: '2024-03-01T12:00:00Z', notMine: 1 }),
    };

    // Act
    const result = await streaming().send([event('ok-1'), bad]);

    // Assess
    expect(result.accepted).toEqual(['ok-1']);
    expect(result.rejected).toHaveLength(1);
    expect(result.rejected[0]?.id).toBe('bad-1');
    expect(result.rejected[0]?.reason.length).toBeGreaterThan(10);
  });

  it('should wait as long as Retry-After says on 429 and 503, then deliver every id once', async () => {
    // Prepare
    aep.injectFault({ kind: 'status', target: 'dcs', status: 429, retryAfterSeconds: 3 });
    aep.injectFault({ kind: 'status', target: 'dcs', status: 503, retryAfterSeconds: 5 });
    const all = ids(50);

    // Act
    const result = await streaming({ maxInFlight: 1 }).send(all.map((id) => event(id)));

    // Assess
    expect(result.accepted).toEqual(all);
    expect(waits.filter((ms) => ms >= 3000)).toHaveLength(2);
    expect(waits).toContain(3000);
    expect(waits).toContain(5000);
    expect(aep.acceptedIds(DATASET).sort()).toEqual(all);
    expectNoRepeats(aep.acceptedIds());
  });

  it('should renew an expired token once and carry on', async () => {
    // Prepare
    const sink = streaming({ maxInFlight: 1, maxMessagesPerRequest: 10 });
    await sink.send([event('warm-up')]);
    aep.injectFault({ kind: 'expire-token' });
    const all = ids(30);

    // Act
    const result = await sink.send(all.map((id) => event(id)));

    // Assess
    expect(result.accepted).toEqual(all);
    expect(aep.stats.tokensIssued).toBe(2);
    expectNoRepeats(aep.acceptedIds());
    expect(aep.acceptedIds(DATASET)).toHaveLength(31);
  });

  it('should reject an oversize record without sending it', async () => {
    // Prepare
    const huge = event('huge', DCS_MAX_REQUEST_BYTES);

    // Act
    const result = await streaming().send([event('small-1'), huge, event('small-2')]);

    // Assess
    expect(result.rejected).toEqual([{ id: 'huge', reason: 'record-too-large' }]);
    expect(result.accepted).toEqual(['small-1', 'small-2']);
    expect(aep.acceptedIds()).not.toContain('huge');
    expect(aep.stats.maxRequestBytes).toBeLessThan(10_000);
  });

  it('should stop at the deadline, report the rest unsent, and lose nothing when resumed', async () => {
    // Prepare: every request moves a fake clock by 100 ms; the deadline allows about four requests
    let clock = 0;
    const timedFetch: typeof fetch = async (input, init) => {
      clock += 100;
      return fetch(input, init);
    };
    const sink = streaming({ maxInFlight: 1, maxMessagesPerRequest: 10, fetch: timedFetch, now: () => clock });
    const all = ids(100);
    const records = all.map((id) => event(id));

    // Act
    const first = await sink.send(records, { deadlineMs: 350 });
    const rest = records.filter((r) => first.unsent.includes(r.id));
    const second = await sink.send(rest);

    // Assess
    expect(first.accepted.length).toBeGreaterThan(0);
    expect(first.unsent.length).toBeGreaterThan(0);
    expect(first.accepted.filter((id) => first.unsent.includes(id))).toEqual([]);
    expect([...first.accepted, ...first.unsent].sort()).toEqual(all);
    expect(second.accepted.sort()).toEqual([...first.unsent].sort());
    expect(aep.acceptedIds(DATASET).sort()).toEqual(all);
    expectNoRepeats(aep.acceptedIds());
  });

  it('should stop with a clear error naming the connection when DCS does not know it', async () => {
    // Prepare
    const sink = new StreamingSink({
      target: {
        inletUrl: aep.inletUrl('no-such-connection'),
        datasetId: DATASET,
        schemaId: SCHEMA,
        sandbox: 'dev',
        flowId: 'flow-1',
      },
      tokens: tokens(),
      retry: FAST,
      sleep,
    });

    // Act
    const error = (await sink.send([event('a')]).catch((e: unknown) => e)) as StreamingDeliveryError;

    // Assess
    expect(error).toBeInstanceOf(StreamingDeliveryError);
    expect(error.message).toMatch(/no-such-connection/);
    expect(error.result.unsent).toEqual(['a']);
  });

  it('should fail with an ImsError that says what to check when the secret is wrong, without leaking it', async () => {
    // Prepare
    const sink = streaming({ tokens: tokens({ ...CREDS, clientSecret: 'wrong-secret-value' }) });

    // Act
    const error = (await sink.send([event('a')]).catch((e: unknown) => e)) as StreamingDeliveryError;

    // Assess
    expect(error).toBeInstanceOf(StreamingDeliveryError);
    expect(error.cause).toBeInstanceOf(ImsError);
    expect(error.message).toMatch(/client id and client secret/);
    expect(error.message).not.toContain('wrong-secret-value');
    expect(error.result.unsent).toEqual(['a']);
    expect(aep.acceptedIds()).toEqual([]);
  });

  it('should fail with a clear ImsError when IMS stays down', async () => {
    // Prepare
    for (let i = 0; i < 5; i++) aep.injectFault({ kind: 'status', target: 'ims', status: 503, retryAfterSeconds: 1 });
    const provider = tokens();

    // Act
    const error = await provider.token().catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(ImsError);
    expect((error as ImsError).message).toMatch(/HTTP 503/);
    expect((error as ImsError).message).toMatch(/AEP_IMS_URL/);
    expect(waits).toEqual([1000, 1000, 1000, 1000]);
  });
});

describe('AEP client against the emulator: batch ingestion', () => {
  async function* jsonLines(list: string[]): AsyncIterable<string> {
    for (let i = 0; i < list.length; i += 100) {
      yield list
        .slice(i, i + 100)
        .map((id) => `${event(id).json}\n`)
        .join('');
    }
  }

  it('should create a batch, upload two streamed files, complete it and read its success', async () => {
    // Prepare
    const sink = batchSink();
    const part1 = ids(700, 'p1');
    const part2 = ids(300, 'p2');

    // Act
    const batchId = await sink.createBatch({ enableErrorDiagnostics: true });
    const up1 = await sink.uploadFile(batchId, 'window=1/part-00000.json', () => jsonLines(part1));
    const up2 = await sink.uploadFile(batchId, 'window=1/part-00001.json', () => jsonLines(part2));
    await sink.completeBatch(batchId);
    await sink.completeBatch(batchId); // safe to repeat
    const status = await sink.batchStatus(batchId);

    // Assess
    expect(status.status).toBe('success');
    expect(status.recordCount).toBe(1000);
    expect(status.failedRecordCount ?? 0).toBe(0);
    expect(up1.bytes + up2.bytes).toBeGreaterThan(0);
    expect(aep.acceptedIds(DATASET).sort()).toEqual([...part1, ...part2].sort());
    expectNoRepeats(aep.acceptedIds());
  });

  it('should retry a failed upload of the same file without doubling its records', async () => {
    // Prepare
    const sink = batchSink();
    const list = ids(250, 'r');
    const batchId = await sink.createBatch();
    aep.injectFault({ kind: 'status', target: 'batch-upload', status: 503, retryAfterSeconds: 2 });
    aep.injectFault({ kind: 'status', target: 'batch-complete', status: 500 });

    // Act
    await sink.uploadFile(batchId, 'part-00000.json', () => jsonLines(list));
    await sink.uploadFile(batchId, 'part-00000.json', () => jsonLines(list)); // a replayed upload replaces the file
    await sink.completeBatch(batchId);

    // Assess
    expect(waits).toContain(2000);
    expect(aep.stats.batches[batchId]).toMatchObject({ status: 'success', files: ['part-00000.json'], records: 250 });
    expect(aep.acceptedIds(DATASET).sort()).toEqual(list);
    expectNoRepeats(aep.acceptedIds());
  });

  it('should renew an expired token during batch calls', async () => {
    // Prepare
    const provider = tokens();
    const sink = batchSink(provider);
    const batchId = await sink.createBatch();
    aep.injectFault({ kind: 'expire-token' });

    // Act
    await sink.uploadFile(batchId, 'a.json', Buffer.from(`${event('t-1').json}\n`));
    await sink.completeBatch(batchId);

    // Assess
    expect((await sink.batchStatus(batchId)).status).toBe('success');
    expect(aep.stats.tokensIssued).toBe(2);
  });

  it('should report failed rows through the Catalog status under partial ingestion', async () => {
    // Prepare
    const sink = batchSink();
    const batchId = await sink.createBatch({ enableErrorDiagnostics: true, partialIngestionPercent: 50 });
    const good = ids(9, 'g');
    const body = `${good.map((id) => event(id).json).join('\n')}\n{"_id":"broken","timestamp":\n`;

    // Act
    await sink.uploadFile(batchId, 'mixed.json', body);
    await sink.completeBatch(batchId);
    const status = await sink.batchStatus(batchId);

    // Assess
    expect(status.status).toBe('success');
    expect(status.failedRecordCount).toBe(1);
    expect(status.errors?.length).toBeGreaterThan(0);
    expect(aep.acceptedIds(DATASET).sort()).toEqual(good);
  });

  it('should retry the Catalog when it is briefly unavailable', async () => {
    // Prepare
    const sink = batchSink();
    const batchId = await sink.createBatch();
    aep.injectFault({ kind: 'status', target: 'catalog', status: 503, retryAfterSeconds: 1 });

    // Act
    const status = await sink.batchStatus(batchId);

    // Assess
    expect(status.status).toBe('loading');
    expect(waits).toContain(1000);
  });
});
