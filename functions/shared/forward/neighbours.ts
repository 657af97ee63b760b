/**
 * Cross-window deduplication. Mixpanel returns exact duplicates and same-tuple retries (one event sent twice, the
 * second copy processed minutes later), and the two copies can fall into neighbouring processing-time windows. The
 * `_id` is the same (it comes from the dedupe tuple), so the forwarder also consults the delivery ledgers of the
 * windows around the one it forwards: an id one of them already delivered becomes a `duplicate` rejection here.
 */
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { StagingLayout, WindowRef } from '#shared/staging/layout';
import { getBytes } from '#shared/staging/s3';
import { parseWindowId } from '#shared/windows/plan';
import { compactIso } from '#shared/windows/time';

/** The longest window the planner makes (a day: catch-up spans and event-time days, 25 h on a DST day). */
const LONGEST_WINDOW_MS = 25 * 3_600_000;
import type { IdLedger } from './ledger.ts';

/**
 * How far around a window other windows' deliveries are consulted. Mixpanel's SDKs retry a failed flush within
 * minutes and the Raw Export is not deduplicated (mixpanel/docs reference/event-deduplication.mdx); a day covers
 * those retries with a wide margin while keeping the ledgers read per window bounded (≈ a day of ids, 12 bytes each).
 */
export const CROSS_WINDOW_HORIZON_MS = 24 * 3_600_000;

/**
 * The delivery ledgers (`.ids` keys) of the windows of the same project and mode whose interval lies within the
 * horizon of `[from, to)`, excluding `self`. One listing without a delimiter: window ids start with their compact UTC
 * start, so keys sort by time; the listing starts just before the horizon and stops after it.
 */
export async function neighbourLedgerKeys(s3: S3Client, bucket: string, layout: StagingLayout, self: WindowRef, from: number, to: number): Promise<string[]> {
  const base = `${layout.prefix}delivery/project=${self.projectId}/mode=${self.mode}/window=`;
  const startAfter = `${base}${compactIso(from - CROSS_WINDOW_HORIZON_MS - LONGEST_WINDOW_MS)}`;
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: base, ...(token === undefined ? { StartAfter: startAfter } : { ContinuationToken: token }) }));
    for (const o of page.Contents ?? []) {
      const key = o.Key!;
      const id = key.slice(base.length, key.indexOf('/', base.length));
      let bounds: { from: number; to: number };
      try {
        bounds = parseWindowId(id);
      } catch {
        continue;
      }
      if (bounds.from >= to + CROSS_WINDOW_HORIZON_MS) return keys; // sorted: nothing later is near
      if (id !== self.windowId && key.endsWith('.ids') && bounds.to > from - CROSS_WINDOW_HORIZON_MS) keys.push(key);
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  return keys;
}

/** Adds every id delivered by the neighbouring windows to `seen` (tagged -1: delivered elsewhere). */
export async function loadNeighbourLedgers(s3: S3Client, bucket: string, layout: StagingLayout, self: WindowRef, from: number, to: number, seen: IdLedger): Promise<number> {
  let loaded = 0;
  for (const key of await neighbourLedgerKeys(s3, bucket, layout, self, from, to)) {
    const bytes = await getBytes(s3, bucket, key);
    if (bytes !== undefined) {
      seen.addBytes(bytes, -1);
      loaded += bytes.byteLength / 12;
    }
  }
  return loaded;
}
