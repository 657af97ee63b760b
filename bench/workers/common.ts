/** Small helpers shared by the benchmark workers (each worker is a fresh process that prints one JSON line). */
import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector';
import type { S3Client } from '@aws-sdk/client-s3';
import { readConfig } from '#common/config';
import type { Log } from '#common/log';
import { createExportDeps } from '#export/deps';
import { createS3Client } from '#staging/s3';
import { createExportHandler } from '../../functions/export/handler.ts';

export const quiet: Log = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
};

/** The S3 client of a worker: s3rver through the SDK's own AWS_ENDPOINT_URL_S3, as the product reads it. */
export function benchS3(): S3Client {
  return createS3Client(process.env, {
    region: 'us-east-1',
    credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' },
  });
}

/**
 * The export handler over `from`–`to` (processing time), timed, for a project in steady state: with
 * BENCH_EVENTS_PER_MINUTE set, the checkpoint already knows that rate, so the export sizes and partitions the window
 * as it would in production.
 */
export async function timedSteadyStateExport(s3: S3Client, from: string, to: string) {
  const deps = createExportDeps(readConfig(process.env, 'export'), { s3, log: quiet });
  const rate = Number(process.env.BENCH_EVENTS_PER_MINUTE ?? Number.NaN);
  if (Number.isFinite(rate)) {
    const mode = { committed: [], pending: [] };
    await deps.state.write({ 'processing-time': { ...mode, eventsPerMinute: rate }, 'event-time': mode });
  }
  return timed(() => createExportHandler(() => deps)({ from, to, mode: 'processing-time' }));
}

/** Peak resident set size of this process so far, in MB (`maxRSS` is in KiB, Node docs). */
export function peakRssMb(): number {
  return process.resourceUsage().maxRSS / 1024;
}

/**
 * Wall and CPU time of `fn`. With BENCH_CPU_PROFILE set (the bench's `--cpu-prof` pass), the V8 CPU profiler (what
 * `node --cpu-prof` runs) records exactly `fn` — not module loading — and the profile is written to that path.
 */
export async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number; cpuMs: number }> {
  const profilePath = process.env.BENCH_CPU_PROFILE;
  const session = profilePath === undefined ? undefined : new Session();
  if (session !== undefined) {
    session.connect();
    await post(session, 'Profiler.enable');
    await post(session, 'Profiler.start');
  }
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  const value = await fn();
  const ms = performance.now() - t0;
  const used = process.cpuUsage(cpu);
  if (session !== undefined && profilePath !== undefined) {
    const { profile } = (await post(session, 'Profiler.stop')) as { profile: unknown };
    await writeFile(profilePath, JSON.stringify(profile));
    session.disconnect();
  }
  return { value, ms, cpuMs: (used.user + used.system) / 1000 };
}

function post(session: Session, method: string): Promise<unknown> {
  return new Promise((resolve, reject) =>
    session.post(method, (error, result) => (error ? reject(error) : resolve(result))),
  );
}

/** The worker's result: one JSON line after the marker the parent looks for (lib/proc.ts). */
export function report(result: Record<string, unknown>): void {
  process.stdout.write(`\n@@bench-result@@${JSON.stringify(result)}\n`);
}
