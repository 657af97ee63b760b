/**
 * Per-project export state in `state/project={pid}/checkpoint.json`.
 *
 * For each mode it keeps the committed intervals (merged) and `to`, the end of the contiguous committed run that the
 * scheduled planner continues from. `to` only ever covers windows whose manifest was written first (invariant 3):
 * `commit()` is called after the manifest PUT succeeded.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { WindowMode } from '#common/config';
import { getJson, putJson } from './s3.ts';
import type { StagingLayout } from './layout.ts';
import { type Interval, mergeIntervals } from '#windows/intervals';
import type { SizeHint } from '#windows/size';

export interface ModeState {
  /** End of the contiguous committed coverage the scheduled planner continues from. */
  readonly to?: number;
  /** Start of the first committed window of the mode. */
  readonly origin?: number;
  readonly committed: readonly Interval[];
  /** Observed event rate of the last committed window (sizes windows: functions/windows/size.ts). */
  readonly eventsPerMinute?: number;
  /** Left by a window that ran out of time: windows are planned shorter until it expires. */
  readonly sizeHint?: SizeHint;
  /** Ranges asked for by a manual run that did not fit in it: later runs continue them. */
  readonly pending: readonly { readonly from: number; readonly to: number; readonly force: boolean }[];
}

export interface Checkpoint {
  readonly 'processing-time': ModeState;
  readonly 'event-time': ModeState;
}

interface StoredMode {
  to?: string;
  origin?: string;
  committed: [string, string][];
  eventsPerMinute?: number;
  sizeHint?: { maxSpanMinutes: number; until: string; window: string };
  pending?: { from: string; to: string; force: boolean }[];
}

const EMPTY: ModeState = { committed: [], pending: [] };

/** Contiguous coverage end starting from `start`, or undefined when `start` itself is not covered. */
function contiguousEnd(start: number | undefined, covered: readonly Interval[]): number | undefined {
  if (start === undefined) return undefined;
  for (const [a, b] of covered) if (a <= start && start < b) return b;
  return undefined;
}

export class StateStore {
  readonly #s3: S3Client;
  readonly #bucket: string;
  readonly #key: string;

  constructor(s3: S3Client, bucket: string, layout: StagingLayout, projectId: string) {
    this.#s3 = s3;
    this.#bucket = bucket;
    this.#key = layout.checkpointKey(projectId);
  }

  get key(): string {
    return this.#key;
  }

  async read(): Promise<Checkpoint> {
    const stored = await getJson<Partial<Record<WindowMode, StoredMode>>>(this.#s3, this.#bucket, this.#key);
    return { 'processing-time': decode(stored?.['processing-time']), 'event-time': decode(stored?.['event-time']) };
  }

  async write(checkpoint: Checkpoint): Promise<void> {
    await putJson(this.#s3, this.#bucket, this.#key, {
      version: 1,
      'processing-time': encode(checkpoint['processing-time']),
      'event-time': encode(checkpoint['event-time']),
      updatedAt: new Date().toISOString(),
    });
  }
}

/** The checkpoint after committing `[from, to)` of `mode` (pure). */
export function commitWindow(c: Checkpoint, mode: WindowMode, from: number, to: number, events: number): Checkpoint {
  const prev = c[mode];
  const committed = mergeIntervals([...prev.committed, [from, to]]);
  const origin = prev.origin === undefined ? from : Math.min(prev.origin, from);
  const end = contiguousEnd(prev.to ?? origin, committed) ?? prev.to;
  const next: ModeState = {
    ...prev,
    committed,
    origin,
    ...(end !== undefined ? { to: end } : {}),
    eventsPerMinute: events / Math.max(1, (to - from) / 60_000),
    pending: prev.pending,
  };
  return { ...c, [mode]: next };
}

/** The checkpoint with a size hint for `mode` (pure). */
export function withSizeHint(c: Checkpoint, mode: WindowMode, sizeHint: SizeHint): Checkpoint {
  return { ...c, [mode]: { ...c[mode], sizeHint } };
}

export function withPending(c: Checkpoint, mode: WindowMode, pending: ModeState['pending']): Checkpoint {
  return { ...c, [mode]: { ...c[mode], pending } };
}

function decode(s: StoredMode | undefined): ModeState {
  if (s === undefined) return EMPTY;
  return {
    ...(s.to !== undefined ? { to: Date.parse(s.to) } : {}),
    ...(s.origin !== undefined ? { origin: Date.parse(s.origin) } : {}),
    committed: s.committed.map(([a, b]) => [Date.parse(a), Date.parse(b)] as const),
    ...(s.eventsPerMinute !== undefined ? { eventsPerMinute: s.eventsPerMinute } : {}),
    ...(s.sizeHint !== undefined ? { sizeHint: { ...s.sizeHint, until: Date.parse(s.sizeHint.until) } } : {}),
    pending: (s.pending ?? []).map((p) => ({ from: Date.parse(p.from), to: Date.parse(p.to), force: p.force })),
  };
}

function encode(m: ModeState): StoredMode {
  const iso = (ms: number): string => new Date(ms).toISOString();
  return {
    ...(m.to !== undefined ? { to: iso(m.to) } : {}),
    ...(m.origin !== undefined ? { origin: iso(m.origin) } : {}),
    committed: m.committed.map(([a, b]) => [iso(a), iso(b)]),
    ...(m.eventsPerMinute !== undefined ? { eventsPerMinute: Math.round(m.eventsPerMinute * 100) / 100 } : {}),
    ...(m.sizeHint !== undefined ? { sizeHint: { ...m.sizeHint, until: iso(m.sizeHint.until) } } : {}),
    pending: m.pending.map((p) => ({ from: iso(p.from), to: iso(p.to), force: p.force })),
  };
}
