import { describe, expect, it } from 'vitest';
import { IdSet, PartLedger, digest } from '#forward/ledger';
import { decodeS3Key, readMessage } from '#forward/sqs-event';
import { ARENA_BLOCK_BYTES, ChunkArena } from '#forward/arena';

/** The (hi, lo, line) entries of a serialised ledger, as text. */
function entries(bytes: Uint8Array): string[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return Array.from(
    { length: bytes.byteLength / 12 },
    (_, k) => `${v.getInt32(12 * k, true)}:${v.getInt32(12 * k + 4, true)}:${v.getInt32(12 * k + 8, true)}`,
  );
}

describe('IdSet', () => {
  it('should remember ids across growth and answer whether one was added before', () => {
    // Prepare: more ids than the initial capacity, to force several growths
    const set = new IdSet(4);
    // Act
    const added = Array.from({ length: 50_000 }, (_, i) => set.add(`id-${i}`));
    // Assess
    expect(added.every(Boolean)).toBe(true);
    expect(set.size).toBe(50_000);
    expect(set.has('id-12345')).toBe(true);
    expect(set.has('id-50000')).toBe(false);
    expect(set.add('id-7')).toBe(false);
    expect(set.size).toBe(50_000);
  });

  it('should give distinct 64-bit digests to a million similar ids', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1_000_000; i++) {
      const [h, l] = digest(`4b0f6c1e-${i.toString(16).padStart(8, '0')}`);
      seen.add(`${h}:${l}`);
    }
    expect(seen.size).toBe(1_000_000);
  });

  it('should hold the ids it was sized for at 80 % load, 10 bytes an id, without growing', () => {
    // Prepare
    const set = new IdSet(100_000);
    const before = set.tableBytes;
    // Act
    for (let i = 0; i < 100_000; i++) set.add(`id-${i}`);
    // Assess
    expect(before).toBe(2 * 4 * 125_001);
    expect(set.tableBytes).toBe(before);
    expect(set.has('id-99999')).toBe(true);
  });

  it('should load the ids of saved part ledgers', () => {
    // Prepare: two parts' ledgers, one of them holding an id of the other
    const a = new PartLedger(3);
    for (const [i, id] of ['x', 'y', 'z'].entries()) a.add(id, i);
    const b = new PartLedger(2);
    b.add('z', 0);
    b.add('w', 1);
    // Act
    const set = new IdSet();
    set.addBytes(a.bytesView());
    set.addBytes(b.bytesView());
    // Assess
    expect(set.size).toBe(4);
    expect(['x', 'y', 'z', 'w'].every((id) => set.has(id))).toBe(true);
    expect(set.has('v')).toBe(false);
  });
});

describe('PartLedger', () => {
  it('should keep its serialised form up to date as ids are added, and know which lines were delivered', () => {
    // Prepare: an earlier attempt's ledger of lines 0–299, loaded into a part ledger that starts small
    const earlier = new PartLedger(300);
    for (let i = 0; i < 300; i++) earlier.add(`old-${i}`, i);
    const part = new PartLedger(10);
    part.addBytes(earlier.bytesView());
    // Act: enough adds to grow its bytes several times
    for (let i = 300; i < 5_000; i++) part.add(`id-${i}`, i);
    const view = part.bytesView();
    // Assess: 12 bytes an id, each entry the id's digest and its line, in delivery order
    expect(view.byteLength).toBe(5_000 * 12);
    expect(part.size).toBe(5_000);
    const [hi, lo] = digest('id-4999');
    expect(entries(view).at(-1)).toBe(`${hi | 0}:${lo | 0}:4999`);
    expect(entries(view)[299]).toBe(`${digest('old-299')[0] | 0}:${digest('old-299')[1] | 0}:299`);
    expect(part.delivered(0) && part.delivered(299) && part.delivered(4_999)).toBe(true);
    expect(part.delivered(5_000) || part.delivered(-1) || part.delivered(1 << 30)).toBe(false);
  });
});

describe('readMessage', () => {
  const notification = (key: string, eventName = 'ObjectCreated:Put') =>
    JSON.stringify({ Records: [{ eventName, s3: { bucket: { name: 'b' }, object: { key } } }] });

  it('should decode URL-encoded keys with + for spaces', () => {
    expect(decodeS3Key('staging/project%3D1/a+b%2Bc/manifest.json')).toBe('staging/project=1/a b+c/manifest.json');
    expect(readMessage(notification('staging/project%3D1/mode%3Devent-time/window%3Dx/manifest.json'))).toEqual({
      kind: 'manifests',
      objects: [{ bucket: 'b', key: 'staging/project=1/mode=event-time/window=x/manifest.json' }],
    });
  });

  it('should recognise the S3 test event', () => {
    expect(
      readMessage(JSON.stringify({ Service: 'Amazon S3', Event: 's3:TestEvent', Time: 'x', Bucket: 'b' })),
    ).toEqual({ kind: 'test-event' });
  });

  it.each([
    ['not json', /not JSON/],
    [JSON.stringify({ hello: 1 }), /not an S3 event notification/],
    [notification('staging/x/part-00000.jsonl.gz'), /no manifest\.json ObjectCreated/],
    [notification('staging/x/manifest.json', 'ObjectRemoved:Delete'), /no manifest\.json ObjectCreated/],
    [notification('bad%E0%A4%A'), /not URL-encoded text/],
  ])('should report %s as malformed with the reason', (body, reason) => {
    const m = readMessage(body);
    expect(m.kind).toBe('malformed');
    expect(m.kind === 'malformed' && m.reason).toMatch(reason);
  });
});

describe('ChunkArena', () => {
  it('should hand out exact UTF-8 views across blocks and reuse its blocks after a reset', () => {
    // Prepare: records large enough that a few fill a block, one of them with multi-byte text
    const arena = new ChunkArena();
    const texts = Array.from(
      { length: 12 },
      (_, i) => `{"i":${i},"t":"${i === 3 ? 'é☕😀'.repeat(1000) : 'x'.repeat(1_000_000)}"}`,
    );
    // Act
    const views = texts.map((t) => arena.put(t));
    const blocksFirst = arena.blocks;
    arena.reset();
    const again = texts.map((t) => arena.put(t));
    // Assess: every view decodes to its text; the second chunk allocated no new block
    expect(views.map((v) => v.toString('utf8'))).toEqual(texts);
    expect(again.map((v) => v.toString('utf8'))).toEqual(texts);
    expect(blocksFirst).toBeGreaterThan(1);
    expect(arena.blocks).toBe(blocksFirst);
    // A text that could exceed a block gets a buffer of its own
    const huge = 'y'.repeat(ARENA_BLOCK_BYTES);
    expect(arena.put(huge).length).toBe(ARENA_BLOCK_BYTES);
    expect(arena.blocks).toBe(blocksFirst);
  });
});
