/**
 * A growable byte buffer that JSON lines are written into directly, as UTF-8.
 *
 * Building a line as a JS string and encoding it afterwards costs several times more on Node 20 (string ropes are
 * slow to flatten, and JSON.stringify runs at ~115 MB/s): pre-encoded fragments copied with `Uint8Array#set`, plus
 * digits and ASCII ids written byte by byte, keep the emulator above 200k events/s. The server hands full chunks to the
 * socket with `take()`, which starts a fresh buffer instead of copying.
 */

const encoder = new TextEncoder();

/** UTF-8 bytes of `s`. */
export function utf8(s: string): Uint8Array {
  return encoder.encode(s);
}

export class LineBuffer {
  buf: Buffer;
  off = 0;
  private readonly chunkSize: number;

  constructor(chunkSize = 64 * 1024) {
    this.chunkSize = chunkSize;
    // Room for one chunk plus a typical line, so the common flush check never has to grow the buffer.
    this.buf = Buffer.allocUnsafe(chunkSize + 16 * 1024);
  }

  /** Bytes written since the last `take()`. */
  get length(): number {
    return this.off;
  }

  /** Makes room for `n` more bytes (copying into a larger buffer only for unusually large lines). */
  ensure(n: number): void {
    if (this.off + n <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.off + n + 1024));
    this.buf.copy(bigger, 0, 0, this.off);
    this.buf = bigger;
  }

  /** The bytes written so far; the buffer then starts afresh (the returned view stays valid). */
  take(): Buffer {
    const out = this.buf.subarray(0, this.off);
    this.buf = Buffer.allocUnsafe(this.chunkSize + 16 * 1024);
    this.off = 0;
    return out;
  }

  /** Forgets what was written (reusing the buffer). */
  reset(): void {
    this.off = 0;
  }

  /** Decodes the bytes in `[from, to)` (for tests and debugging). */
  text(from = 0, to = this.off): string {
    return this.buf.toString('utf8', from, to);
  }

  bytes(b: Uint8Array): void {
    const n = b.length;
    this.ensure(n);
    if (n <= 16) {
      const buf = this.buf;
      const o = this.off;
      for (let i = 0; i < n; i++) buf[o + i] = b[i] as number;
    } else {
      this.buf.set(b, this.off);
    }
    this.off += n;
  }

  byte(c: number): void {
    this.ensure(1);
    this.buf[this.off++] = c;
  }

  /** A string of code points below 0x80 (ids, numbers): one byte per character. */
  ascii(s: string): void {
    const n = s.length;
    this.ensure(n);
    const buf = this.buf;
    let o = this.off;
    if (n <= 48) {
      for (let i = 0; i < n; i++) buf[o++] = s.charCodeAt(i);
      this.off = o;
    } else {
      this.off += buf.write(s, o, 'latin1');
    }
  }

  /** Any string, UTF-8 encoded. */
  utf8(s: string): void {
    this.ensure(s.length * 3);
    this.off += this.buf.write(s, this.off, 'utf8');
  }

  /** A number as JSON writes it; integers are written digit by digit (no number-to-string conversion). */
  num(v: number): void {
    if (!Number.isSafeInteger(v)) {
      this.ascii(Number.isFinite(v) ? String(v) : 'null');
      return;
    }
    this.ensure(17);
    const buf = this.buf;
    let o = this.off;
    let x = v;
    if (x < 0) {
      buf[o++] = 45;
      x = -x;
    }
    let digits = 1;
    for (let p = 10; p <= x; p *= 10) digits++;
    const end = o + digits;
    for (let i = end - 1; i >= o; i--) {
      const q = Math.floor(x / 10);
      buf[i] = 48 + (x - q * 10);
      x = q;
    }
    this.off = end;
  }
}
