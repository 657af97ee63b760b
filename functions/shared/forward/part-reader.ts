/**
 * Reads a staged part back as batches of lines, checking the SHA-256 and size the manifest recorded: a part that was
 * replaced or damaged after commit is refused instead of forwarded.
 */
import { createHash } from 'node:crypto';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Manifest } from '#shared/staging/manifest';

export class PartIntegrityError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PartIntegrityError';
  }
}

/** Streams the lines of a part, `batchLines` at a time; memory stays bounded by one batch. */
export async function* readPartLines(s3: S3Client, bucket: string, part: Manifest['parts'][number], batchLines = 2000): AsyncGenerator<string[]> {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: part.key }));
  const body = out.Body as Readable;
  const hash = createHash('sha256');
  let bytes = 0;
  body.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    bytes += chunk.length;
  });
  const gunzip = body.pipe(createGunzip());
  body.on('error', (error) => gunzip.destroy(error));
  let tail = '';
  let batch: string[] = [];
  let lines = 0;
  const decoder = new StringDecoder('utf8');
  for await (const chunk of gunzip) {
    const parts = (tail + decoder.write(chunk as Buffer)).split('\n');
    tail = parts.pop() ?? '';
    for (const line of parts) {
      if (line === '') continue;
      batch.push(line);
      if (batch.length >= batchLines) {
        lines += batch.length;
        yield batch;
        batch = [];
      }
    }
  }
  tail += decoder.end();
  if (tail !== '') batch.push(tail);
  lines += batch.length;
  const sha = hash.digest('hex');
  if (sha !== part.sha256 || bytes !== part.bytes) {
    throw new PartIntegrityError(`part ${part.key} does not match its manifest (sha256 ${sha.slice(0, 12)}… / ${bytes} bytes, expected ${part.sha256.slice(0, 12)}… / ${part.bytes}): it was changed after commit; re-export the window with "force": true`);
  }
  if (lines !== part.events) throw new PartIntegrityError(`part ${part.key} holds ${lines} lines but its manifest says ${part.events}`);
  if (batch.length > 0) yield batch;
}
