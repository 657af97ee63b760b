/**
 * A compact set of delivered ids: 64-bit digests of `_id` with the staged line each one came from.
 *
 * A window of two million events fits in ~48 MB of typed arrays instead of hundreds of MB of strings, and the
 * serialised form (12 bytes an id) is what a receipt stores so that a resumed or forced re-export never sends an id
 * twice. Digest collisions are possible in principle (~1e-7 for 2 M ids in 64 bits); one would surface as a
 * `duplicate` rejection with the record kept in rejected/, never as a silent loss.
 */

const EMPTY = 0;

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
  // 0/0 marks an empty slot.
  return [h1 >>> 0 || 1, h2 >>> 0];
}

export class IdLedger {
  #hi: Uint32Array;
  #lo: Uint32Array;
  #line: Int32Array;
  #size = 0;

  constructor(capacity = 1024) {
    let c = 1024;
    while (c < capacity * 2) c *= 2;
    this.#hi = new Uint32Array(c);
    this.#lo = new Uint32Array(c);
    this.#line = new Int32Array(c);
  }

  get size(): number {
    return this.#size;
  }

  #slot(hi: number, lo: number): number {
    const mask = this.#hi.length - 1;
    let i = (lo ^ Math.imul(hi, 0x9e3779b1)) & mask;
    while (this.#hi[i] !== EMPTY && (this.#hi[i] !== hi || this.#lo[i] !== lo)) i = (i + 1) & mask;
    return i;
  }

  /** The line recorded for `id`, or -1 when absent (a line of -1 is stored for ids from elsewhere). */
  lineOf(id: string): number | undefined {
    const [hi, lo] = digest(id);
    const i = this.#slot(hi, lo);
    return this.#hi[i] === EMPTY ? undefined : this.#line[i]!;
  }

  has(id: string): boolean {
    return this.lineOf(id) !== undefined;
  }

  /** Adds `id`; returns false when it was already present. */
  add(id: string, line = -1): boolean {
    const [hi, lo] = digest(id);
    return this.#addDigest(hi, lo, line);
  }

  #addDigest(hi: number, lo: number, line: number): boolean {
    const i = this.#slot(hi, lo);
    if (this.#hi[i] !== EMPTY) return false;
    this.#hi[i] = hi;
    this.#lo[i] = lo;
    this.#line[i] = line;
    this.#size++;
    if (this.#size * 2 > this.#hi.length) this.#grow();
    return true;
  }

  #grow(): void {
    const [hi, lo, line] = [this.#hi, this.#lo, this.#line];
    this.#hi = new Uint32Array(hi.length * 2);
    this.#lo = new Uint32Array(hi.length * 2);
    this.#line = new Int32Array(hi.length * 2);
    this.#size = 0;
    for (let i = 0; i < hi.length; i++) if (hi[i] !== EMPTY) this.#addDigest(hi[i]!, lo[i]!, line[i]!);
  }

  /** Serialises as little-endian (hi, lo, line) triples. */
  toBytes(): Uint8Array {
    const out = new Uint8Array(this.#size * 12);
    const view = new DataView(out.buffer);
    let o = 0;
    for (let i = 0; i < this.#hi.length; i++) {
      if (this.#hi[i] === EMPTY) continue;
      view.setUint32(o, this.#hi[i]!, true);
      view.setUint32(o + 4, this.#lo[i]!, true);
      view.setInt32(o + 8, this.#line[i]!, true);
      o += 12;
    }
    return out;
  }

  /** Adds every id of a serialised ledger; `line` overrides the stored lines (e.g. -1 for "from elsewhere"). */
  addBytes(bytes: Uint8Array, line?: number): void {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let o = 0; o + 12 <= bytes.byteLength; o += 12) {
      this.#addDigest(view.getUint32(o, true), view.getUint32(o + 4, true), line ?? view.getInt32(o + 8, true));
    }
  }
}
