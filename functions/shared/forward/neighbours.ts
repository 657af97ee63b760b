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
import type { IdLedger } from './ledger.ts';

/**
 * How far around a window other windows' deliveries are consulted. Mixpanel's SDKs retry a failed flush within
 * minutes and the Raw Export is not deduplicated (mixpanel/docs reference/event-deduplication.mdx); a day covers
 * those retries with a wide margin while keeping the ledgers read per window bounded (≈ a day of ids, 12 bytes each).
 */
export const CROSS_WINDOW_HORIZON_MS = 24 * 3_600_000;

/** Windows of the same project and mode whose interval lies within the horizon of `[from, to)`, excluding `self`. */
export async function neighbourWindows(s3: S3Client, bucket: string, layout: StagingLayout, self: WindowRef, from: number, to: number): Promise<string[]> {
  const base = `${layout.prefix}delivery/project=${self.projectId}/mode=${self.mode}/window=`;
  const out: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: base, Delimiter: '/', ContinuationToken: token }));
    for (const p of page.CommonPrefixes ?? []) {
      const id = p.Prefix!.slice(base.length).replace(/\/$/, '');
      if (id === self.windowId) continue;
      let bounds: { from: number; to: number };
      try {
        bounds = parseWindowId(id);
      } catch {
        continue;
      }
      if (bounds.to > from - CROSS_WINDOW_HORIZON_MS && bounds.from < to + CROSS_WINDOW_HORIZON_MS) out.push(id);
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  return out;
}

/** Adds every id delivered by the neighbouring windows to `seen` (tagged -1: delivered elsewhere). */
export async function loadNeighbourLedgers(s3: S3Client, bucket: string, layout: StagingLayout, self: WindowRef, from: number, to: number, seen: IdLedger): Promise<number> {
  let loaded = 0;
  for (const windowId of await neighbourWindows(s3, bucket, layout, self, from, to)) {
    const prefix = layout.deliveryPrefix({ ...self, windowId });
    let token: string | undefined;
    do {
      const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
      for (const o of page.Contents ?? []) {
        if (!o.Key!.endsWith('.ids')) continue;
        const bytes = await getBytes(s3, bucket, o.Key!);
        if (bytes !== undefined) {
          seen.addBytes(bytes, -1);
          loaded += bytes.byteLength / 12;
        }
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
  }
  return loaded;
}
