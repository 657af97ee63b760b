/**
 * Checks the invariants of docs/architecture.md over a staging bucket (and, locally, what the AEP emulator accepted):
 * 1. nothing lost: per committed window, manifest.events = Σ receipts.accepted + Σ receipts.rejected of its run,
 *    every rejected record kept in rejected/ with a reason, every quarantined line kept in quarantine/ with a reason,
 *    and the window's reconciliation receipt (window.json) agreeing with its parts;
 * 2. nothing sent twice: no `_id` accepted twice by Platform;
 * 3. the checkpoint never passes a window whose manifest is missing.
 * Used by `npm start` (its exit code) and by the test suites after every scenario.
 */
import { gunzipSync } from 'node:zlib';
import { ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import type { WindowMode } from '#common/config';
import type { PlatformVerdict, Receipt, WindowReceipt } from '#forward/receipt';
import type { StagingLayout } from '#staging/layout';
import { type Manifest, parseManifest } from '#staging/manifest';
import { getBytes, getJson, getText } from '#staging/s3';
import { parseWindowId } from '#windows/plan';

export interface WindowReconciliation {
  readonly window: string;
  readonly mode: WindowMode;
  readonly runId: string;
  readonly lines: number;
  readonly exported: number;
  readonly quarantined: number;
  readonly accepted: number;
  readonly rejected: number;
  readonly retried: number;
  readonly forwarded: boolean;
  /** Platform's verdict on the run, once the verifier has one (window.json `platform`). */
  readonly platform?: PlatformVerdict;
}

export interface InvariantReport {
  readonly ok: boolean;
  readonly problems: string[];
  readonly windows: WindowReconciliation[];
  readonly duplicatesAtPlatform: number;
}

export async function listKeys(s3: S3Client, bucket: string, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of page.Contents ?? []) if (o.Key) keys.push(o.Key);
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token !== undefined);
  return keys;
}

export async function checkInvariants(opts: {
  s3: S3Client;
  bucket: string;
  layout: StagingLayout;
  projectId: string;
  /** Every `_id` Platform accepted, repeats included (the AEP emulator's record). */
  acceptedIds?: readonly string[];
  /** Windows expected to be forwarded completely (default: every committed window). */
  requireForwarded?: boolean;
  /** Every forwarded window expected to have Platform's final verdict (after the verifier ran). */
  requireVerified?: boolean;
}): Promise<InvariantReport> {
  const problems: string[] = [];
  const windows: WindowReconciliation[] = [];
  const manifests = (
    await listKeys(opts.s3, opts.bucket, `${opts.layout.prefix}staging/project=${opts.projectId}/`)
  ).filter((k) => k.endsWith('/manifest.json'));
  for (const key of manifests) {
    const m: Manifest = parseManifest((await getText(opts.s3, opts.bucket, key))!, key);
    const ref = { projectId: m.projectId, mode: m.mode, windowId: m.window.id };
    let accepted = 0;
    let rejected = 0;
    let retried = 0;
    let complete = 0;
    for (let i = 0; i < m.parts.length; i++) {
      const r = await getJson<Receipt>(
        opts.s3,
        opts.bucket,
        opts.layout.receiptKey({ ...ref, runId: m.runId, part: i }),
      );
      if (r === undefined || r.status !== 'complete') continue;
      complete++;
      accepted += r.accepted;
      rejected += r.rejected;
      retried += r.retried;
      if (r.read !== m.parts[i]!.events)
        problems.push(`${m.window.id} part ${i}: receipt read ${r.read} ≠ ${m.parts[i]!.events} staged`);
      // Every rejected record is kept with its reason.
      let kept = 0;
      for (const rk of r.rejectedKeys) {
        const lines = gunzipSync((await getBytes(opts.s3, opts.bucket, rk))!)
          .toString('utf8')
          .split('\n')
          .filter(Boolean);
        for (const l of lines) {
          const j = JSON.parse(l) as { reason?: string };
          if (typeof j.reason !== 'string' || j.reason === '') problems.push(`${rk}: a rejected record has no reason`);
        }
        kept += lines.length;
      }
      if (kept !== r.rejected)
        problems.push(`${m.window.id} part ${i}: ${r.rejected} rejected but ${kept} kept in rejected/`);
    }
    const forwarded = complete === m.parts.length;
    if (forwarded && accepted + rejected !== m.events)
      problems.push(`${m.window.id}: manifest.events ${m.events} ≠ accepted ${accepted} + rejected ${rejected}`);
    if (!forwarded && opts.requireForwarded !== false)
      problems.push(`${m.window.id}: only ${complete} of ${m.parts.length} parts forwarded`);
    if (m.lines !== m.events + m.quarantined)
      problems.push(`${m.window.id}: lines ${m.lines} ≠ events ${m.events} + quarantined ${m.quarantined}`);
    // Every quarantined line is kept, with its reason.
    if (m.quarantined > 0) {
      const bytes = m.quarantineKey === undefined ? undefined : await getBytes(opts.s3, opts.bucket, m.quarantineKey);
      if (bytes === undefined)
        problems.push(`${m.window.id}: ${m.quarantined} quarantined line(s) but no quarantine object`);
      else {
        const kept = gunzipSync(bytes).toString('utf8').split('\n').filter(Boolean);
        if (kept.length !== m.quarantined)
          problems.push(`${m.window.id}: ${m.quarantined} quarantined but ${kept.length} kept in quarantine/`);
        if (kept.some((l) => typeof (JSON.parse(l) as { reason?: unknown }).reason !== 'string'))
          problems.push(`${m.quarantineKey}: a quarantined line has no reason`);
      }
    }
    // The window's reconciliation receipt agrees with its parts.
    const summary = await getJson<WindowReceipt>(
      opts.s3,
      opts.bucket,
      opts.layout.windowReceiptKey({ ...ref, runId: m.runId }),
    );
    if (forwarded && summary !== undefined) {
      const expected = { exported: m.lines, quarantined: m.quarantined, events: m.events, accepted, rejected, retried };
      const got = {
        exported: summary.exported,
        quarantined: summary.quarantined,
        events: summary.events,
        accepted: summary.accepted,
        rejected: summary.rejected,
        retried: summary.retried,
      };
      if (JSON.stringify(got) !== JSON.stringify(expected))
        problems.push(`${m.window.id}: window.json ${JSON.stringify(got)} ≠ its parts ${JSON.stringify(expected)}`);
      problems.push(...(await checkVerdict(opts, m.window.id, summary, opts.requireVerified === true)));
    }
    windows.push({
      window: m.window.id,
      mode: m.mode,
      runId: m.runId,
      lines: m.lines,
      exported: m.events,
      quarantined: m.quarantined,
      accepted,
      rejected,
      retried,
      forwarded,
      ...(summary?.platform !== undefined ? { platform: summary.platform } : {}),
    });
  }
  // 3. The checkpoint covers only committed windows.
  const cp = await getJson<Record<string, { to?: string; committed?: [string, string][] }>>(
    opts.s3,
    opts.bucket,
    opts.layout.checkpointKey(opts.projectId),
  );
  for (const mode of ['processing-time', 'event-time'] as const) {
    const committed = cp?.[mode]?.committed ?? [];
    const ranges = windows
      .filter((w) => w.mode === mode)
      .map((w) => parseWindowId(w.window))
      .sort((a, b) => a.from - b.from);
    for (const [a, b] of committed) {
      let cursor = Date.parse(a);
      for (const r of ranges) if (r.from <= cursor && r.to > cursor) cursor = r.to;
      if (cursor < Date.parse(b))
        problems.push(
          `checkpoint (${mode}) covers ${new Date(cursor).toISOString()} which no committed manifest covers`,
        );
    }
  }
  // Platform holds what every run of every window delivered (a forced re-export keeps the earlier run's records).
  // Records Platform refused after accepting them (the verifier's verdicts) are delivered but not stored.
  let deliveredTotal = 0;
  let refusedTotal = 0;
  for (const key of await listKeys(opts.s3, opts.bucket, `${opts.layout.prefix}delivery/project=${opts.projectId}/`)) {
    if (/\/window\.json$/.test(key)) {
      const w = await getJson<WindowReceipt>(opts.s3, opts.bucket, key);
      if (w !== undefined && !w.replay && w.platform?.status !== 'pending') refusedTotal += w.platform?.failed ?? 0;
    }
    if (!/\/part-\d+\.json$/.test(key)) continue;
    const r = await getJson<Receipt>(opts.s3, opts.bucket, key);
    if (r !== undefined && !r.replay) deliveredTotal += r.accepted;
  }
  let duplicatesAtPlatform = 0;
  if (opts.acceptedIds !== undefined) {
    const seen = new Set<string>();
    for (const id of opts.acceptedIds) {
      if (seen.has(id)) duplicatesAtPlatform++;
      seen.add(id);
    }
    if (duplicatesAtPlatform > 0)
      problems.push(`${duplicatesAtPlatform} _id(s) were accepted by Platform more than once`);
    const stored = deliveredTotal - refusedTotal;
    if (opts.requireForwarded !== false && seen.size !== stored && duplicatesAtPlatform === 0) {
      const refused = refusedTotal > 0 ? ` − ${refusedTotal} refused by Platform afterwards` : '';
      problems.push(`Platform holds ${seen.size} records but the receipts count ${deliveredTotal} accepted${refused}`);
    }
  }
  return { ok: problems.length === 0, problems, windows, duplicatesAtPlatform };
}

/**
 * 4. Nothing lost at Platform either: once the verdict is final, exported = ingested + failed at Platform + rejected +
 * quarantined, and every record Platform refused is kept in rejected/ with a reason starting `platform`.
 */
async function checkVerdict(
  opts: { s3: S3Client; bucket: string },
  window: string,
  summary: WindowReceipt,
  requireVerified: boolean,
): Promise<string[]> {
  const v = summary.platform;
  if (v === undefined || v.status === 'pending') {
    return requireVerified ? [`${window}: no final verdict from Platform (${v?.detail ?? 'never checked'})`] : [];
  }
  const problems: string[] = [];
  const sum = v.ingested + v.failed + summary.rejected + summary.quarantined;
  if (sum !== summary.exported) {
    problems.push(
      `${window}: exported ${summary.exported} ≠ ingested ${v.ingested} + failed at Platform ${v.failed} + ` +
        `rejected ${summary.rejected} + quarantined ${summary.quarantined}`,
    );
  }
  let kept = 0;
  for (const key of v.rejectedKeys ?? []) {
    const bytes = await getBytes(opts.s3, opts.bucket, key);
    const lines = bytes === undefined ? [] : gunzipSync(bytes).toString('utf8').split('\n').filter(Boolean);
    for (const l of lines) {
      const reason = (JSON.parse(l) as { reason?: unknown }).reason;
      if (typeof reason !== 'string' || !reason.startsWith('platform'))
        problems.push(`${key}: a record refused by Platform has no platform reason`);
    }
    kept += lines.length;
  }
  if (kept !== v.failed - (v.untraced ?? 0))
    problems.push(`${window}: ${v.failed} failed at Platform but ${kept} kept in rejected/`);
  return problems;
}
