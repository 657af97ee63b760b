/**
 * A token bucket that keeps a sender under a records-per-second rate (Real-Time Customer Profile's streaming
 * throughput, see `DEFAULTS.profileRecordsPerSecond`). Shared by every request of one sink, whatever the concurrency.
 */

export interface TokenBucketOptions {
  /** Tokens added per second; also the most that can be saved up (one second's worth). */
  readonly ratePerSecond: number;
  readonly now: () => number;
  readonly sleep: (ms: number) => Promise<void>;
}

/**
 * Tokens refill continuously at `ratePerSecond` up to one second's worth. A request may take more tokens than the
 * bucket holds: it goes into debt and waits until the debt is repaid, so the long-run rate holds for any request
 * size, and concurrent callers queue behind each other's debt.
 */
export class TokenBucket {
  readonly #rate: number;
  readonly #now: () => number;
  readonly #sleep: (ms: number) => Promise<void>;
  #tokens: number;
  #at: number;

  constructor(o: TokenBucketOptions) {
    if (!(o.ratePerSecond > 0)) throw new RangeError(`ratePerSecond must be positive, got ${o.ratePerSecond}`);
    this.#rate = o.ratePerSecond;
    this.#now = o.now;
    this.#sleep = o.sleep;
    this.#tokens = o.ratePerSecond;
    this.#at = o.now();
  }

  /** Milliseconds `count` tokens would have to wait now (0 when they are available), without taking them. */
  waitFor(count: number): number {
    this.#refill();
    const missing = count - this.#tokens;
    return missing <= 0 ? 0 : Math.ceil((missing * 1000) / this.#rate);
  }

  /**
   * Takes `count` tokens, waiting as long as the rate requires.
   * @returns false, taking nothing and waiting not at all, when the wait would reach `deadlineMs`
   */
  async take(count: number, deadlineMs?: number): Promise<boolean> {
    const waitMs = this.waitFor(count);
    if (deadlineMs !== undefined && waitMs > 0 && this.#now() + waitMs >= deadlineMs) return false;
    this.#tokens -= count;
    if (waitMs > 0) await this.#sleep(waitMs);
    return true;
  }

  #refill(): void {
    const now = this.#now();
    const elapsed = Math.max(0, now - this.#at);
    this.#at = now;
    this.#tokens = Math.min(this.#rate, this.#tokens + (elapsed * this.#rate) / 1000);
  }
}
