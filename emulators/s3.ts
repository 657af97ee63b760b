/**
 * S3 on loopback with s3rver (a real S3 HTTP server over a folder), and a client configured for it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { createS3Client } from '#staging/s3';

export interface LocalS3 {
  readonly endpoint: string;
  readonly client: S3Client;
  readonly directory: string;
  readonly server: S3rver;
  close(): Promise<void>;
}

/** Starts s3rver on a free port over `directory` (a fresh temporary folder by default) and creates `buckets`. */
export async function startLocalS3(buckets: string[], directory?: string): Promise<LocalS3> {
  const dir = directory ?? (await mkdtemp(path.join(tmpdir(), 's3rver-')));
  const server = new S3rver({
    port: 0,
    address: '127.0.0.1',
    silent: true,
    directory: dir,
    allowMismatchedSignatures: true,
  });
  const address = (await server.run()) as AddressInfo;
  const endpoint = `http://127.0.0.1:${address.port}`;
  const client = createS3Client(
    {},
    { endpoint, region: 'us-east-1', credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } },
  );
  for (const Bucket of buckets) {
    try {
      await client.send(new CreateBucketCommand({ Bucket }));
    } catch (error) {
      if (
        (error as { name?: string }).name !== 'BucketAlreadyOwnedByYou' &&
        (error as { name?: string }).name !== 'BucketAlreadyExists'
      )
        throw error;
    }
  }
  return {
    endpoint,
    client,
    directory: dir,
    server,
    close: async () => {
      client.destroy();
      await server.close();
      if (directory === undefined) await rm(dir, { recursive: true, force: true });
    },
  };
}
