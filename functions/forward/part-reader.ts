/**
 * Reads a staged part back as batches of lines, checking the SHA-256 and size the manifest recorded: a part that was
 * replaced or damaged after commit is refused instead of forwarded.
 */
import { createHash } from 'node:crypto';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Manifest } from '#staging/manifest';
import { ConnectorError } from '#common/errors';

const LF = 0x0a;

/**
 * Output chunk of the part's gunzip: 4× Node's 16 KiB default, as the export client reads Mixpanel's body. Every chunk
 * is a round trip through the thread pool (a hand-off and a wake-up) and a pass of the line cutter; with 64 KiB,
 * gunzip + line cutting + decoding took 3.9–4.4 ms of CPU per 1,000 staged events against 6.2–6.9 with the default
 * (docs/performance.md, "The deployed runtime's Node; the part reader's gunzip chunk"). Larger chunks gained little more on Node 22 and lost on
 * Node 20, where such buffers are mapped and unmapped one by one under the functions' malloc settings.
 */
export const PART_GUNZIP_CHUNK_BYTES = 64 * 1024;

export class PartIntegrityError extends ConnectorError {
  constructor(message: string) {
    super('permanent', message);
    this.name = 'PartIntegrityError';
  }
}

/**
 * Streams the lines of a part, `batchLines` at a time; memory stays bounded by one batch. Batches are small so that
 * their strings die in the young generation: a batch that outlives two scavenges is promoted, and the old generation
 * then grows by the data volume. With 32 lines instead of 256, scavenges promote about half as much and the forwarder
 * runs 34–37 full collections per 500 k records instead of 61–67 (14 instead of 30–33 with a 64 MB old-generation
 * floor, cf. `LAMBDA_NODE_ARGS`; docs/performance.md "The old-generation floor and the part reader's batches").
 */
export async function* readPartLines(
  s3: S3Client,
  bucket: string,
  part: Manifest['parts'][number],
  batchLines = 32,
  /** False when the manifest that recorded the part's digest was replaced (a later run's): lines are read as is. */
  checkIntegrity = true,
): AsyncGenerator<string[]> {
  const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: part.key }));
  const body = out.Body as Readable;
  const hash = createHash('sha256');
  let bytes = 0;
  body.on('data', (chunk: Buffer) => {
    hash.update(chunk);
    bytes += chunk.length;
  });
  const gunzip = body.pipe(createGunzip({ chunkSize: PART_GUNZIP_CHUNK_BYTES }));
  body.on('error', (error) => gunzip.destroy(error));
  // Lines are cut at newline bytes and each is decoded on its own: UTF-8 never has a 0x0A byte inside a character, and
  // this skips decoding whole chunks into text only to split (copy) that text again.
  let pending: Buffer[] = [];
  let batch: string[] = [];
  let lines = 0;
  for await (const chunk of gunzip) {
    let data = chunk as Buffer;
    if (pending.length > 0) {
      pending.push(data);
      if (data.indexOf(LF) < 0) continue;
      data = Buffer.concat(pending);
      pending = [];
    }
    let start = 0;
    for (let end = data.indexOf(LF); end !== -1; start = end + 1, end = data.indexOf(LF, start)) {
      if (end === start) continue;
      batch.push(data.toString('utf8', start, end));
      if (batch.length >= batchLines) {
        lines += batch.length;
        yield batch;
        batch = [];
      }
    }
    if (start < data.length) pending.push(data.subarray(start));
  }
  const tail = pending.length === 0 ? '' : Buffer.concat(pending).toString('utf8');
  if (tail !== '') batch.push(tail);
  lines += batch.length;
  const sha = hash.digest('hex');
  if (checkIntegrity && (sha !== part.sha256 || bytes !== part.bytes)) {
    throw new PartIntegrityError(
      `part ${part.key} does not match its manifest (sha256 ${sha.slice(0, 12)}… / ${bytes} bytes, expected ${part.sha256.slice(0, 12)}… / ${part.bytes}): it was changed after commit; re-export the window with "force": true`,
    );
  }
  if (checkIntegrity && lines !== part.events)
    throw new PartIntegrityError(`part ${part.key} holds ${lines} lines but its manifest says ${part.events}`);
  if (batch.length > 0) yield batch;
}
