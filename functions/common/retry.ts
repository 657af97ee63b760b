/**
 * Bounded retries with full jitter that honour `Retry-After`.
 *
 * One mechanism for every remote call of the product (Mixpanel export, AEP IMS/DCS/batch, S3 through the SDK's own
 * retryer). Callers classify failures; this module only decides when to try again and says what it retried.
 */
import { ConnectorError } from '#common/errors';

export interface RetryPolicy {
  /** Total attempts including the first one. */
  readonly maxAttempts: number;
  /** Base of the exponential backoff. */
  readonly baseDelayMs: number;
  /** Cap of one backoff delay (a larger `Retry-After` is still honoured up to `maxRetryAfterMs`). */
  readonly maxDelayMs: number;
  /** The longest `Retry-After` we are willing to sleep through; beyond it the failure is final. */
  readonly maxRetryAfterMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = {
  maxAttempts: 5,
  baseDelayMs: 500,
  maxDelayMs: 20_000,
  maxRetryAfterMs: 120_000,
};

/** How a failure should be treated. */
export type Verdict = { readonly retry: false } | { readonly retry: true; readonly retryAfterMs?: number };

export interface RetryEvent {
  readonly attempt: number;
  readonly delayMs: number;
  readonly error: unknown;
}

export interface RetryOptions {
  readonly policy?: RetryPolicy;
  /** Decides whether an error is worth another attempt (and whether the server asked for a delay). */
  readonly classify: (error: unknown) => Verdict;
  /** Told about every retry, so the caller can log and count it. */
  readonly onRetry?: (event: RetryEvent) => void;
  /** Absolute epoch ms after which no new attempt starts (a Lambda's deadline). */
  readonly deadlineMs?: number;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly random?: () => number;
}

/** Raised when the retry budget or the deadline is exhausted; `cause` is the last failure. */
export class RetriesExhaustedError extends ConnectorError {
  readonly attempts: number;
  constructor(what: string, attempts: number, cause: unknown, why: string) {
    // Only failures classified as retryable get here: another run may well succeed.
    super('transient', `${what} failed after ${attempts} attempt(s) (${why}): ${errorMessage(cause)}`, { cause });
    this.name = 'RetriesExhaustedError';
    this.attempts = attempts;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Full-jitter exponential backoff (AWS Architecture Blog, "Exponential Backoff And Jitter"). */
export function backoffDelayMs(attempt: number, policy: RetryPolicy, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(random() * ceiling);
}

/**
 * Parses a `Retry-After` header: delta-seconds or an HTTP-date (RFC 9110 §10.2.3).
 * @returns milliseconds to wait, or undefined when absent or unparsable.
 */
export function parseRetryAfter(value: string | null | undefined, nowMs: number = Date.now()): number | undefined {
  if (value === null || value === undefined || value.trim() === '') return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - nowMs);
}

/**
 * Runs `operation` until it succeeds, the classifier says the failure is final, the attempts run out, or the next
 * wait would cross the deadline. The wait honours the server's `Retry-After` and never goes below it.
 */
export async function withRetry<T>(
  what: string,
  operation: (attempt: number) => Promise<T>,
  options: RetryOptions,
): Promise<T> {
  const policy = options.policy ?? DEFAULT_RETRY_POLICY;
  const now = options.now ?? Date.now;
  const wait = options.sleep ?? sleep;
  for (let attempt = 1; ; attempt++) {
    try {
      return await operation(attempt);
    } catch (error) {
      const verdict = options.classify(error);
      if (!verdict.retry) throw error;
      if (attempt >= policy.maxAttempts) {
        throw new RetriesExhaustedError(what, attempt, error, `retry budget of ${policy.maxAttempts} attempts used up`);
      }
      if (verdict.retryAfterMs !== undefined && verdict.retryAfterMs > policy.maxRetryAfterMs) {
        throw new RetriesExhaustedError(
          what,
          attempt,
          error,
          `server asked to wait ${Math.ceil(verdict.retryAfterMs / 1000)} s, longer than the ${policy.maxRetryAfterMs / 1000} s we wait within one run`,
        );
      }
      const jitter = backoffDelayMs(attempt, policy, options.random);
      const delayMs = Math.max(jitter, verdict.retryAfterMs ?? 0);
      if (options.deadlineMs !== undefined && now() + delayMs >= options.deadlineMs) {
        throw new RetriesExhaustedError(what, attempt, error, 'no time left before the deadline');
      }
      options.onRetry?.({ attempt, delayMs, error });
      await wait(delayMs);
    }
  }
}

export function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
