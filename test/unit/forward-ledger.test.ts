import { describe, expect, it } from 'vitest';
import { IdLedger, PartLedger, digest } from '#shared/forward/ledger';
import { decodeS3Key, readMessage } from '#shared/forward/sqs-event';
import { ARENA_BLOCK_BYTES, ChunkArena } from '#shared/forward/arena';

describe('IdLedger', () => {
  it('should remember ids with their lines across growth and a serialisation round trip', () => {
    // Prepare: more ids than the initial capacity, to force several growths
    const ledger = new IdLedger(4);
    for (let i = 0; i < 50_000; i++) expect(ledger.add(`id-${i}`, i)).toBe(true);
    // Act
    const copy = new IdLedger();
    copy.addBytes(ledger.toBytes());
    // Assess
    expect(ledger.size).toBe(50_000);
    expect(copy.size).toBe(50_000);
    expect(copy.lineOf('id-12345')).toBe(12345);
    expect(copy.has('id-50000')).toBe(false);
    expect(ledger.add('id-7', 99)).toBe(false);
    expect(ledger.lineOf('id-7')).toBe(7);
  });

  it('should override lines when loading a foreign ledger', () => {
    const a = new IdLedger();
    a.add('x', 3);
    const b = new IdLedger();
    b.addBytes(a.toBytes(), -1);
    expect(b.lineOf('x')).toBe(-1);
  });

  it('should give distinct 64-bit digests to a million similar ids', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1_000_000; i++) {
      const [h, l] = digest(`4b0f6c1e-${i.toString(16).padStart(8, '0')}`);
      seen.add(`${h}:${l}`);
    }
    expect(seen.size).toBe(1_000_000);
  });

  it('should hold an expected number of ids at 80 % load: 15 bytes an id with lines, 10 without', () => {
    // Prepare: tables sized for 100,000 ids
    const withLines = new IdLedger(100_000);
    const set = new IdLedger(100_000, { lines: false });
    // Act
    for (let i = 0; i < 100_000; i++) {
      withLines.add(`id-${i}`, i);
      set.add(`id-${i}`, i);
    }
    // Assess: no growth, and a set answers presence only
    expect(withLines.tableBytes).toBe(3 * 4 * 125_001);
    expect(set.tableBytes).toBe(2 * 4 * 125_001);
    expect(withLines.lineOf('id-99999')).toBe(99_999);
    expect(set.lineOf('id-99999')).toBe(-1);
    expect(set.has('id-100000')).toBe(false);
    expect(set.add('id-5')).toBe(false);
    // A set serialises like a ledger (line -1), so it loads into either kind
    const copy = new IdLedger();
    copy.addBytes(set.toBytes());
    expect(copy.size).toBe(100_000);
    expect(copy.lineOf('id-7')).toBe(-1);
  });

  it('should keep a part ledger serialised as ids are added, and know which lines were delivered', () => {
    // Prepare: an earlier attempt's ledger of lines 0–299, loaded into a part ledger that starts small
    const earlier = new PartLedger(300);
    for (let i = 0; i < 300; i++) earlier.add(`old-${i}`, i);
    const part = new PartLedger(10);
    part.addBytes(earlier.bytesView());
    // Act: enough adds to grow its bytes several times
    for (let i = 300; i < 5_000; i++) part.add(`id-${i}`, i);
    const view = part.bytesView();
    // Assess: the bytes load into an IdLedger with every id at its line; delivered lines are known, others not
    expect(view.byteLength).toBe(5_000 * 12);
    const copy = new IdLedger();
    copy.addBytes(view);
    expect(copy.size).toBe(5_000);
    expect(copy.lineOf('old-299')).toBe(299);
    expect(copy.lineOf('id-4999')).toBe(4999);
    expect(part.size).toBe(5_000);
    expect(part.delivered(0) && part.delivered(299) && part.delivered(4_999)).toBe(true);
    expect(part.delivered(5_000) || part.delivered(-1) || part.delivered(1 << 30)).toBe(false);
  });

  it('should keep 12 bytes an id when serialised', () => {
    const l = new IdLedger();
    for (let i = 0; i < 1000; i++) l.add(String(i), i);
    expect(l.toBytes().byteLength).toBe(12_000);
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
    expect(readMessage(JSON.stringify({ Service: 'Amazon S3', Event: 's3:TestEvent', Time: 'x', Bucket: 'b' }))).toEqual({ kind: 'test-event' });
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
    const texts = Array.from({ length: 12 }, (_, i) => `{"i":${i},"t":"${i === 3 ? 'é☕😀'.repeat(1000) : 'x'.repeat(1_000_000)}"}`);
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
