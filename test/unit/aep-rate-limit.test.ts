/** The token bucket behind the streaming sink's Profile rate, on an injected clock (no real time). */
import { describe, expect, it } from 'vitest';
import { TokenBucket } from '#aep/rate-limit';

function bucket(ratePerSecond: number): { b: TokenBucket; waits: number[]; tick: (ms: number) => void } {
  let clock = 1_000;
  const waits: number[] = [];
  const b = new TokenBucket({
    ratePerSecond,
    now: () => clock,
    sleep: async (ms) => {
      waits.push(ms);
      clock += ms;
    },
  });
  return { b, waits, tick: (ms) => void (clock += ms) };
}

describe('TokenBucket', () => {
  it('should let one second of tokens through at once, then wait for the rest', async () => {
    // Prepare
    const { b, waits } = bucket(1_500);

    // Act
    await b.take(1_500);
    await b.take(750);

    // Assess
    expect(waits).toEqual([500]);
  });

  it('should refill with elapsed time and never save up more than one second', async () => {
    // Prepare
    const { b, waits, tick } = bucket(100);
    await b.take(100);

    // Act: 10 s idle refill only one second's worth
    tick(10_000);
    await b.take(100);
    await b.take(50);

    // Assess
    expect(waits).toEqual([500]);
  });

  it('should let a request larger than the bucket through after repaying its debt, and queue the next', async () => {
    // Prepare
    const { b, waits } = bucket(10);

    // Act
    await b.take(30);
    await b.take(10);

    // Assess: 20 over the bucket = 2 s, then the next 10 wait behind that debt
    expect(waits).toEqual([2_000, 1_000]);
  });

  it('should take nothing when the wait would reach the deadline', async () => {
    // Prepare
    const { b, waits } = bucket(10);
    await b.take(10);

    // Act
    const granted = await b.take(5, 1_000 + 400);

    // Assess: nothing taken, so 5 tokens are ready 500 ms later
    expect(granted).toBe(false);
    expect(waits).toEqual([]);
    expect(b.waitFor(5)).toBe(500);
  });

  it('should refuse a rate that is not positive', () => {
    expect(() => bucket(0)).toThrow(/ratePerSecond must be positive/);
  });
});
