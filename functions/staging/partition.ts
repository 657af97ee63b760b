/**
 * Partitioned staging (docs/architecture.md#staging-layout-contract, "Partitions"): the export puts each event line
 * into partition `partitionOf(_id, P)`, where `_id` is the id the mapper gives the event. Mixpanel's duplicates of one
 * event share the dedupe tuple, hence the `_id`, hence the partition: each partition dedupes on its own, with an id
 * set sized to the partition instead of the window. The partition is a function of the ledger digest, so a delivery
 * ledger entry (which stores the digest) tells its partition under any P without the record.
 */
import { digest } from '#forward/ledger';
import { mixpanelTimeMs } from '#mapping/event-time';
import { eventId } from '#mapping/id';

/**
 * Most partitions a window is split into. An open partition costs a gzip stream (~0.25 MB) and a temporary file, not a
 * multipart buffer (export/stage-window.ts spills partitions to disk), so memory does not set this limit; more
 * partitions would only make smaller parts and more forward invocations. Partitions of larger windows roll into several
 * parts, and the planner's MAX_EVENTS_PER_EXPORT ceiling keeps windows bounded.
 */
export const MAX_PARTITIONS = 16;

/** The partition of a digest's high half under `partitions` (a power of two). */
export function partitionOfHi(hi: number, partitions: number): number {
  return partitions <= 1 ? 0 : (hi >>> 0) % partitions;
}

/** The partition of `_id` among `partitions`: `(hi >>> 0) % P` of its ledger digest (forward/ledger.ts). */
export function partitionOf(id: string, partitions: number): number {
  return partitions <= 1 ? 0 : partitionOfHi(digest(id)[0], partitions);
}

/**
 * Partitions for a window expected to hold `expectedEvents`: the next power of two of expected / `partEvents`, at
 * least 1 and at most `max`. Unknown or small windows stay in one partition (today's layout).
 */
export function partitionsFor(expectedEvents: number | undefined, partEvents: number, max = MAX_PARTITIONS): number {
  if (expectedEvents === undefined || !(expectedEvents > partEvents)) return 1;
  let p = 1;
  while (p < max && p * partEvents < expectedEvents) p *= 2;
  return p;
}

/**
 * The `_id` the mapper (mapping/mapper.ts) gives the staged line's event, computed the way the mapper does it: Mixpanel
 * `time` in milliseconds (mixpanelTimeMs) and `eventId`. Undefined when the mapper would reject the event for its
 * time (it then gets no `_id` and is never delivered, so any partition will do).
 */
export function lineEventId(projectId: string, line: string): string | undefined {
  const event = JSON.parse(line) as Record<string, unknown>;
  const name = event.event as string;
  const properties = event.properties as Record<string, unknown>;
  const time = properties.time;
  if (typeof time !== 'number' || !Number.isFinite(time) || time <= 0) return undefined;
  return eventId(projectId, event, name, properties, mixpanelTimeMs(time));
}

/** The partition of a staged event line (one the export's line check accepted). */
export function linePartition(projectId: string, line: string, partitions: number): number {
  if (partitions <= 1) return 0;
  const id = lineEventId(projectId, line);
  return id === undefined ? 0 : partitionOf(id, partitions);
}
