/**
 * One forwarder per window at a time: a lease object in the window's delivery folder, taken and handed over with S3
 * conditional writes (`If-None-Match: *` to create, `If-Match: <etag>` to take over or renew;
 * https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html).
 *
 * Why: two forwarders of one window reading the same ledgers would both send the same ids. The lease expires with
 * its holder's invocation, so a crash blocks the window only until then; a store that ignores conditional headers
 * (s3rver) makes it protect nothing. The whole contract: docs/architecture.md#lease.
 */
import { randomUUID } from 'node:crypto';
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import type { Log } from '#common/log';
import { isNotFound } from '#staging/s3';
import { ConnectorError } from '#common/errors';

/** Lease lifetime when the holder has no deadline (CLI); it is renewed every third of it. */
export const LEASE_TTL_WITHOUT_DEADLINE_MS = 10 * 60_000;
/** Kept after the holder's deadline: the Lambda stops sending at its deadline and ends within its safety margin. */
export const LEASE_GRACE_MS = 60_000;

interface LeaseBody {
  readonly owner: string;
  readonly window: string;
  readonly acquiredAt: string;
  readonly expiresAt: string;
  readonly released?: boolean;
}

/** Another forwarder holds the window: the message is retried after the visibility timeout. */
export class LeaseHeldError extends ConnectorError {
  readonly expiresAt: string;
  constructor(window: string, expiresAt: string) {
    super(
      'transient',
      `another forwarder is delivering window ${window} (its lease ends at ${expiresAt}); this message is retried after the ` +
        "SQS visibility timeout and then resumes from that forwarder's receipts, so nothing is sent twice",
    );
    this.name = 'LeaseHeldError';
    this.expiresAt = expiresAt;
  }
}

export interface LeaseOptions {
  readonly s3: S3Client;
  readonly bucket: string;
  readonly key: string;
  readonly window: string;
  readonly now: () => number;
  /** Absolute epoch ms at which the holder stops (Lambda deadline); renewed periodically when absent. */
  readonly deadlineMs?: number;
  readonly log: Log;
}

export class WindowLease {
  readonly #o: LeaseOptions;
  readonly #owner = randomUUID();
  #etag: string | undefined;
  #timer: NodeJS.Timeout | undefined;
  #lost = false;

  private constructor(o: LeaseOptions) {
    this.#o = o;
  }

  /** Takes the lease or throws {@link LeaseHeldError}. */
  static async acquire(o: LeaseOptions): Promise<WindowLease> {
    const lease = new WindowLease(o);
    await lease.#acquire();
    if (o.deadlineMs === undefined) lease.#startRenewing();
    return lease;
  }

  /** True once a renewal found the lease taken by someone else: stop sending. */
  get lost(): boolean {
    return this.#lost;
  }

  /** Hands the window over (conditional on still holding it). Never throws: an unreleased lease simply expires. */
  async release(): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    if (this.#lost || this.#etag === undefined) return;
    try {
      await this.#put({ ...this.#body(this.#o.now()), released: true }, { IfMatch: this.#etag });
    } catch (error) {
      this.#o.log.warn('could not release the window lease; it expires by itself', {
        key: this.#o.key,
        reason: (error as Error).message,
      });
    }
  }

  #body(nowMs: number): LeaseBody {
    const until =
      this.#o.deadlineMs !== undefined ? this.#o.deadlineMs + LEASE_GRACE_MS : nowMs + LEASE_TTL_WITHOUT_DEADLINE_MS;
    return {
      owner: this.#owner,
      window: this.#o.window,
      acquiredAt: new Date(nowMs).toISOString(),
      expiresAt: new Date(until).toISOString(),
    };
  }

  async #acquire(): Promise<void> {
    const body = this.#body(this.#o.now());
    try {
      this.#etag = await this.#put(body, { IfNoneMatch: '*' });
      return;
    } catch (error) {
      if (!isPreconditionFailed(error)) throw error;
    }
    const current = await this.#read();
    if (current === undefined) {
      // Released and deleted in between: one more try.
      this.#etag = await this.#put(body, { IfNoneMatch: '*' }).catch((error: unknown) => {
        throw isPreconditionFailed(error) ? new LeaseHeldError(this.#o.window, 'unknown') : error;
      });
      return;
    }
    if (current.body.owner === this.#owner) {
      // Our own first attempt succeeded but its answer was lost (a retried PUT then fails its precondition).
      this.#etag = current.etag;
      return;
    }
    const expired = current.body.released === true || !(Date.parse(current.body.expiresAt) > this.#o.now());
    if (!expired) throw new LeaseHeldError(this.#o.window, current.body.expiresAt);
    try {
      this.#etag = await this.#put(body, { IfMatch: current.etag });
      if (current.body.released !== true)
        this.#o.log.warn('took over an expired window lease (its holder stopped without releasing it)', {
          window: this.#o.window,
          expiredAt: current.body.expiresAt,
        });
    } catch (error) {
      if (isPreconditionFailed(error) || isNotFound(error)) throw new LeaseHeldError(this.#o.window, 'unknown');
      throw error;
    }
  }

  #startRenewing(): void {
    this.#timer = setInterval(() => {
      if (this.#etag === undefined) return;
      this.#put(this.#body(this.#o.now()), { IfMatch: this.#etag })
        .then((etag) => void (this.#etag = etag))
        .catch((error: unknown) => {
          if (isPreconditionFailed(error) || isNotFound(error)) {
            this.#lost = true;
            if (this.#timer !== undefined) clearInterval(this.#timer);
            this.#o.log.error('lost the window lease to another forwarder; stopping', { window: this.#o.window });
          }
        });
    }, LEASE_TTL_WITHOUT_DEADLINE_MS / 3);
    this.#timer.unref();
  }

  async #put(body: LeaseBody, condition: { IfNoneMatch: string } | { IfMatch: string }): Promise<string | undefined> {
    const out = await this.#o.s3.send(
      new PutObjectCommand({
        Bucket: this.#o.bucket,
        Key: this.#o.key,
        Body: JSON.stringify(body),
        ContentType: 'application/json',
        ...condition,
      }),
    );
    return out.ETag;
  }

  async #read(): Promise<{ body: LeaseBody; etag: string } | undefined> {
    try {
      const out = await this.#o.s3.send(new GetObjectCommand({ Bucket: this.#o.bucket, Key: this.#o.key }));
      return { body: JSON.parse(await out.Body!.transformToString('utf8')) as LeaseBody, etag: out.ETag ?? '' };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }
}

function status(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } })?.$metadata?.httpStatusCode;
}

/** 412, or S3's 409 ConditionalRequestConflict (another conditional write to the key was in progress). */
export function isPreconditionFailed(error: unknown): boolean {
  const name = (error as { name?: string })?.name;
  return (
    status(error) === 412 ||
    status(error) === 409 ||
    name === 'PreconditionFailed' ||
    name === 'ConditionalRequestConflict'
  );
}
