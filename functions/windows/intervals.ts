/** Half-open interval arithmetic for committed coverage (epoch ms). */

export type Interval = readonly [number, number];

/** Merges overlapping and touching intervals. */
export function mergeIntervals(intervals: readonly Interval[]): Interval[] {
  const sorted = [...intervals].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [a, b] of sorted) {
    const last = out[out.length - 1];
    if (last !== undefined && a <= last[1]) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

/** The parts of `[from, to)` not covered by `covered` (which must be merged). */
export function uncovered(from: number, to: number, covered: readonly Interval[]): Interval[] {
  const out: Interval[] = [];
  let cursor = from;
  for (const [a, b] of covered) {
    if (b <= cursor) continue;
    if (a >= to) break;
    if (a > cursor) out.push([cursor, Math.min(a, to)]);
    cursor = Math.max(cursor, b);
    if (cursor >= to) break;
  }
  if (cursor < to) out.push([cursor, to]);
  return out;
}

export function isCovered(from: number, to: number, covered: readonly Interval[]): boolean {
  return uncovered(from, to, covered).length === 0;
}
