/**
 * Cross-window deduplication. Mixpanel returns exact duplicates and same-tuple retries (one event sent twice, the
 * second copy processed minutes later), and the two copies can fall into neighbouring processing-time windows. The
 * `_id` is the same (it comes from the dedupe tuple), so the forwarder also consults the delivery ledgers of the
 * windows around the one it forwards: an id one of them already delivered becomes a `duplicate` rejection here.
 */
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { StagingLayout, WindowRef } from '#staging/layout';
import { getBytes } from '#staging/s3';
import { parseWindowId } from '#windows/plan';
import { compactIso } from '#windows/window-id';

/** The longest window the planner makes (a day: catch-up spans and event-time days, 25 h on a DST day). */
const LONGEST_WINDOW_MS = 25 * 3_600_000;
import type { IdSet } from './ledger.ts';

/**
 * How far around a window other windows' deliveries are consulted. Mixpanel's SDKs retry a failed flush within
 * minutes and the Raw Export is not deduplicated (mixpanel/docs reference/event-deduplication.mdx); a day covers
 * those retries with a wide margin.
 */
export const CROSS_WINDOW_HORIZON_MS = 24 * 3_600_000;

/**
 * Most neighbour ids held in memory (10 bytes each in the window's set: ~20 MB). A day of a busy project's ids would
 * not fit a function's memory (24 windows of 2 M events: ~480 MB), so the nearest windows are loaded first and the
 * horizon shrinks to what fits; retries land minutes apart, i.e. in the nearest windows.
 */
export const NEIGHBOUR_ID_BUDGET = 2_000_000;

export interface NeighbourLedger {
  readonly key: string;
  /** Ids it holds (12 bytes each). */
  readonly ids: number;
  /** Time between its window and `[from, to)` (0 when they touch or overlap). */
  readonly distanceMs: number;
}

/**
 * The delivery ledgers (`.ids` keys) of the windows of the same project and mode whose interval lies within the
 * horizon of `[from, to)`, excluding `self`, nearest first. One listing without a delimiter: window ids start with
 * their compact UTC start, so keys sort by time; the listing starts just before the horizon and stops after it.
 */
export async function neighbourLedgerKeys(
  s3: S3Client,
  bucket: string,
  layout: StagingLayout,
  self: WindowRef,
  from: number,
  to: number,
): Promise<NeighbourLedger[]> {
  const base = `${layout.prefix}delivery/project=${self.projectId}/mode=${self.mode}/window=`;
  const startAfter = `${base}${compactIso(from - CROSS_WINDOW_HORIZON_MS - LONGEST_WINDOW_MS)}`;
  const keys: NeighbourLedger[] = [];
  const nearestFirst = (): NeighbourLedger[] => keys.sort((a, b) => a.distanceMs - b.distanceMs);
  let token: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({
        Bucket: bucket,
        Prefix: base,
        ...(token === undefined ? { StartAfter: startAfter } : { ContinuationToken: token }),
      }),
    );
    for (const o of page.Contents ?? []) {
      const key = o.Key!;
      const id = key.slice(base.length, key.indexOf('/', base.length));
      let bounds: { from: number; to: number };
      try {
        bounds = parseWindowId(id);
      } catch {
        continue;
      }
      if (bounds.from >= to + CROSS_WINDOW_HORIZON_MS) return nearestFirst(); // sorted: nothing later is near
      if (id !== self.windowId && key.endsWith('.ids') && bounds.to > from - CROSS_WINDOW_HORIZON_MS) {
        keys.push({
          key,
          ids: Math.floor((o.Size ?? 0) / 12),
          distanceMs: Math.max(0, from - bounds.to, bounds.from - to),
        });
      }
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  return nearestFirst();
}

/** What {@link loadNeighbourLedgers} consulted. */
export interface NeighbourLoad {
  readonly ids: number;
  readonly ledgers: number;
  /** Ledgers within the horizon left out because the budget was used up (the farthest ones). */
  readonly skipped: number;
  /** How far from the window every loaded ledger reaches (the horizon actually covered). */
  readonly coveredMs: number;
}

/**
 * Adds the ids delivered by the neighbouring windows to `seen`, nearest windows first, up to `budget` ids read; with
 * `keep`, only the ids it accepts (one partition's: a partitioned forward reads P × the budget to hold about as much).
 */
export async function loadNeighbourLedgers(
  s3: S3Client,
  bucket: string,
  layout: StagingLayout,
  self: WindowRef,
  from: number,
  to: number,
  seen: IdSet,
  budget = NEIGHBOUR_ID_BUDGET,
  keep?: (hi: number) => boolean,
): Promise<NeighbourLoad> {
  const found = await neighbourLedgerKeys(s3, bucket, layout, self, from, to);
  let ids = 0;
  let ledgers = 0;
  let taken = 0;
  // Every ledger nearer than the first one left out is loaded: that distance is the horizon covered.
  let coveredMs = CROSS_WINDOW_HORIZON_MS;
  for (; taken < found.length; taken++) {
    const n = found[taken]!;
    if (ids + n.ids > budget) {
      coveredMs = n.distanceMs;
      break;
    }
    const bytes = await getBytes(s3, bucket, n.key);
    if (bytes === undefined) continue;
    seen.addBytes(bytes, keep);
    ids += bytes.byteLength / 12;
    ledgers++;
  }
  const skipped = found.length - taken;
  return { ids, ledgers, skipped, coveredMs };
}
