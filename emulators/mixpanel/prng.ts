/**
 * Seeded randomness for the dataset generator: mulberry32, re-seeded per event from a murmur3-finalised hash of
 * (seed, index, stream), so any event can be generated on its own (random access, no state carried between events).
 */

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** 32-bit seed of stream `stream` of item `index` under the dataset seed (`seedLo`, `seedHi`). */
export function seedFor(seedLo: number, seedHi: number, index: number, stream: number): number {
  const lo = index >>> 0;
  const hi = Math.floor(index / 4_294_967_296) >>> 0;
  let h = fmix(seedLo ^ Math.imul(stream, 0x9e3779b9));
  h = fmix(h ^ seedHi);
  h = fmix(h ^ lo);
  return fmix(h ^ Math.imul(hi, 0x85ebca6b) ^ stream);
}

// Number#toString(radix) is slow in V8: lookup tables instead.
const HEX2: readonly string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));
const B36 = '0123456789abcdefghijklmnopqrstuvwxyz';
const B36_LOWER: readonly number[] = [...B36].map((c) => c.charCodeAt(0));
const B36_UPPER: readonly number[] = [...B36.toUpperCase()].map((c) => c.charCodeAt(0));
const HEX_LOWER: readonly number[] = [...'0123456789abcdef'].map((c) => c.charCodeAt(0));
const HEX_UPPER: readonly number[] = [...'0123456789ABCDEF'].map((c) => c.charCodeAt(0));
const UUID_VARIANT = [0x38, 0x39, 0x61, 0x62]; // 8 9 a b
const UUID_VARIANT_UPPER = [0x38, 0x39, 0x41, 0x42]; // 8 9 A B

/** Random id shapes: base-36 (lower/upper), hex, and version-4 UUIDs (lower/upper). */
export type IdKind = 'b36' | 'B36' | 'hex' | 'uuid' | 'UUID';

export class Rng {
  private a = 0;

  reseed(seed: number): void {
    this.a = seed | 0;
  }

  /** 32 random bits. */
  u32(): number {
    this.a = (this.a + 0x6d2b79f5) | 0;
    let t = Math.imul(this.a ^ (this.a >>> 15), 1 | this.a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.u32() / 4_294_967_296;
  }

  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)] as T;
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  hex(chars: number): string {
    let s = '';
    while (s.length < chars) {
      const x = this.u32();
      s += (HEX2[x & 255] as string) + HEX2[(x >>> 8) & 255] + HEX2[(x >>> 16) & 255] + HEX2[x >>> 24];
    }
    return s.length === chars ? s : s.slice(0, chars);
  }

  base36(chars: number): string {
    let s = '';
    let x = 0;
    for (let k = 0; k < chars; k++) {
      if (k % 6 === 0) x = this.u32();
      s += B36[x % 36];
      x = Math.floor(x / 36);
    }
    return s;
  }

  /**
   * Writes a random id of `kind` as character codes into `out` at `at` (a UUID is always 36 characters; `len` is
   * ignored) and returns its length. Ids are produced as bytes so that lines can be written without building strings.
   */
  fillId(kind: IdKind, len: number, out: Uint8Array, at: number): number {
    if (kind === 'uuid' || kind === 'UUID') {
      const hex = kind === 'uuid' ? HEX_LOWER : HEX_UPPER;
      let x = 0;
      let bits = 0;
      for (let i = 0; i < 36; i++) {
        if (i === 8 || i === 13 || i === 18 || i === 23) {
          out[at + i] = 45;
        } else if (i === 14) {
          out[at + i] = 52;
        } else if (i === 19) {
          out[at + i] = (kind === 'uuid' ? UUID_VARIANT : UUID_VARIANT_UPPER)[this.u32() & 3] as number;
        } else {
          if (bits === 0) {
            x = this.u32();
            bits = 8;
          }
          out[at + i] = hex[x & 15] as number;
          x >>>= 4;
          bits--;
        }
      }
      return 36;
    }
    if (kind === 'hex') {
      let x = 0;
      for (let i = 0; i < len; i++) {
        if ((i & 7) === 0) x = this.u32();
        out[at + i] = HEX_LOWER[x & 15] as number;
        x >>>= 4;
      }
      return len;
    }
    const alphabet = kind === 'b36' ? B36_LOWER : B36_UPPER;
    let x = 0;
    for (let i = 0; i < len; i++) {
      if (i % 6 === 0) x = this.u32();
      out[at + i] = alphabet[x % 36] as number;
      x = Math.floor(x / 36);
    }
    return len;
  }

  /** A version-4 UUID. */
  uuid(upper = false): string {
    const h = this.hex(32);
    const v = `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-${'89ab'[this.u32() & 3] ?? '8'}${h.slice(17, 20)}-${h.slice(20, 32)}`;
    return upper ? v.toUpperCase() : v;
  }
}

/** Weighted choice with one uniform draw. */
export class Weighted<T> {
  readonly items: readonly T[];
  private readonly cumulative: readonly number[];

  constructor(entries: ReadonlyArray<readonly [T, number]>) {
    this.items = entries.map((e) => e[0]);
    const total = entries.reduce((s, e) => s + e[1], 0);
    let acc = 0;
    this.cumulative = entries.map((e) => (acc += e[1] / total));
  }

  pick(u: number): T {
    const c = this.cumulative;
    for (let i = 0; i < c.length; i++) if (u < (c[i] as number)) return this.items[i] as T;
    return this.items[this.items.length - 1] as T;
  }
}
