/**
 * The per-project query budget, persisted in S3 because Lambdas are short-lived.
 *
 * Mixpanel's raw export allows 60 queries per hour and 3 per second per project (mixpanel/docs
 * openapi/src/export.openapi.yaml; reference/rate-limits.mdx). Every attempt, retries included, is recorded before it
 * is sent, so a crash still counts it. When the hour is used up the run stops cleanly and reports what remains.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { getJson, putJson } from '#staging/s3';
import { ConnectorError } from '#common/errors';

export const QUERIES_PER_SECOND = 3;
const HOUR = 3_600_000;

export class QueryBudgetExhaustedError extends ConnectorError {
  readonly retryAtMs: number;
  constructor(perHour: number, retryAtMs: number) {
    const until = new Date(retryAtMs).toISOString();
    super(
      'transient',
      `the Mixpanel export budget of ${perHour} queries per hour is used up until ${until}; the next run continues`,
    );
    this.name = 'QueryBudgetExhaustedError';
    this.retryAtMs = retryAtMs;
  }
}

export interface QueryBudgetOptions {
  readonly s3: S3Client;
  readonly bucket: string;
  readonly key: string;
  readonly perHour: number;
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
}

export class QueryBudget {
  readonly #o: QueryBudgetOptions;
  #sent: number[] | undefined;

  constructor(options: QueryBudgetOptions) {
    this.#o = options;
  }

  async #load(): Promise<number[]> {
    if (this.#sent === undefined) {
      const stored = await getJson<{ queries?: string[] }>(this.#o.s3, this.#o.bucket, this.#o.key);
      this.#sent = (stored?.queries ?? []).map(Date.parse).filter((n) => !Number.isNaN(n));
    }
    return this.#sent;
  }

  /** Queries left in the current hour. */
  async remaining(): Promise<number> {
    const now = this.#o.now();
    const sent = (await this.#load()).filter((t) => t > now - HOUR);
    return Math.max(0, this.#o.perHour - sent.length);
  }

  /** Waits for the per-second spacing, refuses past the hourly budget, and records the query. */
  async acquire(): Promise<void> {
    let now = this.#o.now();
    const sent = (await this.#load()).filter((t) => t > now - HOUR);
    if (sent.length >= this.#o.perHour)
      throw new QueryBudgetExhaustedError(this.#o.perHour, (sent[sent.length - this.#o.perHour] ?? now) + HOUR);
    const last = sent[sent.length - 1];
    const spacing = Math.ceil(1000 / QUERIES_PER_SECOND);
    if (last !== undefined && now - last < spacing) {
      await this.#o.sleep(spacing - (now - last));
      now = this.#o.now();
    }
    sent.push(now);
    this.#sent = sent;
    await putJson(this.#o.s3, this.#o.bucket, this.#o.key, { queries: sent.map((t) => new Date(t).toISOString()) });
  }
}
