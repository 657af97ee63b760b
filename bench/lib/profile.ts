/**
 * Reads a V8 `.cpuprofile` (what `node --cpu-prof` writes) and lists the frames with the most self time: the
 * "what limits this path" evidence the benchmark report quotes.
 */
import { readFile } from 'node:fs/promises';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ROOT } from './proc.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfileSummary {
  /** Sampled time with the thread busy (idle excluded), in ms. */
  readonly busyMs: number;
  /** Sampled time idle, in ms (waiting for I/O or for other processes). */
  readonly idleMs: number;
  readonly top: TopFrame[];
}

export interface TopFrame {
  /** `function (file:line)`, with repository-relative files and package names for dependencies. */
  readonly frame: string;
  /** Share of the sampled time, in percent (idle excluded). */
  readonly selfPct: number;
}

/** Frame label without machine paths: `node_modules/<pkg>/…` → `<pkg>`, repository files relative to its root. */
function where(url: string, line: number): string {
  if (url === '') return '';
  let file = url.startsWith('file://') ? fileURLToPath(url) : url;
  const nm = file.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = file.slice(nm + 'node_modules/'.length).split('/');
    file = rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
    return file;
  }
  if (file.startsWith('/')) file = relative(ROOT, file);
  return `${file}:${line + 1}`;
}

/** The `limit` frames with the most self time (`(idle)` and `(program)` are left out of the total). */
export async function topFrames(path: string, limit = 8): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(path, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  for (let i = 0; i < samples.length; i++) selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + (deltas[i] ?? 0));
  const byFrame = new Map<string, number>();
  let total = 0;
  let idle = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id);
    if (node === undefined) continue;
    const name = node.callFrame.functionName || '(anonymous)';
    if (name === '(idle)') idle += us;
    if (name === '(idle)' || name === '(program)') continue;
    const at = where(node.callFrame.url, node.callFrame.lineNumber);
    const key = at === '' ? name : `${name} (${at})`;
    byFrame.set(key, (byFrame.get(key) ?? 0) + us);
    total += us;
  }
  const top = [...byFrame.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([frame, us]) => ({ frame, selfPct: Math.round((1000 * us) / Math.max(1, total)) / 10 }));
  return { busyMs: Math.round(total / 1000), idleMs: Math.round(idle / 1000), top };
}
