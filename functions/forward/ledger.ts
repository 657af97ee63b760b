/**
 * Delivered ids, compactly: 64-bit digests of `_id`.
 * - {@link IdSet}: every id a window delivered or is about to send (one open-addressing table of (hi, lo) pairs in a
 *   single Int32Array, filled up to 80 %: 10 bytes an id, so a window of two million events fits in ~20 MB; a probe
 *   touches one cache line);
 * - {@link PartLedger}: what one part delivered, serialised as 12 bytes an id (hi, lo, line) — what a receipt's `.ids`
 *   object stores, so that a resumed or forced re-export never sends an id twice.
 * Digest collisions are possible in principle (~1e-7 for 2 M ids in 64 bits); one would surface as a `duplicate`
 * rejection with the record kept in rejected/, never as a silent loss.
 */
import { Buffer } from 'node:buffer';

/** Fill factor the table grows at (linear probing: ~3 probes for a hit, ~13 for a miss at 80 %). */
const MAX_LOAD = 0.8;
const MIN_SLOTS = 1024;
/** Bytes of one id in a serialised ledger: hi, lo, line (little-endian int32). */
const ENTRY_BYTES = 12;

/** 64-bit digest of a string as two 32-bit halves (two independent multiplicative hashes over UTF-16 units). */
export function digest(id: string): [number, number] {
  let h1 = 0xdeadbeef;
  let h2 = 0x41c6ce57;
  for (let i = 0; i < id.length; i++) {
    const c = id.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 2654435761);
    h2 = Math.imul(h2 ^ c, 1597334677);
  }
  h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
  h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
  // hi = 0 marks an empty slot.
  return [h1 >>> 0 || 1, h2 >>> 0];
}

/** Slots for `ids` entries at {@link MAX_LOAD}. */
const slotsFor = (ids: number): number => Math.max(MIN_SLOTS, Math.ceil(ids / MAX_LOAD) + 1);

export class IdSet {
  /** Slot i is [2i] = hi (0: empty), [2i + 1] = lo (int32 bit patterns). */
  #table: Int32Array;
  #slots: number;
  #size = 0;

  /** @param capacity ids expected: the table holds that many without growing. */
  constructor(capacity = 0) {
    this.#slots = slotsFor(capacity);
    this.#table = new Int32Array(this.#slots * 2);
  }

  get size(): number {
    return this.#size;
  }

  /** Bytes the table occupies (diagnostics). */
  get tableBytes(): number {
    return this.#table.byteLength;
  }

  has(id: string): boolean {
    const [hi, lo] = digest(id);
    return this.#table[this.#find(hi | 0, lo | 0)] !== 0;
  }

  /** Adds `id`; returns false when it was already present. */
  add(id: string): boolean {
    const [hi, lo] = digest(id);
    return this.#addDigest(hi | 0, lo | 0);
  }

  /**
   * Adds every id of a serialised ledger ({@link PartLedger.bytesView}, an `.ids` object), or only those whose digest
   * `keep` accepts (its high half: a partition's ids, staging/partition.ts).
   */
  addBytes(bytes: Uint8Array, keep?: (hi: number) => boolean): void {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    // Grown once to hold them all, instead of doubling repeatedly while loading (a filtered load grows as it goes).
    const ids = this.#size + Math.floor(bytes.byteLength / ENTRY_BYTES);
    if (keep === undefined && ids > this.#slots * MAX_LOAD) this.#rehash(ids);
    for (let o = 0; o + ENTRY_BYTES <= bytes.byteLength; o += ENTRY_BYTES) {
      // A digest's hi is never 0 (digest()); 0 would read as an empty slot.
      const hi = view.getInt32(o, true) || 1;
      if (keep === undefined || keep(hi)) this.#addDigest(hi, view.getInt32(o + 4, true));
    }
  }

  /** The offset of the slot holding (hi, lo), or of the empty slot where it would go. */
  #find(hi: number, lo: number): number {
    const t = this.#table;
    let o = 2 * (((Math.imul(hi, 0x9e3779b1) ^ lo) >>> 0) % this.#slots);
    for (;;) {
      const h = t[o]!;
      if (h === 0 || (h === hi && t[o + 1] === lo)) return o;
      o += 2;
      if (o === t.length) o = 0;
    }
  }

  #addDigest(hi: number, lo: number): boolean {
    const o = this.#find(hi, lo);
    const t = this.#table;
    if (t[o] !== 0) return false;
    t[o] = hi;
    t[o + 1] = lo;
    this.#size++;
    if (this.#size > this.#slots * MAX_LOAD) this.#rehash(this.#size * 2);
    return true;
  }

  /** Moves every entry into a table sized for `ids` entries. */
  #rehash(ids: number): void {
    const old = this.#table;
    this.#slots = slotsFor(ids);
    this.#table = new Int32Array(this.#slots * 2);
    this.#size = 0;
    for (let o = 0; o < old.length; o += 2) if (old[o] !== 0) this.#addDigest(old[o]!, old[o + 1]!);
  }
}

/**
 * What one part delivered: the serialised ledger (12 bytes an id, in delivery order) kept up to date as ids are added,
 * and which of the part's lines were delivered (one bit a line). A part's ledger is saved after every chunk; written
 * this way a save copies nothing, and no per-part hash table is needed: "was this id delivered before?" is the window
 * set's question ({@link IdSet}), "was this line delivered by an earlier attempt?" this one's.
 */
export class PartLedger {
  #bytes: Buffer;
  #size = 0;
  #lines: Uint8Array;

  /** @param lines the part's line count */
  constructor(lines: number) {
    this.#bytes = Buffer.allocUnsafeSlow(Math.max(64, lines) * ENTRY_BYTES);
    this.#lines = new Uint8Array(Math.ceil(Math.max(1, lines) / 8));
  }

  /** Ids recorded. */
  get size(): number {
    return this.#size;
  }

  /** Records that `id`, staged at `line`, was delivered. */
  add(id: string, line: number): void {
    const [hi, lo] = digest(id);
    this.#append(hi | 0, lo | 0, line);
  }

  /** True when an earlier attempt or this one delivered the record at `line`. */
  delivered(line: number): boolean {
    return line >= 0 && line >> 3 < this.#lines.length && (this.#lines[line >> 3]! & (1 << (line & 7))) !== 0;
  }

  /** Loads a saved ledger of this part (an earlier attempt's progress). */
  addBytes(bytes: Uint8Array): void {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let o = 0; o + ENTRY_BYTES <= bytes.byteLength; o += ENTRY_BYTES)
      this.#append(view.getInt32(o, true), view.getInt32(o + 4, true), view.getInt32(o + 8, true));
  }

  /** The serialised ledger without copying; valid until the next `add`: write it out before adding more. */
  bytesView(): Uint8Array {
    return this.#bytes.subarray(0, this.#size * ENTRY_BYTES);
  }

  #append(hi: number, lo: number, line: number): void {
    const at = this.#size * ENTRY_BYTES;
    if (at + ENTRY_BYTES > this.#bytes.length) {
      const bigger = Buffer.allocUnsafeSlow(this.#bytes.length * 2);
      this.#bytes.copy(bigger, 0, 0, at);
      this.#bytes = bigger;
    }
    this.#bytes.writeInt32LE(hi, at);
    this.#bytes.writeInt32LE(lo, at + 4);
    this.#bytes.writeInt32LE(line, at + 8);
    this.#size++;
    if (line < 0) return;
    if (line >> 3 >= this.#lines.length) {
      const bigger = new Uint8Array(Math.max(2 * this.#lines.length, (line >> 3) + 1));
      bigger.set(this.#lines);
      this.#lines = bigger;
    }
    this.#lines[line >> 3]! |= 1 << (line & 7);
  }
}
