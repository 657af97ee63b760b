/**
 * `sync --dry-run`: the export handler runs with `dryRun: true` (it queries Mixpanel and classifies every line but
 * stages nothing), and the lines it reads are also mapped here, so the operator learns what the forwarder would send
 * and what the mapping would reject — with one Mixpanel query per window, not two.
 *
 * The Mixpanel client in the export dependencies is wrapped (a Proxy, so it stays the same client) and every batch of
 * lines is tallied by outcome as it streams past. Lines are only tallied, never kept: per query the tally holds counts
 * per reason and per minute of `mp_processing_time_ms` (windows are whole minutes), which is enough to count exactly
 * the lines of the window when the handler reports it (lines outside the window are quarantined by the export).
 * Duplicates use the forwarder's own `IdSet` (10 bytes an id).
 */
import type { WindowSummary } from '#export/run';
import { classifyLine } from '#export/stage-window';
import { IdSet } from '#forward/ledger';
import type { Mapper } from '#mapping/mapper';
import type { MixpanelExportClient, ExportRequest } from '#mixpanel/client';
import { makeWindow } from '#windows/plan';

const MINUTE = 60_000;
/** A window that accepts every processing time: `classifyLine` then checks only the line's shape. */
const ANY_TIME = makeWindow(0, 1, 'event-time');
const SAMPLES_PER_REASON = 3;
const SAMPLE_CHARS = 240;

export interface MappingCheck {
  /** Lines the export would stage (= mapped + rejected + duplicates). */
  readonly events: number;
  /** Records the forwarder would send. */
  readonly mapped: number;
  /** Mapper rejections, by reason. */
  readonly rejected: number;
  readonly byReason: Record<string, number>;
  /** Repeats of an `_id` already seen in the window (the forwarder counts them as rejected `duplicate`). */
  readonly duplicates: number;
  readonly samples: Array<{ reason: string; detail: string; line: string }>;
}

type Counts = Map<string, Map<number, number>>;

interface QueryTally {
  readonly counts: Counts;
  readonly samples: Array<{ reason: string; detail: string; line: string; minute: number }>;
  readonly ledger: IdSet;
}

const OK = '\u0000ok';
const DUPLICATE = '\u0000duplicate';

export class MappingTap {
  readonly #mapper: Mapper;
  readonly #tallies = new Map<ExportRequest, QueryTally>();

  constructor(mapper: Mapper) {
    this.#mapper = mapper;
  }

  /** The same client, whose `lines()` also tallies every line it yields. */
  wrap(client: MixpanelExportClient): MixpanelExportClient {
    const tap = this;
    return new Proxy(client, {
      get(target, prop) {
        if (prop === 'lines') return (q: ExportRequest) => tap.#lines(target, q);
        const value: unknown = Reflect.get(target, prop, target);
        return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
  }

  async *#lines(client: MixpanelExportClient, q: ExportRequest): AsyncGenerator<string[]> {
    // A retried query starts its tally again, like the handler starts the window again.
    const tally: QueryTally = { counts: new Map(), samples: [], ledger: new IdSet() };
    this.#tallies.set(q, tally);
    for await (const batch of client.lines(q)) {
      for (const l of batch) this.#tally(tally, l);
      yield batch;
    }
  }

  #tally(t: QueryTally, l: string): void {
    // Lines that are not events are the export's business (quarantine), not the mapper's.
    if (classifyLine(l, ANY_TIME) !== undefined) return;
    const event = JSON.parse(l) as { properties: { mp_processing_time_ms?: unknown } };
    const p = event.properties.mp_processing_time_ms;
    const minute = typeof p === 'number' ? Math.floor(p / MINUTE) * MINUTE : Number.NaN;
    const out = this.#mapper(event);
    let key: string;
    if (!out.ok) {
      key = out.reason;
      if (t.samples.filter((s) => s.reason === out.reason).length < SAMPLES_PER_REASON) {
        t.samples.push({
          reason: out.reason,
          detail: out.detail,
          line: l.length > SAMPLE_CHARS ? `${l.slice(0, SAMPLE_CHARS)}…` : l,
          minute,
        });
      }
    } else {
      key = t.ledger.add(out.id) ? OK : DUPLICATE;
    }
    let byMinute = t.counts.get(key);
    if (byMinute === undefined) t.counts.set(key, (byMinute = new Map()));
    byMinute.set(minute, (byMinute.get(minute) ?? 0) + 1);
  }

  /** What the mapper made of the lines of the window the handler just reported. */
  check(w: WindowSummary): MappingCheck {
    const tally = w.query !== undefined ? this.#tallies.get(w.query) : undefined;
    const from = Date.parse(w.from);
    const to = Date.parse(w.to);
    const inWindow = (minute: number): boolean => w.mode !== 'processing-time' || (minute >= from && minute < to);
    const byReason: Record<string, number> = {};
    let mapped = 0;
    let duplicates = 0;
    for (const [key, byMinute] of tally?.counts ?? []) {
      let n = 0;
      for (const [minute, c] of byMinute) if (inWindow(minute)) n += c;
      if (n === 0) continue;
      if (key === OK) mapped += n;
      else if (key === DUPLICATE) duplicates += n;
      else byReason[key] = n;
    }
    if (w.query !== undefined) this.#tallies.delete(w.query);
    const rejected = Object.values(byReason).reduce((a, b) => a + b, 0);
    const samples = (tally?.samples ?? []).filter((s) => inWindow(s.minute)).map(({ minute: _, ...s }) => s);
    return { events: mapped + rejected + duplicates, mapped, rejected, byReason, duplicates, samples };
  }
}
