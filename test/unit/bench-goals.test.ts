/**
 * The benchmark's goals: each one carries its figure, its goal and whether it is met, from the result JSON that
 * `npm run bench` prints (a section that did not run gives nulls, never a verdict).
 */
import { describe, expect, it } from 'vitest';
import { goals, memoryFigures } from '../../bench/lib/goals.ts';

const result = {
  map: { ratio: 0.76 },
  export: { ratio: 0.62, eventsPerSec: 43_000, peerEqualWorkEventsPerSec: 41_000 },
  forward: { eventsPerSec: 13_700, maxRequestBytes: 999_995, cpuMsPer1k: 60.8 },
  memory: { peakRssLargeMb: 220.4, ratio: 1.446 },
  bundle: { exportBytes: 620_621, forwardBytes: 660_072 },
  scale: { peakRssMaxMb: 231.5, platform: { doubled: 0, idsOnce: true } },
};

describe('bench goals', () => {
  it('gives each goal its figure, its goal and its verdict', () => {
    const g = goals(result);
    expect(g['map.ratio']).toEqual({ figure: 0.76, goal: '>= 0.75', met: true });
    expect(g['forward.cpuMsPer1k']).toEqual({ figure: 60.8, goal: '<= 50', met: false });
    expect(g['memory.ratio']).toEqual({ figure: 1.446, goal: '<= 1.2', met: false });
    expect(g['memory.peakRssLargeMb']).toEqual({ figure: 220.4, goal: '<= 256', met: true });
    expect(g['bundle.largestBytes']).toEqual({ figure: 660_072, goal: '<= 1000000', met: true });
  });

  it('holds the product against the peer doing equal work: met only while the peer is slower', () => {
    expect(goals(result)['export.peerEqualWorkEventsPerSec']).toEqual({
      figure: 41_000,
      goal: '< export.eventsPerSec (43000)',
      met: true,
    });
    const faster = { ...result, export: { ...result.export, peerEqualWorkEventsPerSec: 45_000 } };
    expect(goals(faster)['export.peerEqualWorkEventsPerSec']?.met).toBe(false);
  });

  it('holds the scale run to 256 MB per invocation and every distinct event once at Platform', () => {
    const g = goals(result);
    expect(g['scale.peakRssMaxMb']).toEqual({ figure: 231.5, goal: '<= 256', met: true });
    expect(g['scale.platform.doubled']?.met).toBe(true);
    const missing = goals({ scale: { peakRssMaxMb: 300, platform: { doubled: 0, idsOnce: false } } });
    expect(missing['scale.peakRssMaxMb']?.met).toBe(false);
    expect(missing['scale.platform.doubled']?.met).toBe(false);
    expect(
      goals({ scale: { ...result.scale, platform: { doubled: 3, idsOnce: true } } })['scale.platform.doubled']?.met,
    ).toBe(false);
    expect(goals({})['scale.peakRssMaxMb']?.met).toBeNull();
  });

  it('counts a figure exactly at its limit as met', () => {
    const atLimits = { map: { ratio: 0.75 }, forward: { ...result.forward, cpuMsPer1k: 50 } };
    expect(goals(atLimits)['map.ratio']?.met).toBe(true);
    expect(goals(atLimits)['forward.cpuMsPer1k']?.met).toBe(true);
  });

  it('gives no verdict for a section that did not run, nor for a peer that could not be measured', () => {
    const g = goals({ map: { ratio: 0.5 }, export: { ...result.export, peerEqualWorkEventsPerSec: null } });
    expect(g['map.ratio']?.met).toBe(false);
    expect(g['forward.cpuMsPer1k']).toEqual({ figure: null, goal: '<= 50', met: null });
    expect(g['memory.ratio']?.met).toBeNull();
    expect(g['export.peerEqualWorkEventsPerSec']).toEqual({ figure: null, goal: '< export.eventsPerSec', met: null });
  });

  it('holds memory to the worse of the two functions, each measured in its own process', () => {
    const exp = { peakRssSmallMb: 120, peakRssLargeMb: 160, ratio: 1.333 };
    const fwd = { peakRssSmallMb: 170, peakRssLargeMb: 180, ratio: 1.059 };
    const memory = memoryFigures(exp, fwd);
    expect(memory).toEqual({ ratio: 1.333, peakRssLargeMb: 180 });
    expect(goals({ memory })['memory.ratio']).toEqual({ figure: 1.333, goal: '<= 1.2', met: false });
    expect(goals({ memory })['memory.peakRssLargeMb']?.met).toBe(true);
  });
});
