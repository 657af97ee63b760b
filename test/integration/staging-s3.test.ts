import { gunzipSync } from 'node:zlib';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLocalS3, type LocalS3 } from '#emulators/s3';
import { getBytes } from '#staging/s3';
import { GzipObjectWriter } from '#staging/gzip-object';
import { createSpillDir, removeSpillDir } from '#staging/spill';
import { StagingLayout } from '#staging/layout';
import { StateStore, commitWindow } from '#staging/state';
import { QueryBudget, QueryBudgetExhaustedError } from '#mixpanel/budget';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { IdSet, PartLedger } from '#forward/ledger';
import { loadNeighbourLedgers, neighbourLedgerKeys } from '#forward/neighbours';
import { parseWindowId, windowId } from '#windows/plan';

let s3: LocalS3;
beforeAll(async () => {
  s3 = await startLocalS3(['staging-test']);
});
afterAll(async () => {
  await s3.close();
});

describe('GzipObjectWriter on s3rver', () => {
  it('should upload a multi-part gzip stream whose size and sha256 match the stored object', async () => {
    // Prepare: ~20 MB of lines → several 8 MiB multipart parts
    const writer = new GzipObjectWriter(s3.client, 'staging-test', 'parts/a.jsonl.gz');
    const line = `${JSON.stringify({ event: 'x', properties: { pad: 'y'.repeat(900), n: Math.random() } })}\n`;
    // Act
    for (let i = 0; i < 200; i++) await writer.write(`${line.repeat(100)}${i}\n`);
    const written = await writer.close();
    // Assess
    const stored = (await getBytes(s3.client, 'staging-test', 'parts/a.jsonl.gz'))!;
    expect(stored.byteLength).toBe(written.bytes);
    expect(createHash('sha256').update(stored).digest('hex')).toBe(written.sha256);
    const text = gunzipSync(stored).toString('utf8');
    expect(text.split('\n').filter(Boolean)).toHaveLength(200 * 101);
    expect(writer.rawBytes).toBe(Buffer.byteLength(text));
  });
});

describe('StateStore', () => {
  it('should keep committed intervals and advance `to` only over contiguous coverage', async () => {
    const store = new StateStore(s3.client, 'staging-test', new StagingLayout('pre/'), '42');
    const H = 3_600_000;
    let c = await store.read();
    expect(c['processing-time'].to).toBeUndefined();
    c = commitWindow(c, 'processing-time', 10 * H, 11 * H, 600);
    c = commitWindow(c, 'processing-time', 12 * H, 13 * H, 60); // gap 11–12: `to` stays at 11
    await store.write(c);
    const read1 = await store.read();
    expect(read1['processing-time'].to).toBe(11 * H);
    expect(read1['processing-time'].origin).toBe(10 * H);
    c = commitWindow(read1, 'processing-time', 11 * H, 12 * H, 60); // gap filled: `to` jumps to 13
    await store.write(c);
    const read2 = await store.read();
    expect(read2['processing-time'].to).toBe(13 * H);
    expect(read2['processing-time'].committed).toEqual([[10 * H, 13 * H]]);
    expect(store.key).toBe('pre/state/project=42/checkpoint.json');
  });
});

describe('QueryBudget', () => {
  it('should space queries to 3 per second, persist them, and refuse past the hourly budget', async () => {
    let now = 1_700_000_000_000;
    const slept: number[] = [];
    const make = () =>
      new QueryBudget({
        s3: s3.client,
        bucket: 'staging-test',
        key: 'state/budget.json',
        perHour: 3,
        now: () => now,
        sleep: async (ms) => void slept.push(ms),
      });
    const budget = make();
    await budget.acquire();
    await budget.acquire();
    expect(slept).toEqual([334]);
    now += 1000;
    await budget.acquire();
    // A new container (another invocation) sees the same hour.
    const other = make();
    expect(await other.remaining()).toBe(0);
    await expect(other.acquire()).rejects.toThrow(QueryBudgetExhaustedError);
    now += 3_600_000;
    await expect(other.acquire()).resolves.toBeUndefined();
  });
});

describe('neighbourLedgerKeys', () => {
  it('should list only the windows within the horizon, starting the listing near it', async () => {
    // Prepare: delivery folders for hourly windows over four days
    const layout = new StagingLayout('nb/');
    const H = 3_600_000;
    const day0 = Date.parse('2026-11-10T00:00:00Z');
    for (let h = 0; h < 96; h += 6) {
      const id = windowId(day0 + h * H, day0 + (h + 1) * H);
      await s3.client.send(
        new PutObjectCommand({
          Bucket: 'staging-test',
          Key: `${layout.deliveryPrefix({ projectId: '9', mode: 'processing-time', windowId: id })}run=r/part-00000.ids`,
          Body: new Uint8Array(12),
        }),
      );
    }
    // Act: the window 2026-11-11T12:00–13:00 (its horizon is a day either side)
    const self = { projectId: '9', mode: 'processing-time' as const, windowId: windowId(day0 + 36 * H, day0 + 37 * H) };
    const keys = await neighbourLedgerKeys(s3.client, 'staging-test', layout, self, day0 + 36 * H, day0 + 37 * H);
    // Assess: the ledgers of windows ending after 12:00 the day before and starting before 13:00 the day after
    // (nearest first, with the time between each and the window)
    const starts = keys.map((k) => (parseWindowId(/window=([^/]+)\//.exec(k.key)![1]!).from - day0) / H);
    expect(starts).toEqual([30, 42, 24, 48, 18, 54, 12, 60]);
    expect(keys.map((k) => k.distanceMs / H)).toEqual([5, 5, 11, 11, 17, 17, 23, 23]);
    expect(keys.every((k) => k.ids === 1)).toBe(true);
  });

  it('should load the nearest neighbours first and stop at the id budget, saying how far it reached', async () => {
    // Prepare: four hourly windows around 09:00–10:00, each with a ledger of 3 ids (07:00 and 11:00 are an hour away)
    const layout = new StagingLayout('nb-budget/');
    const H = 3_600_000;
    const day0 = Date.parse('2026-11-10T00:00:00Z');
    const idsOf = (h: number) => [0, 1, 2].map((i) => `id-${h}-${i}`);
    for (const h of [4, 7, 11, 14]) {
      const ledger = new PartLedger(3);
      for (const [line, id] of idsOf(h).entries()) ledger.add(id, line);
      const ref = {
        projectId: '9',
        mode: 'processing-time' as const,
        windowId: windowId(day0 + h * H, day0 + (h + 1) * H),
      };
      await s3.client.send(
        new PutObjectCommand({
          Bucket: 'staging-test',
          Key: `${layout.deliveryPrefix(ref)}run=r/part-00000.ids`,
          Body: ledger.bytesView(),
        }),
      );
    }
    const self = { projectId: '9', mode: 'processing-time' as const, windowId: windowId(day0 + 9 * H, day0 + 10 * H) };
    // Act: room for two ledgers (6 ids) of the four
    const seen = new IdSet();
    const load = await loadNeighbourLedgers(
      s3.client,
      'staging-test',
      layout,
      self,
      day0 + 9 * H,
      day0 + 10 * H,
      seen,
      7,
    );
    // Assess: 07:00 and 11:00 are loaded; 04:00 and 14:00 (4 h away) are not, so 4 h is the horizon covered
    expect(load).toEqual({ ids: 6, ledgers: 2, skipped: 2, coveredMs: 4 * H });
    expect([...idsOf(11), ...idsOf(7)].every((id) => seen.has(id))).toBe(true);
    expect([...idsOf(4), ...idsOf(14)].some((id) => seen.has(id))).toBe(false);
  });
});

describe('GzipObjectWriter spilled to a temporary file', () => {
  // Random hex compresses to about half: ~11 MB of gzip, more than one 8 MiB upload part.
  const lines = (i: number) =>
    `${JSON.stringify({ event: 'e', properties: { i, r: randomBytes(300).toString('hex') } })}\n`;
  const chunks = Array.from({ length: 300 }, (_, c) =>
    Buffer.from(Array.from({ length: 100 }, (_, j) => lines(c * 100 + j)).join('')),
  );

  it('should store the bytes the streaming writer stores for the same lines, and delete its file', async () => {
    // Prepare: ~20 MB of lines
    const dir = await createSpillDir(await mkdtemp(path.join(tmpdir(), 'spill-s3-')));
    const file = path.join(dir, 'part-0.gz');
    const streamed = new GzipObjectWriter(s3.client, 'staging-test', 'spill/streamed.jsonl.gz');
    const spilled = new GzipObjectWriter(s3.client, 'staging-test', 'spill/spilled.jsonl.gz', undefined, {
      path: file,
    });
    // Act
    for (const chunk of chunks) {
      await streamed.write(chunk);
      await spilled.write(chunk);
    }
    expect(existsSync(file)).toBe(true);
    const [a, b] = [await streamed.close(), await spilled.close()];
    // Assess: identical objects, sizes and digests; the temporary file is gone
    const [sa, sb] = [
      (await getBytes(s3.client, 'staging-test', a.key))!,
      (await getBytes(s3.client, 'staging-test', b.key))!,
    ];
    expect(Buffer.from(sb).equals(Buffer.from(sa))).toBe(true);
    expect({ bytes: b.bytes, sha256: b.sha256 }).toEqual({ bytes: a.bytes, sha256: a.sha256 });
    expect(sb.byteLength).toBe(b.bytes);
    expect(b.bytes).toBeGreaterThan(8 * 1024 * 1024);
    expect(existsSync(file)).toBe(false);
    await removeSpillDir(path.dirname(dir));
  });

  it('should delete its file and store nothing when aborted', async () => {
    // Prepare
    const root = await mkdtemp(path.join(tmpdir(), 'spill-s3-'));
    const file = path.join(root, 'part-1.gz');
    const writer = new GzipObjectWriter(s3.client, 'staging-test', 'spill/aborted.jsonl.gz', undefined, { path: file });
    for (const chunk of chunks.slice(0, 20)) await writer.write(chunk);
    // Act
    await writer.abort();
    // Assess
    expect(existsSync(file)).toBe(false);
    expect(await getBytes(s3.client, 'staging-test', 'spill/aborted.jsonl.gz')).toBeUndefined();
    await rm(root, { recursive: true, force: true });
  });
});
