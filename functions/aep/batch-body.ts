/**
 * The content of an uploaded batch file, and whether an upload of it can be retried: bytes, text and a function that
 * re-opens a stream can be sent again; a bare stream only once.
 */
import { Buffer } from 'node:buffer';

/** A file's content: bytes, text, or a function that (re)opens a stream, so a failed upload can be sent again. */
export type BatchFileBody =
  | Uint8Array
  | string
  | (() => AsyncIterable<Uint8Array | string>)
  /** A one-shot stream: uploads from it cannot be retried once it has been read. Prefer the function form. */
  | AsyncIterable<Uint8Array | string>;

/** A body as the uploader sees it: opened once per attempt. */
export interface BodySource {
  readonly replayable: boolean;
  readonly size: number | undefined;
  opened: number;
  open(): Uint8Array | AsyncIterable<Uint8Array | string>;
}

/** Wraps `body` so each upload attempt opens it anew (or fails when a one-shot stream was read already). */
export function bodySource(body: BatchFileBody): BodySource {
  if (typeof body === 'string' || body instanceof Uint8Array) {
    const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    return {
      replayable: true,
      size: bytes.length,
      opened: 0,
      open() {
        this.opened++;
        return bytes;
      },
    };
  }
  if (typeof body === 'function') {
    return {
      replayable: true,
      size: undefined,
      opened: 0,
      open() {
        this.opened++;
        return body();
      },
    };
  }
  return {
    replayable: false,
    size: undefined,
    opened: 0,
    open() {
      if (this.opened > 0) throw new Error('the one-shot upload stream was already read');
      this.opened++;
      return body;
    },
  };
}
