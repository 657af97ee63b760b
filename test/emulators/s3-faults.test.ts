/**
 * The fault-injecting S3 proxy itself: conditional writes behave like S3's (atomic per key), faults apply to the
 * requests they name, and a crash stops every later request until the process is revived.
 */
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { afterEach, describe, expect, it } from 'vitest';
import { type LocalS3, startLocalS3 } from '#emulators/s3';
import { type S3FaultProxy, startS3FaultProxy } from '#emulators/s3-faults';
import { createS3Client } from '#staging/s3';

let s3: LocalS3 | undefined;
let proxy: S3FaultProxy | undefined;
let client: S3Client | undefined;
afterEach(async () => {
  client?.destroy();
  await proxy?.close();
  await s3?.close();
  [s3, proxy, client] = [undefined, undefined, undefined];
});

async function setup(): Promise<S3Client> {
  s3 = await startLocalS3(['faults']);
  proxy = await startS3FaultProxy(s3.endpoint);
  client = createS3Client(
    {},
    { endpoint: proxy.url, region: 'us-east-1', credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } },
  );
  return client;
}

const status = (e: unknown) => (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;

describe('S3 fault proxy', () => {
  it('should implement If-None-Match: * and If-Match like S3, atomically per key', async () => {
    const c = await setup();
    const put = (body: string, condition: { IfNoneMatch?: string; IfMatch?: string }) =>
      c.send(new PutObjectCommand({ Bucket: 'faults', Key: 'k', Body: body, ...condition }));
    // Ten concurrent creates: exactly one wins.
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => put(`v${i}`, { IfNoneMatch: '*' })));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(
      results.filter((r) => r.status === 'rejected').map((r) => status((r as PromiseRejectedResult).reason)),
    ).toEqual(Array(9).fill(412));
    const etag = (results.find((r) => r.status === 'fulfilled') as PromiseFulfilledResult<{ ETag?: string }>).value
      .ETag!;
    expect(status(await put('x', { IfMatch: '"0000"' }).catch((e: unknown) => e))).toBe(412);
    const next = await put('y', { IfMatch: etag });
    expect(next.ETag).not.toBe(etag);
    expect(
      status(
        await c
          .send(new PutObjectCommand({ Bucket: 'faults', Key: 'missing', Body: 'z', IfMatch: etag }))
          .catch((e: unknown) => e),
      ),
    ).toBe(404);
    expect(await (await c.send(new GetObjectCommand({ Bucket: 'faults', Key: 'k' }))).Body!.transformToString()).toBe(
      'y',
    );
  });

  it('should apply a fault to the requests it names only, and refuse everything after a crash until revived', async () => {
    const c = await setup();
    proxy!.inject({ op: 'put', key: /^a\//, action: { kind: 'status', status: 403, code: 'AccessDenied' } });
    await c.send(new PutObjectCommand({ Bucket: 'faults', Key: 'other', Body: '1' }));
    expect(
      status(await c.send(new PutObjectCommand({ Bucket: 'faults', Key: 'a/1', Body: '1' })).catch((e: unknown) => e)),
    ).toBe(403);
    await c.send(new PutObjectCommand({ Bucket: 'faults', Key: 'a/1', Body: '1' }));
    proxy!.inject({ op: 'put', key: 'crash-here', action: { kind: 'crash', when: 'after' } });
    await expect(
      c.send(new PutObjectCommand({ Bucket: 'faults', Key: 'crash-here', Body: 'applied' })),
    ).rejects.toThrow();
    expect(proxy!.crashed).toBe(true);
    await expect(c.send(new GetObjectCommand({ Bucket: 'faults', Key: 'other' }))).rejects.toThrow(/crashed/);
    await proxy!.revive();
    // Applied before the crash, as S3 would have it.
    expect(
      await (await c.send(new GetObjectCommand({ Bucket: 'faults', Key: 'crash-here' }))).Body!.transformToString(),
    ).toBe('applied');
  });
});
