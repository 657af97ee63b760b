/**
 * The S3 client and the small JSON object helpers the product uses.
 * Endpoints come from the SDK's own `AWS_ENDPOINT_URL_S3`; a custom endpoint (s3rver, MinIO) wants path-style URLs.
 */
import {
  GetObjectCommand,
  NoSuchKey,
  PutObjectCommand,
  HeadObjectCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';

export function createS3Client(env: NodeJS.ProcessEnv = process.env, overrides: S3ClientConfig = {}): S3Client {
  const custom = env.AWS_ENDPOINT_URL_S3 !== undefined || overrides.endpoint !== undefined;
  return new S3Client({
    ...(custom ? { forcePathStyle: true } : {}),
    // Streamed bodies of unknown length: compute checksums only where S3 requires them (s3rver stores aws-chunked
    // framing otherwise; see the toolchain notes in the README).
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...overrides,
  });
}

export async function getJson<T>(s3: S3Client, bucket: string, key: string): Promise<T | undefined> {
  const text = await getText(s3, bucket, key);
  return text === undefined ? undefined : (JSON.parse(text) as T);
}

export async function getText(s3: S3Client, bucket: string, key: string): Promise<string | undefined> {
  try {
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return await out.Body!.transformToString('utf8');
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

export async function getBytes(s3: S3Client, bucket: string, key: string): Promise<Uint8Array | undefined> {
  try {
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    return await out.Body!.transformToByteArray();
  } catch (error) {
    if (isNotFound(error)) return undefined;
    throw error;
  }
}

export async function putJson(s3: S3Client, bucket: string, key: string, value: unknown): Promise<void> {
  await s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: key,
      Body: JSON.stringify(value, null, 1),
      ContentType: 'application/json',
    }),
  );
}

export async function exists(s3: S3Client, bucket: string, key: string): Promise<boolean> {
  try {
    await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    return true;
  } catch (error) {
    if (isNotFound(error)) return false;
    throw error;
  }
}

/**
 * The text of a failure for an error message that goes on with what happens next: an S3 client error names the
 * staging bucket, the S3 error and what to check (`check`); any other error keeps its own message. No final full stop.
 */
export function failureText(error: unknown, bucket: string, check: string): string {
  const e = error instanceof Error ? error : new Error(String(error));
  const status = (e as { $metadata?: { httpStatusCode?: number } }).$metadata;
  const text =
    status === undefined
      ? e.message
      : `the staging bucket ${bucket} answered ${e.name}${status.httpStatusCode !== undefined ? ` (HTTP ${status.httpStatusCode})` : ''}: ${e.message} (the S3 client already retried; ${check})`;
  let end = text.length;
  while (end > 0 && (text[end - 1] === '.' || text[end - 1] === ' ' || text[end - 1] === '\n')) end--;
  return text.slice(0, end);
}

export function isNotFound(error: unknown): boolean {
  if (error instanceof NoSuchKey) return true;
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === 'NotFound' || e?.name === 'NoSuchKey' || e?.$metadata?.httpStatusCode === 404;
}

/** S3 failures worth another attempt: throttling, 5xx, timeouts and broken connections (no HTTP answer). */
export function isTransientS3(error: unknown): boolean {
  const e = error as { name?: string; $metadata?: { httpStatusCode?: number }; $retryable?: unknown };
  const status = e?.$metadata?.httpStatusCode;
  if (e?.$retryable !== undefined) return true;
  if (status === undefined) {
    const text = `${e?.name} ${(error as Error)?.message}`;
    return (
      e?.$metadata !== undefined || /ECONNRESET|EPIPE|ETIMEDOUT|socket hang up|TimeoutError|NetworkingError/i.test(text)
    );
  }
  return status >= 500 || status === 429 || e.name === 'SlowDown' || e.name === 'RequestTimeout';
}
