/**
 * Exports one window from Mixpanel into staging: rolling gzipped JSONL parts (verbatim lines), lines that are not
 * events kept in quarantine with their reason, and the manifest written last as the commit marker.
 * A failure anywhere aborts the run's uploads and writes no manifest, so nothing of the attempt is ever forwarded.
 */
import { isUtf8 } from 'node:buffer';
import path from 'node:path';
import { DeleteObjectsCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { MixpanelExportClient } from '#mixpanel/client';
import { classifyLineBytes } from './line-check.ts';
import { GzipObjectWriter } from '#staging/gzip-object';
import { type StagingLayout, type WindowRef, newRunId } from '#staging/layout';
import type { Manifest } from '#staging/manifest';
import { linePartition } from '#staging/partition';
import { putJson } from '#staging/s3';
import { type SpillOptions, createSpillDir, removeSpillDir } from '#staging/spill';
import { type ExportQuery, type Window, inWindow } from '#windows/plan';
import { ConnectorError } from '#common/errors';

/** Part roll-over: events and uncompressed bytes. 128 MB raw keeps a mapped part under the 256 MB file limit of the
 * Batch Ingestion API (experience-platform.en help/ingestion/batch-ingestion/api-overview.md) and a part's forward
 * well inside one Lambda invocation. */
export const PART_MAX_EVENTS = 200_000;
export const PART_MAX_BYTES = 128 * 1024 * 1024;

export type QuarantineReason =
  | 'not-json'
  | 'not-an-object'
  | 'missing-event'
  | 'missing-properties'
  | 'outside-window'
  | 'invalid-utf8';

/**
 * A window is abandoned when less than this is left before the Lambda deadline: enough to abort its uploads, delete
 * the attempt and save the checkpoint, so a window that cannot finish commits nothing and leaves nothing behind.
 */
export const DEADLINE_MARGIN_MS = 20_000;
/** How often the deadline is checked while a window streams (also while Mixpanel sends nothing). */
export const DEADLINE_POLL_MS = 1_000;

/** The Lambda deadline came before the window was complete; nothing of it was committed. */
export class WindowDeadlineError extends ConnectorError {
  constructor(message: string) {
    super('transient', message);
    this.name = 'WindowDeadlineError';
  }
}

export interface StageDeps {
  readonly s3: S3Client;
  readonly bucket: string;
  readonly layout: StagingLayout;
  readonly client: MixpanelExportClient;
  readonly now: () => number;
  readonly project: { readonly id: string; readonly timezone: string; readonly legacyLocalTime: boolean };
  readonly partMaxEvents?: number;
  readonly partMaxBytes?: number;
  /** Time left in the invocation (Lambda context); the window is abandoned below {@link DEADLINE_MARGIN_MS}. */
  readonly remainingMs?: () => number;
  /** @default DEADLINE_POLL_MS */
  readonly deadlinePollMs?: number;
  /** Partitions of the window (staging/partition.ts `partitionsFor`); 1 (the default) stages as before. */
  readonly partitions?: number;
  /** Where the parts of a partitioned window are written before their upload (staging/spill.ts). */
  readonly spill?: SpillOptions;
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

const NEWLINE = Buffer.from('\n');

const DETAIL: Record<QuarantineReason, string> = {
  'not-json': 'the line is not valid JSON',
  'not-an-object': 'the line is JSON but not an object',
  'missing-event': 'the object has no non-empty string "event"',
  'missing-properties': 'the object has no "properties" object',
  'outside-window': 'mp_processing_time_ms is missing or outside the window Mixpanel was asked for',
  'invalid-utf8':
    'the line is not valid UTF-8 (Mixpanel stores JSON text, so the line was damaged on the way); its exact bytes are in lineBase64',
};

export async function stageWindow(
  w: Window,
  query: ExportQuery,
  deps: StageDeps,
  opts: { dryRun: boolean },
): Promise<StageResult> {
  const ref: WindowRef = { projectId: deps.project.id, mode: w.mode, windowId: w.id };
  const runId = newRunId(deps.now());
  const maxEvents = deps.partMaxEvents ?? PART_MAX_EVENTS;
  const maxBytes = deps.partMaxBytes ?? PART_MAX_BYTES;
  const partitions = deps.partitions ?? 1;
  // A part's number is its index in the manifest: reserved when it opens (several partitions' parts are open at once).
  const parts: Array<Manifest['parts'][number] | undefined> = [];
  const byReason: Partial<Record<QuarantineReason, number>> = {};
  const open: Array<{ writer: GzipObjectWriter; slot: number; events: number } | undefined> = [];
  // Partitions keep many parts open at once: each is gzipped to a temporary file and uploaded when it closes, so
  // memory holds one upload at a time however many partitions there are (docs/architecture.md "Partitions").
  let spillDir: string | undefined;
  let quarantine: GzipObjectWriter | undefined;
  let events = 0;
  let quarantined = 0;
  let bytes = 0;

  const closePart = async (k: number): Promise<void> => {
    const part = open[k];
    if (part === undefined) return;
    open[k] = undefined;
    const written = await part.writer.close();
    const where = partitions > 1 ? { partition: k } : {};
    parts[part.slot] = {
      key: written.key,
      events: part.events,
      bytes: written.bytes,
      sha256: written.sha256,
      ...where,
    };
    bytes += written.bytes;
  };
  /** Appends lines (newline-terminated) to partition `k`'s open part, opening and rolling parts as they fill. */
  const append = async (k: number, data: Buffer, lines: number): Promise<void> => {
    let part = open[k];
    if (part === undefined) {
      const slot = parts.push(undefined) - 1;
      const key = deps.layout.partKey({ ...ref, runId, part: slot });
      const spill =
        spillDir === undefined ? undefined : { path: path.join(spillDir, `part-${slot}.gz`), ...openOf(deps) };
      const writer = new GzipObjectWriter(deps.s3, deps.bucket, key, undefined, spill);
      part = { writer, slot, events: 0 };
      open[k] = part;
    }
    await part.writer.write(data);
    part.events += lines;
    if (part.events >= maxEvents || part.writer.rawBytes >= maxBytes) await closePart(k);
  };

  const started = deps.now();
  const expired = (left: number): Error =>
    new WindowDeadlineError(
      `the Lambda deadline is near (${Math.round(left / 1000)} s left) after reading ${events + quarantined} lines of the window in ` +
        `${Math.round((deps.now() - started) / 1000)} s`,
    );
  try {
    const pollMs = deps.deadlinePollMs ?? DEADLINE_POLL_MS;
    if (opts.dryRun) {
      // A dry run classifies the decoded lines and stages nothing (`sync --dry-run` taps `lines()` to map them too).
      for await (const batch of untilDeadline(deps.client.lines(query), deps.remainingMs, pollMs, expired)) {
        for (const line of batch) {
          const reason = classifyLine(line, w);
          if (reason === undefined) events++;
          else {
            quarantined++;
            byReason[reason] = (byReason[reason] ?? 0) + 1;
          }
        }
      }
      return { events, quarantined, parts: 0, bytes: 0, byReason };
    }
    if (partitions > 1) spillDir = await createSpillDir(deps.spill?.root);
    /**
     * Splits the accepted lines of a batch (newline-terminated, in `data`) by partition: the price of partitions is one
     * JSON.parse and `_id` hash per line, paid only by windows large enough to have several.
     */
    const appendPartitioned = async (data: Buffer, lines: number): Promise<void> => {
      const groups: Buffer[][] = Array.from({ length: partitions }, () => []);
      const counts = new Array<number>(partitions).fill(0);
      let start = 0;
      for (let n = 0; n < lines; n++) {
        const end = data.indexOf(0x0a, start);
        const k = linePartition(deps.project.id, data.toString('utf8', start, end), partitions);
        groups[k]!.push(data.subarray(start, end + 1));
        counts[k]!++;
        start = end + 1;
      }
      for (let k = 0; k < partitions; k++) if (counts[k]! > 0) await append(k, Buffer.concat(groups[k]!), counts[k]!);
    };
    // Staging works on the bytes: each line is checked where it lies (classifyLineBytes: the verdict of classifyLine
    // without decoding or JSON.parse) and the runs of good lines are written out as they came, newlines included.
    for await (const batch of untilDeadline(deps.client.lineBatches(query), deps.remainingMs, pollMs, expired)) {
      const { bytes: raw, starts, ends, utf8 } = batch;
      const out: Buffer[] = [];
      let runStart = 0;
      let runEnd = 0;
      let outEvents = 0;
      let bad = '';
      for (let i = 0; i < starts.length; i++) {
        const start = starts[i]!;
        const end = ends[i]!;
        // Malformed UTF-8 (never seen in practice) is quarantined with its exact bytes rather than staged as a guess.
        const valid = utf8 || isUtf8(raw.subarray(start, end));
        const reason = classifyLineBytes(raw, start, end, w) ?? (valid ? undefined : 'invalid-utf8');
        if (reason === undefined) {
          outEvents++;
          if (!utf8) {
            // A well-formed line in a batch that also holds a malformed one: staged as it came.
            out.push(raw.subarray(start, end), NEWLINE);
          } else if (end < raw.length) {
            if (start !== runEnd) {
              if (runEnd > runStart) out.push(raw.subarray(runStart, runEnd));
              runStart = start;
            }
            runEnd = end + 1; // the line and its newline
          } else {
            // The export's last line, without a newline of its own.
            if (runEnd > runStart) out.push(raw.subarray(runStart, runEnd));
            runStart = runEnd = 0;
            out.push(raw.subarray(start, end), NEWLINE);
          }
        } else {
          quarantined++;
          byReason[reason] = (byReason[reason] ?? 0) + 1;
          const line = raw.toString('utf8', start, end);
          bad += `${JSON.stringify({
            reason,
            detail: DETAIL[reason],
            window: w.id,
            mode: w.mode,
            line,
            ...(valid ? {} : { lineBase64: raw.toString('base64', start, end) }),
          })}\n`;
        }
      }
      if (runEnd > runStart) out.push(raw.subarray(runStart, runEnd));
      events += outEvents;
      if (bad !== '') {
        quarantine ??= new GzipObjectWriter(deps.s3, deps.bucket, deps.layout.quarantineKey(ref, runId));
        await quarantine.write(bad);
      }
      if (outEvents > 0) {
        const data = out.length === 1 ? out[0]! : Buffer.concat(out);
        if (partitions > 1) await appendPartitioned(data, outEvents);
        else await append(0, data, outEvents);
      }
    }
    for (let k = 0; k < open.length; k++) await closePart(k);
    const quarantineKey = quarantine === undefined ? undefined : (await quarantine.close()).key;
    quarantine = undefined;
    const manifest: Manifest = {
      version: 1,
      projectId: deps.project.id,
      mode: w.mode,
      window: { id: w.id, from: new Date(w.from).toISOString(), to: new Date(w.to).toISOString() },
      query: {
        from_date: query.from_date,
        to_date: query.to_date,
        ...(query.where !== undefined ? { where: query.where } : {}),
      },
      parts: parts.filter((p) => p !== undefined),
      events,
      quarantined,
      exportedAt: new Date(deps.now()).toISOString(),
      runId,
      lines: events + quarantined,
      ...(quarantineKey !== undefined ? { quarantineKey, quarantinedByReason: byReason } : {}),
      project: { timezone: deps.project.timezone, legacyLocalTime: deps.project.legacyLocalTime },
      ...(partitions > 1 ? { partitions } : {}),
    };
    const manifestKey = deps.layout.manifestKey(ref);
    // The commit marker: written last, only after every part upload completed.
    await putJson(deps.s3, deps.bucket, manifestKey, manifest);
    return { events, quarantined, parts: parts.length, bytes, manifestKey, manifest, byReason };
  } catch (error) {
    for (const part of open) await part?.writer.abort();
    await quarantine?.abort();
    if (!opts.dryRun)
      await deleteRun(
        deps,
        ref,
        runId,
        parts.flatMap((p) => (p === undefined ? [] : [p.key])),
      );
    throw error;
  } finally {
    await removeSpillDir(spillDir);
  }
}

/** The injected opener of spill files, if any (tests make it fail). */
function openOf(deps: StageDeps): { open?: SpillOptions['open'] } {
  return deps.spill?.open === undefined ? {} : { open: deps.spill.open };
}

/**
 * Yields what `source` yields until less than {@link DEADLINE_MARGIN_MS} is left in the invocation, then throws
 * `expired(left)` — also while `source` waits for data (a slow or stalled export body).
 */
async function* untilDeadline<T>(
  source: AsyncIterable<T>,
  remainingMs: (() => number) | undefined,
  pollMs: number,
  expired: (left: number) => Error,
): AsyncGenerator<T> {
  if (remainingMs === undefined) {
    yield* source;
    return;
  }
  const it = source[Symbol.asyncIterator]();
  let fire!: (error: Error) => void;
  const deadline = new Promise<never>((_, reject) => (fire = reject));
  deadline.catch(() => undefined);
  const check = (): void => {
    const left = remainingMs();
    if (left < DEADLINE_MARGIN_MS) fire(expired(left));
  };
  const timer = setInterval(check, pollMs);
  timer.unref();
  let finished = false;
  try {
    for (;;) {
      check();
      const next = it.next();
      next.catch(() => undefined); // settled later when the deadline wins the race
      const r = await Promise.race([next, deadline]);
      if (r.done === true) {
        finished = true;
        return;
      }
      yield r.value;
    }
  } finally {
    clearInterval(timer);
    // Closes the export stream once its pending read settles (the generator's own cleanup destroys the body).
    if (!finished) it.return?.(undefined).catch(() => undefined);
  }
}

/** Best effort: remove the parts of a failed run (they are never listed by a manifest either way). */
async function deleteRun(deps: StageDeps, ref: WindowRef, runId: string, known: string[]): Promise<void> {
  try {
    const prefix = `${deps.layout.windowPrefix(ref)}run=${runId}/`;
    const listed = await deps.s3.send(new ListObjectsV2Command({ Bucket: deps.bucket, Prefix: prefix }));
    const keys = new Set([...known, ...(listed.Contents ?? []).map((o) => o.Key!).filter(Boolean)]);
    if (keys.size > 0) {
      await deps.s3.send(
        new DeleteObjectsCommand({ Bucket: deps.bucket, Delete: { Objects: [...keys].map((Key) => ({ Key })) } }),
      );
    }
  } catch {
    // Leftovers are harmless: no manifest lists them, and the staging lifecycle rule expires them.
  }
}
