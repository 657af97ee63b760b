/**
 * Progress and summary of a pipeline run, shared by `demo` and `sync`: a line per window as the export handler
 * commits it and as the forward handler delivers it, then one table. The numbers come from the handlers' own
 * results (export `WindowSummary`, forward `WindowForwardResult`), never recomputed here.
 */
import type { WindowSummary } from '#export/run';
import type { PlatformVerdict } from '#forward/receipt';
import type { WindowForwardResult } from '#forward/window';
import { type TextSink, bytes, count, duration, line, rate, table } from './io.ts';

export interface WindowRow {
  readonly window: string;
  readonly from: string;
  readonly to: string;
  readonly mode: string;
  readonly status: WindowSummary['status'];
  readonly manifestKey?: string;
  readonly exported: number;
  readonly quarantined: number;
  readonly parts: number;
  readonly bytes: number;
  readonly exportMs: number;
  forward?: {
    readonly accepted: number;
    readonly rejected: number;
    readonly retried: number;
    readonly withoutIdentity: number;
    readonly byReason: Record<string, number>;
    readonly complete: boolean;
    readonly ms: number;
  };
  /** Platform's verdict on the window's forwarded run (the verifier's). */
  platform?: Pick<PlatformVerdict, 'status' | 'ingested' | 'failed' | 'byReason'>;
}

export interface Totals {
  readonly windows: number;
  readonly exported: number;
  readonly quarantined: number;
  readonly accepted: number;
  readonly rejected: number;
  readonly retried: number;
  /** Accepted records without any identity. */
  readonly withoutIdentity: number;
  readonly ms: number;
  readonly byReason: Record<string, number>;
  /** Once verified: records Platform stored, and those it refused after accepting them. */
  readonly ingested: number;
  readonly failedAtPlatform: number;
}

const reasons = (byReason: Record<string, number>): string =>
  Object.entries(byReason)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${count(v)}`)
    .join(', ');

/** "20240501T060000Z_20240501T070000Z" → "2024-05-01 06:00–07:00" (for people; the id is printed too where it is needed). */
export function windowLabel(from: string, to: string): string {
  const a = new Date(from).toISOString();
  const b = new Date(to).toISOString();
  const sameDay = a.slice(0, 10) === b.slice(0, 10) || b.slice(11, 16) === '00:00';
  return `${a.slice(0, 10)} ${a.slice(11, 16)}–${sameDay ? b.slice(11, 16) : `${b.slice(0, 10)} ${b.slice(11, 16)}`}`;
}

const verb = (v: string): string => v.padEnd(9);

/**
 * Collects the rows of a run and prints progress to `sink` as handlers report. Durations are wall-clock time measured
 * here (a monotonic clock), not the run's clock: the CLI may run the handlers at another "now" (tests do).
 */
export class RunReport {
  readonly rows: WindowRow[] = [];
  readonly #sink: TextSink | undefined;
  readonly #clock: () => number;
  #exportMark = 0;
  #forwardStart = 0;

  constructor(sink: TextSink | undefined, clock: () => number = () => performance.now()) {
    this.#sink = sink;
    this.#clock = clock;
  }

  /** Marks the start of an export call; each window's export time runs from here or from the previous window. */
  startExport(): void {
    this.#exportMark = this.#clock();
  }

  /** The export handler's `onWindow`. */
  exported(w: WindowSummary): void {
    const t = this.#clock();
    const ms = t - this.#exportMark;
    this.#exportMark = t;
    const row: WindowRow = {
      window: w.id,
      from: w.from,
      to: w.to,
      mode: w.mode,
      status: w.status,
      ...(w.manifestKey !== undefined ? { manifestKey: w.manifestKey } : {}),
      exported: w.events,
      quarantined: w.quarantined,
      parts: w.parts,
      bytes: w.bytes,
      exportMs: ms,
    };
    this.rows.push(row);
    if (this.#sink === undefined) return;
    const done = w.status === 'dry-run' ? 'checked' : 'exported';
    const staged =
      w.status === 'dry-run'
        ? 'nothing staged (dry run)'
        : `${w.parts} part${w.parts === 1 ? '' : 's'}, ${bytes(w.bytes)} gzipped`;
    const q = w.quarantined > 0 ? `, ${count(w.quarantined)} quarantined` : '';
    line(
      this.#sink,
      `    ${verb(done)} ${windowLabel(w.from, w.to)}  ${count(w.events)} events${q}, ${staged}  ${duration(row.exportMs)}, ${rate(w.events, row.exportMs)} events/s`,
    );
  }

  /** A window the export skipped (already committed): shown, not counted. */
  skipped(w: WindowSummary): void {
    if (this.#sink !== undefined)
      line(
        this.#sink,
        `    ${verb('skipped')} ${windowLabel(w.from, w.to)}  already committed (use --force to export it again)`,
      );
  }

  /** Marks the start of a forward call; `forwarded` (the handler's `onWindow`, called inside it) times it. */
  startForward(): void {
    this.#forwardStart = this.#clock();
  }

  /** The forward handler's `onWindow`. */
  forwarded(r: WindowForwardResult): void {
    const ms = this.#clock() - this.#forwardStart;
    if (r.fannedOut !== undefined) {
      // Nothing forwarded yet: each partition's invocation reports its own share below.
      const w = this.rows.find((x) => x.manifestKey === r.manifestKey);
      const label = w !== undefined ? windowLabel(w.from, w.to) : r.window;
      if (this.#sink !== undefined)
        line(this.#sink, `    ${verb('fanned')} ${label}  ${r.fannedOut} partition messages sent to the forward queue`);
      return;
    }
    // A partition's invocation adds its share to the window's row (its first partition opens it).
    const partitionOf = r.partitions !== undefined;
    const row =
      this.rows.find((x) => x.manifestKey === r.manifestKey && (partitionOf || x.forward === undefined)) ??
      this.rows.find((x) => x.window === r.window && (partitionOf || x.forward === undefined));
    if (row !== undefined) {
      const before = partitionOf ? row.forward : undefined;
      row.forward = {
        accepted: (before?.accepted ?? 0) + r.accepted,
        rejected: (before?.rejected ?? 0) + r.rejected,
        retried: (before?.retried ?? 0) + r.retried,
        withoutIdentity: (before?.withoutIdentity ?? 0) + r.withoutIdentity,
        byReason: addReasons(before?.byReason ?? {}, r.byReason),
        complete: (before?.complete ?? true) && r.complete,
        ms: (before?.ms ?? 0) + ms,
      };
    }
    if (this.#sink === undefined) return;
    const label =
      (row !== undefined ? windowLabel(row.from, row.to) : r.window) +
      (partitionOf ? ` partition ${r.partitions!.join(',')}` : '');
    const why = r.rejected > 0 ? ` (${reasons(r.byReason)})` : '';
    const state = r.complete ? '' : '  INCOMPLETE: stopped before the end';
    line(
      this.#sink,
      `    ${verb('forwarded')} ${label}  ${count(r.accepted)} accepted, ${count(r.rejected)} rejected${why}  ${duration(ms)}, ${rate(r.accepted + r.rejected, ms)} events/s${state}`,
    );
  }

  /** Platform's verdict on a window (after the verifier ran). */
  verified(window: string, v: PlatformVerdict): void {
    const row = this.rows.find((x) => x.window === window && x.forward !== undefined);
    if (row !== undefined) row.platform = v;
  }

  totals(): Totals {
    const byReason: Record<string, number> = {};
    let exported = 0;
    let quarantined = 0;
    let accepted = 0;
    let rejected = 0;
    let retried = 0;
    let withoutIdentity = 0;
    let ms = 0;
    let ingested = 0;
    let failedAtPlatform = 0;
    for (const r of this.rows) {
      ingested += r.platform?.ingested ?? 0;
      failedAtPlatform += r.platform?.failed ?? 0;
      exported += r.exported;
      quarantined += r.quarantined;
      accepted += r.forward?.accepted ?? 0;
      rejected += r.forward?.rejected ?? 0;
      retried += r.forward?.retried ?? 0;
      withoutIdentity += r.forward?.withoutIdentity ?? 0;
      ms += r.exportMs + (r.forward?.ms ?? 0);
      for (const [k, v] of Object.entries(r.forward?.byReason ?? {})) byReason[k] = (byReason[k] ?? 0) + v;
    }
    const n = this.rows.length;
    const counts = { exported, quarantined, accepted, rejected, retried, withoutIdentity, ms, byReason };
    return { windows: n, ...counts, ingested, failedAtPlatform };
  }

  /** The summary table: one row per window and a total; with Platform's verdict once the verifier has run. */
  table(): string {
    const verdicts = this.rows.some((r) => r.platform !== undefined);
    const header = ['window', 'exported', 'quarantined', 'accepted', 'rejected', 'retried'];
    if (verdicts) header.push('ingested', 'failed at AEP');
    header.push('duration', 'events/s');
    const platformCells = (p: WindowRow['platform']): string[] =>
      !verdicts
        ? []
        : p === undefined || p.status === 'pending'
          ? [p?.status ?? '—', '—']
          : [count(p.ingested), count(p.failed)];
    const body = this.rows.map((r) => {
      const ms = r.exportMs + (r.forward?.ms ?? 0);
      return [
        r.window,
        count(r.exported),
        count(r.quarantined),
        r.forward ? count(r.forward.accepted) : '—',
        r.forward ? count(r.forward.rejected) : '—',
        r.forward ? count(r.forward.retried) : '—',
        ...platformCells(r.platform),
        duration(ms),
        rate(r.exported, ms),
      ];
    });
    const t = this.totals();
    const forwarded = this.rows.some((r) => r.forward !== undefined);
    const total = [
      `total (${t.windows} window${t.windows === 1 ? '' : 's'})`,
      count(t.exported),
      count(t.quarantined),
      forwarded ? count(t.accepted) : '—',
      forwarded ? count(t.rejected) : '—',
      forwarded ? count(t.retried) : '—',
      ...(verdicts ? [count(t.ingested), count(t.failedAtPlatform)] : []),
      duration(t.ms),
      rate(t.exported, t.ms),
    ];
    return table([header, ...body, total], { total: true });
  }

  /** "rejected by reason: duplicate 120, missing-time 2" (or nothing). */
  reasonsLine(): string | undefined {
    const t = this.totals();
    return t.rejected > 0
      ? `rejected by reason: ${reasons(t.byReason)} (each kept in rejected/ with its reason)`
      : undefined;
  }
}

/**
 * "12 accepted records carry no identity …" (or nothing): what Real-Time Customer Profile cannot use. With
 * AEP_PROFILE_ENABLED=true (or the mapping's requireIdentity) such records are rejected as `no-identity` instead.
 */
export function identityLine(t: Pick<Totals, 'accepted' | 'withoutIdentity'>): string | undefined {
  if (t.withoutIdentity === 0) return undefined;
  const share = t.accepted > 0 ? ` (${((100 * t.withoutIdentity) / t.accepted).toFixed(1)} %)` : '';
  return (
    `${count(t.withoutIdentity)} accepted record(s)${share} carry no identity: Real-Time Customer Profile cannot ` +
    "use them (set AEP_PROFILE_ENABLED=true or the mapping's requireIdentity to reject them as no-identity)"
  );
}

/** "duplicate 120, missing-time 2". */
export function formatReasons(byReason: Record<string, number>): string {
  return reasons(byReason);
}

/** A progress line in the column layout of the report ("    mapped    2024-05-01 06:00–07:00  …"). */
export function progressLine(action: string, from: string, to: string, text: string): string {
  return `    ${verb(action)} ${windowLabel(from, to)}  ${text}`;
}

/** Rejection counts by reason, summed. */
function addReasons(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v;
  return out;
}
