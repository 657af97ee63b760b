/** Small HTTP helpers shared by the AEP emulator's endpoints: bounded body reading, line streaming, JSON replies. */
import type { IncomingMessage, ServerResponse } from 'node:http';

/** One request/response pair, with the request body bytes counted as they are read. */
export interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  /** Request body bytes read so far (the whole body once a handler has read or drained it). */
  bytes: number;
}

export type BodyRead = { readonly tooLarge: false; readonly body: Buffer } | { readonly tooLarge: true };

/**
 * Reads the whole request body, keeping at most `limit` bytes. A body over the limit is still read to its end (and
 * discarded) so the client sees the error response rather than a reset connection.
 */
export async function readBody(ex: Exchange, limit: number): Promise<BodyRead> {
  const declared = Number(ex.req.headers['content-length']);
  const chunks: Buffer[] = [];
  let tooLarge = Number.isFinite(declared) && declared > limit;
  for await (const chunk of ex.req as AsyncIterable<Buffer>) {
    ex.bytes += chunk.length;
    if (tooLarge) continue;
    if (ex.bytes > limit) {
      tooLarge = true;
      chunks.length = 0;
      continue;
    }
    chunks.push(chunk);
  }
  return tooLarge
    ? { tooLarge: true }
    : { tooLarge: false, body: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks) };
}

/** Reads and discards the request body (so an early error reply does not reset the connection). */
export async function drain(ex: Exchange): Promise<void> {
  if (ex.req.readableEnded) return;
  for await (const chunk of ex.req as AsyncIterable<Buffer>) ex.bytes += chunk.length;
}

export interface Line {
  /** 1-based line number in the body. */
  readonly number: number;
  /** The line's bytes without the line break, or undefined when it was longer than `maxLineBytes` (not kept). */
  readonly text: string | undefined;
  readonly bytes: number;
}

/**
 * Streams the request body as lines (`\n` or `\r\n`), holding at most one line of up to `maxLineBytes` in memory.
 * Longer lines are reported with `text: undefined`. Stops yielding (but keeps counting and draining) once the body
 * passes `maxBodyBytes`; `ex.bytes` then tells the caller it was too large.
 */
export async function* readLines(ex: Exchange, maxLineBytes: number, maxBodyBytes: number): AsyncGenerator<Line> {
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let oversized = false;
  let number = 0;
  const finish = (tail: Buffer): Line => {
    number += 1;
    const bytes = pendingBytes + tail.length;
    let text: string | undefined;
    if (!oversized && bytes <= maxLineBytes) {
      const whole = pending.length === 0 ? tail : Buffer.concat([...pending, tail]);
      const end = whole.length > 0 && whole[whole.length - 1] === 13 ? whole.length - 1 : whole.length;
      text = whole.toString('utf8', 0, end);
    }
    pending = [];
    pendingBytes = 0;
    oversized = false;
    return { number, text, bytes };
  };
  for await (const chunk of ex.req as AsyncIterable<Buffer>) {
    ex.bytes += chunk.length;
    if (ex.bytes > maxBodyBytes) continue;
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl !== -1; nl = chunk.indexOf(10, start)) {
      yield finish(chunk.subarray(start, nl));
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      pendingBytes += rest.length;
      if (pendingBytes > maxLineBytes) {
        oversized = true;
        pending = [];
      } else {
        pending.push(rest);
      }
    }
  }
  if (pendingBytes > 0 && ex.bytes <= maxBodyBytes) yield finish(Buffer.alloc(0));
}

/** Sends a JSON reply (or an empty one when `body` is undefined). */
export function sendJson(ex: Exchange, status: number, body?: unknown, headers: Record<string, string> = {}): void {
  if (ex.res.headersSent) return;
  if (body === undefined) {
    ex.res.writeHead(status, status === 204 ? headers : { 'content-length': '0', ...headers });
    ex.res.end();
    return;
  }
  const text = JSON.stringify(body);
  ex.res.writeHead(status, {
    'content-type': 'application/json;charset=utf-8',
    'content-length': String(Buffer.byteLength(text)),
    ...headers,
  });
  ex.res.end(text);
}

/** Parses JSON into a result instead of throwing (the caller answers 400). */
export function parseJson(
  body: Buffer | string,
): { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: string } {
  try {
    return { ok: true, value: JSON.parse(typeof body === 'string' ? body : body.toString('utf8')) };
  } catch (error) {
    return { ok: false, error: (error as Error).message };
  }
}

/** The bearer token of a request (`Authorization: Bearer <t>`; DCS also takes the bare token), or undefined. */
export function bearerToken(ex: Exchange): string | undefined {
  const header = ex.req.headers.authorization;
  if (typeof header !== 'string' || header.trim() === '') return undefined;
  const m = /^\s*Bearer\s+(\S+)\s*$/i.exec(header);
  return m?.[1] ?? header.trim();
}

/** A header's single value (undefined when missing or empty). */
export function header(ex: Exchange, name: string): string | undefined {
  const value = ex.req.headers[name];
  const single = Array.isArray(value) ? value[0] : value;
  return single === undefined || single.trim() === '' ? undefined : single.trim();
}
