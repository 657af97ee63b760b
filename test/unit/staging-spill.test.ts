/**
 * The spill directory of partitioned staging: one per run under the temp root, removed whole by the run; directories
 * that a killed process left behind are swept by the next run, never those of a run that may still be live.
 */
import { mkdir, mkdtemp, readdir, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createSpillDir, removeSpillDir } from '#staging/spill';

let root: string | undefined;
afterEach(async () => {
  if (root !== undefined) await rm(root, { recursive: true, force: true });
  root = undefined;
});

describe('spill directory', () => {
  it('should sweep stale spill directories and keep recent ones and foreign files', async () => {
    // Prepare: a spill directory untouched for an hour, one touched a minute ago, and something not ours
    root = await mkdtemp(path.join(tmpdir(), 'spill-unit-'));
    const now = Date.now();
    const stale = path.join(root, 'mixpanel-aep-stage-old');
    const recent = path.join(root, 'mixpanel-aep-stage-new');
    const foreign = path.join(root, 'other-old');
    for (const dir of [stale, recent, foreign]) await mkdir(dir);
    await writeFile(path.join(stale, 'part-0.gz'), 'x');
    await utimes(stale, new Date(now - 3_600_000), new Date(now - 3_600_000));
    await utimes(foreign, new Date(now - 3_600_000), new Date(now - 3_600_000));
    await utimes(recent, new Date(now - 60_000), new Date(now - 60_000));
    // Act
    const dir = await createSpillDir(root, now);
    // Assess
    expect((await readdir(root)).sort()).toEqual(['mixpanel-aep-stage-new', path.basename(dir), 'other-old'].sort());
    expect(path.basename(dir)).toMatch(/^mixpanel-aep-stage-/);
  });

  it('should remove a run directory with its files, and accept none', async () => {
    root = await mkdtemp(path.join(tmpdir(), 'spill-unit-'));
    const dir = await createSpillDir(root);
    await writeFile(path.join(dir, 'part-3.gz'), 'x');
    await removeSpillDir(dir);
    await removeSpillDir(undefined);
    expect(await readdir(root)).toEqual([]);
  });
});
