/**
 * `npm start`'s code path end to end: the demo starts the local stack, replays the schedule through the export and
 * forward handlers, and prints a summary. The summary's numbers are checked against what the emulators themselves
 * saw: the lines the Mixpanel emulator served and the records the AEP emulator accepted.
 */
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { LocalStack } from '#emulators/local-stack';
import { runDemo } from '#cli/demo';
import { Buffered } from '#cli/io';
import { runCli } from '#cli/main';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'cli-demo-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The numbers of the summary's total row: exported, quarantined, accepted, rejected. */
function totals(stdout: string): {
  windows: number;
  exported: number;
  quarantined: number;
  accepted: number;
  rejected: number;
  ingested: number;
  failedAtPlatform: number;
} {
  const cells = '\\s+([\\d,]+)'.repeat(7);
  const m = new RegExp(`total \\((\\d+) windows?\\)${cells}`).exec(stdout);
  if (m === null) throw new Error(`no total row in:\n${stdout}`);
  const n = (s: string) => Number(s.replace(/,/g, ''));
  return {
    windows: n(m[1]!),
    exported: n(m[2]!),
    quarantined: n(m[3]!),
    accepted: n(m[4]!),
    rejected: n(m[5]!),
    // m[6] is retried
    ingested: n(m[7]!),
    failedAtPlatform: n(m[8]!),
  };
}

describe('demo (npm start)', () => {
  it('should print a summary whose numbers match what the Mixpanel and AEP emulators saw, and exit 0', async () => {
    // Prepare: a stale file from an earlier run must not survive (each run starts from an empty .local/s3)
    await mkdir(path.join(dir, 's3', 'stale'), { recursive: true });
    await writeFile(path.join(dir, 's3', 'stale', 'old._S3rver_object'), 'x');
    const seen = { served: 0, requests: 0, acceptedIds: [] as string[], unique: 0, datasetId: '' };
    const inspect = (s: LocalStack, datasetId: string): void => {
      const ok = s.mixpanel.requests.filter((r) => r.status === 200);
      seen.requests = ok.length;
      seen.served = ok.reduce((n, r) => n + r.eventsServed, 0);
      seen.acceptedIds = s.aep.acceptedIds(datasetId);
      seen.datasetId = datasetId;
      seen.unique = new Set(seen.acceptedIds).size;
    };
    const io = { stdout: new Buffered(), stderr: new Buffered() };

    // Act
    const result = await runDemo({ events: 5000, hours: 4, sink: 'streaming', dir, verbose: false, inspect }, io);

    // Assess: exit code, and the printed totals against the emulators' own records
    // The one error logged is the product telling the operator that Platform refused records after accepting them.
    const errors = io.stderr.text.split('\n').filter(Boolean);
    expect(errors.length).toBeGreaterThan(0);
    for (const e of errors) expect(e).toMatch(/Platform refused records it had accepted/);
    expect(result.code).toBe(0);
    const t = totals(io.stdout.text);
    expect(t.exported + t.quarantined).toBe(seen.served);
    expect(t.exported).toBeGreaterThanOrEqual(5000); // Mixpanel's duplicates come on top
    expect(t.quarantined % 5).toBe(0); // the five malformed lines, once per query of the catch-up run
    expect(t.quarantined).toBeGreaterThan(0);
    // Platform stores the accepted records minus those it refused asynchronously; the verdict counts both.
    expect(t.failedAtPlatform).toBeGreaterThan(0);
    expect(t.ingested).toBe(t.accepted - t.failedAtPlatform);
    expect(t.ingested).toBe(seen.acceptedIds.length);
    expect(t.ingested).toBe(seen.unique);
    expect(t.accepted + t.rejected).toBe(t.exported);
    expect(t.rejected).toBeGreaterThan(0); // duplicates, sent once
    // Three scheduled runs exported (one was missed and caught up; the repeated delivery exported nothing).
    expect(seen.requests).toBe(t.windows);
    expect(t.windows).toBeGreaterThanOrEqual(3);
    expect(result.mixpanelLines).toBe(seen.served);
    expect(result.aepAccepted).toBe(seen.acceptedIds.length);
    expect(result.invariants?.problems).toEqual([]);
    // The output walks through the schedule and says where to look.
    const out = io.stdout.text;
    // At least one record refused by Platform asynchronously, traced to rejected/ with Platform's reason.
    expect(out).toMatch(
      /refused by Platform afterwards\n\s+→ rejected\/\S+\/platform-part-\d{5}\.jsonl\.gz\n\s+platform-validation: /,
    );
    expect(out).toMatch(
      /once Platform's verdict is in, exported = ingested \+ failed at Platform \+ rejected \+ quarantined/,
    );
    // The demo provisions its own target first, and the records land in that dataset.
    expect(out).toMatch(/Platform setup \(npm run cli -- provision\)/);
    expect(out).toMatch(/created\s+schema\s+Mixpanel events/);
    expect(out).toMatch(/created\s+dataflow/);
    expect(out).toContain(`→ dataset ${seen.datasetId}`);
    expect(seen.acceptedIds.length).toBeGreaterThan(0);
    expect(out).toMatch(/scheduled run MISSED/);
    expect(out).toMatch(/catch-up, one Mixpanel query/);
    expect(out).toMatch(/delivered again \(at-least-once delivery\)\n\s+nothing to export/);
    expect(out).toMatch(/✓ 2\. nothing sent twice: 0 _id accepted more than once/);
    expect(out).toContain(`${seen.unique.toLocaleString('en-US')} distinct _ids accepted`);
    expect(out).toContain('OK: every invariant held.');
    // The reconciliation table carries the retry count next to accepted and rejected (issue: reconciliation report).
    expect(out).toMatch(/exported\s+quarantined\s+accepted\s+rejected\s+retried\s+ingested\s+failed at AEP\s+duration/);
    // The staged files are where the summary says (s3rver keeps keys as folders), and the stale file is gone.
    const bucket = path.join(dir, 's3', 'mixpanel-aep-staging');
    // verify/ held the pending markers: every run got its verdict, so none is left (s3rver drops empty folders).
    expect((await readdir(bucket)).sort()).toEqual(['delivery', 'quarantine', 'rejected', 'staging', 'state']);
    await expect(readdir(path.join(dir, 's3', 'stale'))).rejects.toThrow(/ENOENT/);
  });

  it('should refuse to share its folder with another running demo', async () => {
    // Prepare: a live process (this test's parent) holds the folder
    await writeFile(path.join(dir, 'demo.pid'), String(process.ppid));
    await mkdir(path.join(dir, 's3', 'kept'), { recursive: true });
    const io = { stdout: new Buffered(), stderr: new Buffered() };
    // Act
    const result = await runDemo({ events: 100, hours: 2, sink: 'streaming', dir, verbose: false }, io);
    // Assess: nothing of the other demo's folder was touched
    expect(result.code).toBe(1);
    expect(io.stderr.text).toContain(`another demo (process ${process.ppid}) is using`);
    expect(await readdir(path.join(dir, 's3'))).toEqual(['kept']);
  });

  it('should run from the command line with flags and exit 0', async () => {
    const io = { stdout: new Buffered(), stderr: new Buffered() };
    const code = await runCli(['demo', '--events', '1500', '--hours', '2', '--sink', 'batch', '--dir', dir], {}, io);
    expect(code).toBe(0);
    const t = totals(io.stdout.text);
    expect(t.windows).toBe(2);
    expect(t.accepted + t.rejected).toBe(t.exported);
    expect(io.stdout.text).toContain('batch sink');
  });
});
