import { describe, expect, it } from 'vitest';
import { IdSet, PartLedger, digest } from '#forward/ledger';
import { compileMapper, presetConfig } from '#mapping/index';
import { type Manifest, ManifestError, parseManifest, partitionCount, partitionParts } from '#staging/manifest';
import {
  MAX_PARTITIONS,
  lineEventId,
  linePartition,
  partitionOf,
  partitionOfHi,
  partitionsFor,
} from '#staging/partition';

const PROJECT = '2195193';
const mapper = compileMapper(presetConfig('default'), {
  projectId: PROJECT,
  tenant: 'acme',
  projectTimezone: 'UTC',
  legacyLocalTime: false,
});

const line = (i: number, props: Record<string, unknown> = {}): string =>
  JSON.stringify({
    event: i % 3 === 0 ? 'Sign up' : 'Page view',
    properties: { time: 1_717_243_200 + i, distinct_id: `u${i % 97}`, $insert_id: `ins-${i}`, ...props },
  });

const mappedId = (text: string): string => {
  const out = mapper(JSON.parse(text));
  if (!out.ok) throw new Error(out.detail);
  return out.id;
};

describe('partitionOf', () => {
  it('should give a line the partition of the _id the mapper gives its event (seconds or milliseconds)', () => {
    // Prepare: whole seconds, milliseconds, and an event without $insert_id (id from the whole event)
    const lines = [
      ...Array.from({ length: 200 }, (_, i) => line(i)),
      line(1, { time: 1_717_243_200_123 }),
      line(2, { $insert_id: undefined }),
    ];
    for (const text of lines) {
      // Act
      const id = lineEventId(PROJECT, text);
      // Assess
      expect(id).toBe(mappedId(text));
      expect(linePartition(PROJECT, text, 8)).toBe(partitionOf(id!, 8));
    }
  });

  it('should put Mixpanel duplicates (same dedupe tuple, other properties) in the same partition', () => {
    // Prepare: a retry of one event differs only in properties outside the dedupe tuple
    const first = line(5, { mp_processing_time_ms: 1_717_243_300_000 });
    const retry = line(5, { mp_processing_time_ms: 1_717_243_900_000, $mp_api_endpoint: 'api-eu.mixpanel.com' });
    // Act / Assess
    for (const p of [2, 4, 16]) expect(linePartition(PROJECT, retry, p)).toBe(linePartition(PROJECT, first, p));
  });

  it('should spread ids over every partition, and read the partition back from a ledger entry', () => {
    // Prepare
    const ids = Array.from({ length: 4000 }, (_, i) => mappedId(line(i)));
    // Act
    const counts = new Array<number>(8).fill(0);
    for (const id of ids) counts[partitionOf(id, 8)]!++;
    // Assess: each partition near 500, and a ledger's stored digest maps to the same partition
    for (const c of counts) expect(c).toBeGreaterThan(350);
    const ledger = new PartLedger(ids.length);
    for (const [n, id] of ids.entries()) ledger.add(id, n);
    const onlyThree = new IdSet();
    onlyThree.addBytes(ledger.bytesView(), (hi) => partitionOfHi(hi, 8) === 3);
    expect(onlyThree.size).toBe(counts[3]);
    for (const id of ids) expect(onlyThree.has(id)).toBe(partitionOf(id, 8) === 3);
    expect(partitionOfHi(digest(ids[0]!)[0], 8)).toBe(partitionOf(ids[0]!, 8));
  });

  it('should keep one partition for an unknown or small window, and a power of two up to the cap otherwise', () => {
    expect(partitionsFor(undefined, 200_000)).toBe(1);
    expect(partitionsFor(150_000, 200_000)).toBe(1);
    expect(partitionsFor(200_001, 200_000)).toBe(2);
    expect(partitionsFor(1_000_000, 200_000)).toBe(8);
    expect(partitionsFor(100_000_000, 200_000)).toBe(MAX_PARTITIONS);
    expect(partitionOf('anything', 1)).toBe(0);
  });

  it('should put a line the mapper rejects for its time in partition 0', () => {
    expect(lineEventId(PROJECT, JSON.stringify({ event: 'x', properties: { time: 'soon' } }))).toBeUndefined();
    expect(linePartition(PROJECT, JSON.stringify({ event: 'x', properties: {} }), 8)).toBe(0);
  });
});

describe('manifest partitions', () => {
  const part = (key: string, events: number, partition?: number) => ({
    key,
    events,
    bytes: 10,
    sha256: 'a'.repeat(64),
    ...(partition !== undefined ? { partition } : {}),
  });
  const manifest = (extra: Partial<Manifest>): Manifest => ({
    version: 1,
    projectId: PROJECT,
    mode: 'processing-time',
    window: { id: 'w', from: '2026-01-01T00:00:00.000Z', to: '2026-01-01T01:00:00.000Z' },
    query: { from_date: '2026-01-01', to_date: '2026-01-01' },
    parts: [part('p0', 2), part('p1', 3)],
    events: 5,
    quarantined: 0,
    exportedAt: '2026-01-01T02:00:00.000Z',
    runId: 'r',
    lines: 5,
    project: { timezone: 'UTC', legacyLocalTime: false },
    ...extra,
  });

  it('should read a manifest without partitions as one partition holding every part', () => {
    const m = parseManifest(JSON.stringify(manifest({})), 'k');
    expect(partitionCount(m)).toBe(1);
    expect(partitionParts(m, 0)).toEqual([0, 1]);
  });

  it('should list the parts of each partition, and refuse a part outside the partitions', () => {
    // Prepare
    const parts = [part('a', 1, 1), part('b', 1, 0), part('c', 3, 1)];
    // Act
    const m = parseManifest(JSON.stringify(manifest({ partitions: 2, parts })), 'k');
    // Assess
    expect(partitionCount(m)).toBe(2);
    expect(partitionParts(m, 0)).toEqual([1]);
    expect(partitionParts(m, 1)).toEqual([0, 2]);
    const stray = JSON.stringify(manifest({ partitions: 2, parts: [part('a', 5, 2)] }));
    expect(() => parseManifest(stray, 'k')).toThrow(ManifestError);
  });
});
