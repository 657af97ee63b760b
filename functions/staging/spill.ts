/**
 * Temporary storage of partitioned staging: each run gets a directory under the OS temp dir (Lambda's /tmp), holding
 * one gzip file per open partition part until it is uploaded. The run removes its directory in every path; a
 * directory left by a process that was killed outright is removed by the next run in the same environment.
 */
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Writable } from 'node:stream';

const PREFIX = 'mixpanel-aep-stage-';
/**
 * A directory untouched for longer than a Lambda invocation can last (15 minutes, the largest function timeout)
 * belongs to no live run of this environment.
 */
const STALE_MS = 15 * 60_000;

/** Where partitioned staging spills; tests pass their own root or a writer that fails. */
export interface SpillOptions {
  /** @default os.tmpdir() */
  readonly root?: string;
  /** Opens a part's temporary file (default fs.createWriteStream). */
  readonly open?: (file: string) => Writable;
}

/** Creates a run's spill directory under `root`, after removing stale ones left by killed processes. */
export async function createSpillDir(root: string = tmpdir(), now: number = Date.now()): Promise<string> {
  for (const name of await readdir(root).catch(() => [] as string[])) {
    if (!name.startsWith(PREFIX)) continue;
    const dir = path.join(root, name);
    const info = await stat(dir).catch(() => undefined);
    if (info !== undefined && now - info.mtimeMs > STALE_MS) await rm(dir, { recursive: true, force: true });
  }
  return mkdtemp(path.join(root, PREFIX));
}

/** Removes a run's spill directory and whatever is left in it (best effort: never masks the run's own outcome). */
export async function removeSpillDir(dir: string | undefined): Promise<void> {
  if (dir !== undefined) await rm(dir, { recursive: true, force: true }).catch(() => undefined);
}
