/**
 * Exports one window from Mixpanel into staging: rolling gzipped JSONL parts (verbatim lines), lines that are not
 * events kept in quarantine with their reason, and the manifest written last as the commit marker.
 * A failure anywhere aborts the run's uploads and writes no manifest, so nothing of the attempt is ever forwarded.
 */
import { DeleteObjectsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { MixpanelExportClient } from '#shared/mixpanel/client';
import { GzipObjectWriter } from '#shared/staging/gzip-object';
import { type StagingLayout, type WindowRef, newRunId } from '#shared/staging/layout';
import type { Manifest } from '#shared/staging/manifest';
import { putJson } from '#shared/staging/s3';
import { type ExportQuery, type Window, inWindow } from '#shared/windows/plan';

/** Part roll-over: events and uncompressed bytes. 128 MB raw keeps a mapped part under the 256 MB file limit of the
 * Batch Ingestion API (experience-platform.en help/ingestion/batch-ingestion/api-overview.md) and a part's forward
 * well inside one Lambda invocation. */
export const PART_MAX_EVENTS = 200_000;
export const PART_MAX_BYTES = 128 * 1024 * 1024;

export type QuarantineReason = 'not-json' | 'not-an-object' | 'missing-event' | 'missing-properties' | 'outside-window';

export interface StageDeps {
  readonly s3: S3Client;
  readonly bucket: string;
  readonly layout: StagingLayout;
  readonly client: MixpanelExportClient;
  readonly now: () => number;
  readonly project: { readonly id: string; readonly timezone: string; readonly legacyLocalTime: boolean };
  readonly partMaxEvents?: number;
  readonly partMaxBytes?: number;
}

export interface StageResult {
  readonly events: number;
  readonly quarantined: number;
  readonly parts: number;
  readonly bytes: number;
  readonly manifestKey?: string;
  readonly manifest?: Manifest;
  readonly byReason: Partial<Record<QuarantineReason, number>>;
}

/**
 * Decides whether a raw line is a stageable event of the window. Returns undefined when it is, else the reason.
 * Parsing is the price of checking; the line itself is staged verbatim.
 */
export function classifyLine(line: string, w: Window): QuarantineReason | undefined {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return 'not-json';
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return 'not-an-object';
  const e = value as { event?: unknown; properties?: unknown };
  if (typeof e.event !== 'string' || e.event === '') return 'missing-event';
  const p = e.properties;
  if (p === null || typeof p !== 'object' || Array.isArray(p)) return 'missing-properties';
  if (!inWindow(w, (p as { mp_processing_time_ms?: unknown }).mp_processing_time_ms)) return 'outside-window';
  return undefined;
}

const DETAIL: Record<QuarantineReason, string> = {
  'not-json': 'the line is not valid JSON',
  'not-an-object': 'the line is JSON but not an object',
  'missing-event': 'the object has no non-empty string "event"',
  'missing-properties': 'the object has no "properties" object',
  'outside-window': 'mp_processing_time_ms is missing or outside the window Mixpanel was asked for',
};

export async function stageWindow(w: Window, query: ExportQuery, deps: StageDeps, opts: { dryRun: boolean }): Promise<StageResult> {
  const ref: WindowRef = { projectId: deps.project.id, mode: w.mode, windowId: w.id };
  const runId = newRunId(deps.now());
  const maxEvents = deps.partMaxEvents ?? PART_MAX_EVENTS;
  const maxBytes = deps.partMaxBytes ?? PART_MAX_BYTES;
  const parts: Manifest['parts'] = [];
  const byReason: Partial<Record<QuarantineReason, number>> = {};
  let part: GzipObjectWriter | undefined;
  let partEvents = 0;
  let quarantine: GzipObjectWriter | undefined;
  let events = 0;
  let quarantined = 0;
  let bytes = 0;

  const closePart = async (): Promise<void> => {
    if (part === undefined) return;
    const written = await part.close();
    parts.push({ key: written.key, events: partEvents, bytes: written.bytes, sha256: written.sha256 });
    bytes += written.bytes;
    part = undefined;
    partEvents = 0;
  };

  try {
    for await (const batch of deps.client.lines(query)) {
      let out = '';
      let outEvents = 0;
      let bad = '';
      for (const line of batch) {
        const reason = classifyLine(line, w);
        if (reason === undefined) {
          out += line + '\n';
          outEvents++;
        } else {
          quarantined++;
          byReason[reason] = (byReason[reason] ?? 0) + 1;
          bad += JSON.stringify({ reason, detail: DETAIL[reason], window: w.id, mode: w.mode, line }) + '\n';
        }
      }
      events += outEvents;
      if (opts.dryRun) continue;
      if (bad !== '') {
        quarantine ??= new GzipObjectWriter(deps.s3, deps.bucket, deps.layout.quarantineKey(ref, runId));
        await quarantine.write(bad);
      }
      if (outEvents > 0) {
        part ??= new GzipObjectWriter(deps.s3, deps.bucket, deps.layout.partKey({ ...ref, runId, part: parts.length }));
        await part.write(out);
        partEvents += outEvents;
        if (partEvents >= maxEvents || part.rawBytes >= maxBytes) await closePart();
      }
    }
    if (opts.dryRun) return { events, quarantined, parts: 0, bytes: 0, byReason };
    await closePart();
    const quarantineKey = quarantine === undefined ? undefined : (await quarantine.close()).key;
    quarantine = undefined;
    const manifest: Manifest = {
      version: 1,
      projectId: deps.project.id,
      mode: w.mode,
      window: { id: w.id, from: new Date(w.from).toISOString(), to: new Date(w.to).toISOString() },
      query: { from_date: query.from_date, to_date: query.to_date, ...(query.where !== undefined ? { where: query.where } : {}) },
      parts,
      events,
      quarantined,
      exportedAt: new Date(deps.now()).toISOString(),
      runId,
      lines: events + quarantined,
      ...(quarantineKey !== undefined ? { quarantineKey } : {}),
      project: { timezone: deps.project.timezone, legacyLocalTime: deps.project.legacyLocalTime },
    };
    const manifestKey = deps.layout.manifestKey(ref);
    // The commit marker: written last, only after every part upload completed.
    await putJson(deps.s3, deps.bucket, manifestKey, manifest);
    return { events, quarantined, parts: parts.length, bytes, manifestKey, manifest, byReason };
  } catch (error) {
    await part?.abort();
    await quarantine?.abort();
    if (!opts.dryRun) await deleteRun(deps, ref, runId, parts.map((p) => p.key));
    throw error;
  }
}

/** Best effort: remove the parts of a failed run (they are never listed by a manifest either way). */
async function deleteRun(deps: StageDeps, ref: WindowRef, runId: string, known: string[]): Promise<void> {
  try {
    const prefix = `${deps.layout.windowPrefix(ref)}run=${runId}/`;
    const listed = await deps.s3.send(new ListObjectsV2Command({ Bucket: deps.bucket, Prefix: prefix }));
    const keys = new Set([...known, ...(listed.Contents ?? []).map((o) => o.Key!).filter(Boolean)]);
    if (keys.size > 0) {
      await deps.s3.send(new DeleteObjectsCommand({ Bucket: deps.bucket, Delete: { Objects: [...keys].map((Key) => ({ Key })) } }));
    }
  } catch {
    // Leftovers are harmless: no manifest lists them, and the staging lifecycle rule expires them.
  }
}
