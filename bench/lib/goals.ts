/**
 * The benchmark's goals (issue 16 for the map roofline, the equal-work peer, the forwarder's CPU, memory and scale; the
 * earlier ones for the rest): each figure of the result JSON against its goal.
 */

/** One goal of the JSON: the figure measured, the goal it is held to, and whether it is met (null: not run). */
export interface Goal {
  readonly figure: number | null;
  readonly goal: string;
  readonly met: boolean | null;
}

const atMost = (figure: number | undefined, limit: number): Goal =>
  figure === undefined
    ? { figure: null, goal: `<= ${limit}`, met: null }
    : { figure, goal: `<= ${limit}`, met: figure <= limit };
const atLeast = (figure: number | undefined, limit: number): Goal =>
  figure === undefined
    ? { figure: null, goal: `>= ${limit}`, met: null }
    : { figure, goal: `>= ${limit}`, met: figure >= limit };

/** One function's peak RSS for the small and the large window, in MB, and their ratio (large / small). */
export interface FunctionMemory {
  readonly peakRssSmallMb: number;
  readonly peakRssLargeMb: number;
  readonly ratio: number;
}

/**
 * The figures the memory goals hold: export and forward are separate functions (separate processes), so
 * `memory.ratio` is the larger of their two ratios and `memory.peakRssLargeMb` the larger of their large-window peaks.
 */
export function memoryFigures(
  exp: FunctionMemory,
  fwd: FunctionMemory,
): Pick<FunctionMemory, 'ratio' | 'peakRssLargeMb'> {
  return { ratio: Math.max(exp.ratio, fwd.ratio), peakRssLargeMb: Math.max(exp.peakRssLargeMb, fwd.peakRssLargeMb) };
}

/** Every goal, keyed by the figure it holds (`section.key` of the result JSON); sections not run give nulls. */
export function goals(r: Record<string, unknown>): Record<string, Goal> {
  const map = r.map as { ratio: number } | undefined;
  const exp = r.export as { ratio: number; eventsPerSec: number; peerEqualWorkEventsPerSec: number | null } | undefined;
  const fwd = r.forward as { eventsPerSec: number; maxRequestBytes: number; cpuMsPer1k: number } | undefined;
  const mem = r.memory as { peakRssLargeMb: number; ratio: number } | undefined;
  const scale = r.scale as { peakRssMaxMb: number; platform: { doubled: number; idsOnce: boolean } } | undefined;
  const bundle = r.bundle as { exportBytes: number; forwardBytes: number } | undefined;
  const peerEqual = exp?.peerEqualWorkEventsPerSec ?? undefined;
  return {
    'map.ratio': atLeast(map?.ratio, 0.75),
    'export.ratio': atLeast(exp?.ratio, 0.5),
    // The product must be faster than the peer doing the same work: the peer's rate must stay below the product's.
    'export.peerEqualWorkEventsPerSec':
      exp === undefined || peerEqual === undefined
        ? { figure: null, goal: '< export.eventsPerSec', met: null }
        : { figure: peerEqual, goal: `< export.eventsPerSec (${exp.eventsPerSec})`, met: peerEqual < exp.eventsPerSec },
    'forward.cpuMsPer1k': atMost(fwd?.cpuMsPer1k, 50),
    'forward.eventsPerSec': atLeast(fwd?.eventsPerSec, 10_000),
    'forward.maxRequestBytes': atMost(fwd?.maxRequestBytes, 1_048_576),
    'memory.ratio': atMost(mem?.ratio, 1.2),
    'memory.peakRssLargeMb': atMost(mem?.peakRssLargeMb, 256),
    // Every invocation of the 10 M-event window (export, fan-out, each partition) within the function's budget.
    'scale.peakRssMaxMb': atMost(scale?.peakRssMaxMb, 256),
    // Platform holds every distinct event of the window once: no `_id` twice, none missing.
    'scale.platform.doubled':
      scale === undefined
        ? { figure: null, goal: '0 and every distinct event once', met: null }
        : {
            figure: scale.platform.doubled,
            goal: '0 and every distinct event once',
            met: scale.platform.doubled === 0 && scale.platform.idsOnce,
          },
    'bundle.largestBytes': atMost(
      bundle === undefined ? undefined : Math.max(bundle.exportBytes, bundle.forwardBytes),
      1_000_000,
    ),
  };
}
