/**
 * `npm run bench` (full) and `npm run bench -- --quick` (under a minute): seeded events through each path of the
 * product and through its baselines, side by side in the same run, each measured in a fresh process while the
 * Mixpanel emulator, the AEP emulator and s3rver run in processes of their own. Prints a table, then one JSON object
 * on the last line. Options: `--quick`, `--only=map,export,forward,memory,scale,bundle`, `--cpu-prof` (an extra, unmeasured
 * pass of each product path under the V8 profiler; its top frames are added to the table and the JSON), `--local-node`.
 * The workers — the product's code and its baselines — run on the Node.js of the Lambda runtime the stack deploys
 * (`npm run lambda-node` installs it; `LAMBDA_NODE` names another binary), so that CPU figures are the deployed
 * runtime's; without it, or with `--local-node`, on the Node running the benchmark (the JSON's `run.workerNode`). With
 * `BENCH_MEMORY_SERIES_DIR=<dir>` in the environment, each memory run also writes its 20 ms samples there
 * (`memory-<small|large>-<export|forward>.txt`: function, ms, RSS, heap used, heap total, external, array buffers
 * in MB).
 *
 * Baselines and ratios (STYLE.md: benchmarks print ratios against a baseline in the same run, never timed tests):
 * - map: the product's `mapper(JSON.parse(line))` against the roofline of the contract's unavoidable work (parse, `_id`
 *   of the dedupe tuple, `JSON.stringify` of the product's record) and `JSON.stringify(JSON.parse(line))`, same lines;
 * - export: emulator → client → line check → gzip → multipart upload into s3rver, against the roofline (HTTP from the
 *   emulator → gunzip → gzip at the product's level → discard) and the peer `mixpanel-import` exporting the same query,
 *   alone and followed by the gzip and upload of its file to the same s3rver (equal work);
 * - forward: the windows the export rounds committed, s3rver → AEP emulator (streaming sink), with its CPU per 1,000;
 * - memory: the export and then the forward of a small and a large window, each function in a fresh process (peak RSS);
 * - scale (full run only): a 10 M-event window (`BENCH_SCALE_EVENTS` lowers it) exported by one invocation, fanned out
 *   through the SQS stand-in and forwarded by `BENCH_SCALE_CONCURRENCY` (default 2) concurrent invocations, each a
 *   fresh bundled process (bench/lib/scale.ts); Platform must hold every distinct event once;
 * - bundle: the esbuild bundles of the two Lambdas, built as the stack builds them.
 * Rounds alternate the order of product and baselines; a ratio is the median of the per-round ratios.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { exportQuery, makeWindow } from '#windows/plan';
import { bundleWorker, measureBundle } from './lib/bundle.ts';
import { type Goal, goals, memoryFigures } from './lib/goals.ts';
import { findLambdaNode } from '../test/support/lambda-node.ts';
import { processCpuMs, runWorker, useWorkerNode } from './lib/proc.ts';
import { runScale } from './lib/scale.ts';
import { type ProfileSummary, topFrames } from './lib/profile.ts';
import { type BenchStack, startBenchStack } from './lib/stack.ts';

const H = 3_600_000;

interface Settings {
  readonly mapEvents: number;
  readonly mapRounds: number;
  readonly exportEvents: number;
  readonly exportRounds: number;
  readonly memorySmall: number;
  readonly memoryLarge: number;
}

const FULL: Settings = {
  mapEvents: 100_000,
  mapRounds: 5,
  exportEvents: 500_000,
  exportRounds: 3,
  memorySmall: 100_000,
  memoryLarge: 2_000_000,
};
const QUICK: Settings = {
  mapEvents: 20_000,
  mapRounds: 3,
  exportEvents: 60_000,
  exportRounds: 1,
  memorySmall: 10_000,
  memoryLarge: 100_000,
};

/** Mixpanel project ids of the three datasets (one emulator serves them all). */
const PROJECT = { export: '1001', small: '1002', large: '1003', scale: '1004' } as const;
const SEED = 6;
const SECTIONS = ['map', 'export', 'forward', 'memory', 'scale', 'bundle'] as const;
type Section = (typeof SECTIONS)[number];

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length === 0 ? Number.NaN : s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const round = (x: number, digits = 0): number => Math.round(x * 10 ** digits) / 10 ** digits;
const rate = (events: number, ms: number): number => (events * 1000) / ms;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean' },
      only: { type: 'string' },
      'cpu-prof': { type: 'boolean' },
      'local-node': { type: 'boolean' },
    },
    strict: true,
  });
  const quick = values.quick === true;
  const settings = quick ? QUICK : FULL;
  const only = new Set<Section>(values.only === undefined ? SECTIONS : (values.only.split(',') as Section[]));
  for (const s of only)
    if (!SECTIONS.includes(s)) throw new Error(`--only: unknown section "${s}" (one of ${SECTIONS.join(', ')})`);
  if (only.has('forward')) only.add('export'); // forward sends the windows the export rounds commit
  const scaleEvents = Number(process.env.BENCH_SCALE_EVENTS ?? 10_000_000);
  const profileDir =
    values['cpu-prof'] === true ? await mkdtemp(path.join(tmpdir(), 'mixpanel-aep-bench-prof-')) : undefined;
  const started = performance.now();
  const log = (line: string): void => void process.stderr.write(`${line}\n`);
  const workerNode =
    values['local-node'] === true
      ? { path: process.execPath, version: process.version, source: `the local Node ${process.version} (--local-node)` }
      : findLambdaNode();
  useWorkerNode(workerNode.path);
  log(`workers: Node ${workerNode.version}, ${workerNode.source}`);
  if (quick && only.delete('scale') && values.only !== undefined) log('scale: full run only (not with --quick)');

  // The window every dataset lies in: a whole UTC hour of processing time that ended over an hour ago.
  const from = Math.floor(Date.now() / H) * H - 2 * H;
  const to = from + H;
  const dataset = (count: number) => ({ seed: SEED, count, start: from, end: to });
  const result: Record<string, unknown> = {};
  const profiles: Record<string, ProfileSummary> = {};
  const table: string[] = [];

  if (only.has('map')) {
    log(`map: ${settings.mapEvents} events × ${settings.mapRounds} rounds`);
    const r = await runWorker<{
      events: number;
      mapped: number;
      inputBytes: number;
      outputChars: number;
      perRound: Array<{
        rooflineMs: number;
        plainMs: number;
        productMs: number;
        rooflineCpuMs: number;
        productCpuMs: number;
      }>;
      breakdown: { productMs: number; parseMs: number; serializeRecordsMs: number };
    }>('bench/workers/map.ts', [String(settings.mapEvents), String(settings.mapRounds), String(SEED)]);
    const product = median(r.perRound.map((x) => rate(r.events, x.productMs)));
    const roofline = median(r.perRound.map((x) => rate(r.events, x.rooflineMs)));
    const plain = median(r.perRound.map((x) => rate(r.events, x.plainMs)));
    // Roofline time / product time over the same lines in the same round (= product rate / roofline rate).
    const ratio = median(r.perRound.map((x) => x.rooflineMs / x.productMs));
    const plainRatio = median(r.perRound.map((x) => x.plainMs / x.productMs));
    // The same ratio in CPU time (every thread of the process): a diagnostic beside the clock's, not a goal.
    const cpuRatio = median(r.perRound.map((x) => x.rooflineCpuMs / x.productCpuMs));
    const b = r.breakdown;
    result.map = {
      eventsPerSec: round(product),
      rooflineEventsPerSec: round(roofline),
      ratio: round(ratio, 3),
      cpuRatio: round(cpuRatio, 3),
      // Against JSON.stringify(JSON.parse(line)) alone: the earlier roofline, without the `_id` and a smaller output.
      plainEventsPerSec: round(plain),
      plainRatio: round(plainRatio, 3),
      events: r.events,
      rounds: r.perRound.length,
      outputToInputBytes: round(r.outputChars / r.inputBytes, 2),
      // Shares of the product's time: parsing the line, and serialising the record it must output.
      productShares: {
        parse: round(b.parseMs / b.productMs, 3),
        stringifyRecord: round(b.serializeRecordsMs / b.productMs, 3),
        mapping: round(1 - (b.parseMs + b.serializeRecordsMs) / b.productMs, 3),
      },
    };
    table.push(
      row('map', 'product mapper(JSON.parse(line))', product),
      row('', 'roofline parse + _id + stringify(record)', roofline),
      row('', 'plain JSON.stringify(JSON.parse(line))', plain),
      `${''.padEnd(8)}ratio ${ratio.toFixed(3)} (roofline time / product time; ${cpuRatio.toFixed(3)} in CPU time), ${plainRatio.toFixed(3)} against plain; product time: parse ${Math.round((100 * b.parseMs) / b.productMs)}%, stringify of the record ${Math.round((100 * b.serializeRecordsMs) / b.productMs)}%, the rest ${Math.round(100 * (1 - (b.parseMs + b.serializeRecordsMs) / b.productMs))}%`,
    );
    if (profileDir !== undefined) {
      await runWorker('bench/workers/map.ts', [String(settings.mapEvents), '2', String(SEED)], {
        env: profiled(profileDir, 'map'),
      });
      profiles.map = await topFrames(path.join(profileDir, 'map.cpuprofile'));
    }
  }

  const needStack = only.has('export') || only.has('memory') || only.has('scale');
  let stack: BenchStack | undefined;
  try {
    if (needStack) {
      const projects = [
        ...(only.has('export') ? [{ projectId: PROJECT.export, dataset: dataset(settings.exportEvents) }] : []),
        ...(only.has('memory')
          ? [
              { projectId: PROJECT.small, dataset: dataset(settings.memorySmall) },
              { projectId: PROJECT.large, dataset: dataset(settings.memoryLarge) },
            ]
          : []),
        ...(only.has('scale') ? [{ projectId: PROJECT.scale, dataset: dataset(scaleEvents) }] : []),
      ];
      stack = await startBenchStack(projects);
    }
    if (only.has('export') && stack !== undefined) {
      Object.assign(
        result,
        await exportAndForward(stack, settings, from, to, only.has('forward'), profileDir, profiles, table, log),
      );
    }
    if (only.has('memory') && stack !== undefined) {
      // The worker runs as a bundle built like the Lambdas', on plain Node: what a function's memory looks like.
      // Export and forward are separate functions, so each runs in a fresh process of its own, as Lambda runs them.
      const bundleDir = await mkdtemp(path.join(tmpdir(), 'mixpanel-aep-bench-bundle-'));
      const worker = await bundleWorker('bench/workers/pipeline-memory.ts', bundleDir);
      type FunctionRun = {
        maxRssMb: number;
        peakHeapMb: number;
        ms: number;
        cpuMs: number;
        peaksMb: Record<string, number>;
      };
      type ExportRun = FunctionRun & { exported: number; manifestKeys: string[] };
      type ForwardRun = FunctionRun & { accepted: number; rejected: number; forwardFailures: number };
      // A project in steady state: its checkpoint knows the rate of its last window, so the export stages a window
      // expected to exceed one part in partitions (functions/staging/partition.ts), as it would in production.
      const memory = async (project: string, label: string, events: number) => {
        const seriesDir = process.env.BENCH_MEMORY_SERIES_DIR;
        const env = (role: string) => ({
          ...stack!.env(project),
          STAGING_PREFIX: prefix,
          BENCH_EVENTS_PER_MINUTE: String(events / 60),
          ...(seriesDir === undefined
            ? {}
            : { BENCH_MEMORY_SERIES: path.join(seriesDir, `memory-${label}-${role}.txt`) }),
        });
        const prefix = `bench-${Date.now()}-memory-${label}/`;
        log(`memory: ${label} window, export`);
        const window = [new Date(from).toISOString(), new Date(to).toISOString()];
        const exp = await runWorker<ExportRun>(worker, ['export', ...window], { plain: true, env: env('export') });
        log(`memory: ${label} window, forward`);
        const fwd = await runWorker<ForwardRun>(worker, ['forward', ...exp.manifestKeys], {
          plain: true,
          env: env('forward'),
        });
        return { export: exp, forward: fwd };
      };
      const small = await memory(PROJECT.small, 'small', settings.memorySmall);
      const large = await memory(PROJECT.large, 'large', settings.memoryLarge);
      await rm(bundleDir, { recursive: true, force: true });
      const perFunction = (role: 'export' | 'forward') => ({
        peakRssSmallMb: round(small[role].maxRssMb, 1),
        peakRssLargeMb: round(large[role].maxRssMb, 1),
        ratio: round(large[role].maxRssMb / small[role].maxRssMb, 3),
        peakHeapSmallMb: round(small[role].peakHeapMb, 1),
        peakHeapLargeMb: round(large[role].peakHeapMb, 1),
        cpuMs: { small: small[role].cpuMs, large: large[role].cpuMs },
        // Peaks sampled every 20 ms (RSS, V8 heap used/total, external = ArrayBuffers and the like).
        peaksMb: { small: small[role].peaksMb, large: large[role].peaksMb },
      });
      const exp = perFunction('export');
      const fwd = perFunction('forward');
      result.memory = {
        ...memoryFigures(exp, fwd),
        smallEvents: small.export.exported,
        largeEvents: large.export.exported,
        delivered: {
          small: small.forward.accepted + small.forward.rejected,
          large: large.forward.accepted + large.forward.rejected,
        },
        export: exp,
        forward: fwd,
      };
      const line = (role: 'export' | 'forward', f: typeof exp) =>
        `${role.padEnd(7)} peak RSS ${f.peakRssSmallMb.toFixed(1)} / ${f.peakRssLargeMb.toFixed(1)} MB (heap ` +
        `${f.peakHeapSmallMb.toFixed(0)} / ${f.peakHeapLargeMb.toFixed(0)} MB) in ` +
        `${(small[role].ms / 1000).toFixed(1)} / ${(large[role].ms / 1000).toFixed(1)} s, ratio ${f.ratio.toFixed(3)}`;
      table.push(
        `memory  ${small.export.exported} / ${large.export.exported} events, each function in a fresh process:`,
        `        ${line('export', exp)}`,
        `        ${line('forward', fwd)}`,
      );
    }
    if (only.has('scale') && stack !== undefined) {
      const concurrency = Number(process.env.BENCH_SCALE_CONCURRENCY ?? 2);
      const scale = await runScale({
        stack,
        projectId: PROJECT.scale,
        from,
        to,
        events: scaleEvents,
        concurrency,
        log,
      });
      result.scale = scale.result;
      table.push(...scale.table);
    }
  } finally {
    await stack?.close();
  }

  if (only.has('bundle')) {
    log('bundle: esbuild');
    const [exp, fwd] = [await measureBundle('export'), await measureBundle('forward')];
    result.bundle = {
      exportBytes: exp.bytes,
      forwardBytes: fwd.bytes,
      largestInputs: { export: exp.largest, forward: fwd.largest },
    };
    table.push(
      `bundle  export ${exp.bytes.toLocaleString('en-US')} B, forward ${fwd.bytes.toLocaleString('en-US')} B (index.mjs, minified)`,
    );
  }

  if (profileDir !== undefined) {
    result.profile = profiles;
    for (const [name, p] of Object.entries(profiles)) {
      table.push(
        `profile ${name}: busy ${p.busyMs} ms, idle ${p.idleMs} ms; top self time: ${p.top
          .slice(0, 5)
          .map((t) => `${t.frame} ${t.selfPct}%`)
          .join('; ')}`,
      );
    }
    await rm(profileDir, { recursive: true, force: true });
  }
  result.goals = goals(result);
  for (const [name, g] of Object.entries(result.goals as Record<string, Goal>)) {
    if (g.met !== null) table.push(`goal    ${name} ${g.figure} ${g.goal}: ${g.met ? 'met' : 'NOT MET'}`);
  }
  result.run = {
    mode: quick ? 'quick' : 'full',
    node: process.version,
    workerNode: workerNode.version,
    cpus: availableParallelism(),
    loadAverage1m: round(loadavg()[0] ?? 0, 2),
    seconds: round((performance.now() - started) / 1000, 1),
  };
  process.stdout.write(`${table.join('\n')}\n${JSON.stringify(result)}\n`);
}

function row(section: string, label: string, eventsPerSec: number): string {
  return `${section.padEnd(8)}${label.padEnd(46)}${Math.round(eventsPerSec).toLocaleString('en-US').padStart(10)} events/s`;
}

/** Environment of a profiling pass: the worker profiles its timed section into `dir/name.cpuprofile`. */
function profiled(dir: string, name: string): Record<string, string> {
  return { BENCH_CPU_PROFILE: path.join(dir, `${name}.cpuprofile`) };
}

interface ExportRun {
  readonly events: number;
  readonly ms: number;
  readonly cpuMs: number;
  readonly emulatorCpuMs?: number;
  readonly s3CpuMs?: number;
}

async function exportAndForward(
  stack: BenchStack,
  settings: Settings,
  from: number,
  to: number,
  forward: boolean,
  profileDir: string | undefined,
  profiles: Record<string, ProfileSummary>,
  table: string[],
  log: (line: string) => void,
): Promise<Record<string, unknown>> {
  const window = makeWindow(from, to, 'processing-time');
  const env = stack.env(PROJECT.export);
  // The query the product sends for this window (same settings as its environment), for the roofline and the peer.
  const query = exportQuery(
    window,
    { minutes: 60, settleMinutes: 0, lookbackDays: 5, maxWindowsPerRun: 24, dateZone: 'UTC' },
    Date.now(),
  );
  const url = new URL('/api/2.0/export', stack.mixpanelUrl);
  url.searchParams.set('project_id', PROJECT.export);
  url.searchParams.set('from_date', query.from_date);
  url.searchParams.set('to_date', query.to_date);
  url.searchParams.set('where', query.where!);
  const authorization = `Basic ${Buffer.from(`${stack.credentials.username}:${stack.credentials.secret}`).toString('base64')}`;
  const runId = Date.now();
  const prefix = (r: number | string): string => `bench-${runId}-export-${r}/`;
  const cpu = (): { emulator?: number; s3?: number } => ({
    emulator: processCpuMs(stack.pids.mixpanelEmulator!),
    s3: processCpuMs(stack.pids.s3rver!),
  });
  const measured = async <T extends { events: number; ms: number; cpuMs: number }>(
    run: () => Promise<T>,
  ): Promise<T & ExportRun> => {
    const before = cpu();
    const r = await run();
    const after = cpu();
    return {
      ...r,
      ...(before.emulator !== undefined && after.emulator !== undefined
        ? { emulatorCpuMs: after.emulator - before.emulator }
        : {}),
      ...(before.s3 !== undefined && after.s3 !== undefined ? { s3CpuMs: after.s3 - before.s3 } : {}),
    };
  };
  const contenders = {
    roofline: () =>
      measured(() => runWorker<ExportRun>('bench/workers/export-roofline.ts', [url.toString(), authorization])),
    product: (r: number) =>
      measured(() =>
        runWorker<ExportRun & { quarantined: number; manifestKeys: string[]; parts: number; bytes: number }>(
          'bench/workers/export-product.ts',
          [new Date(from).toISOString(), new Date(to).toISOString()],
          { env: { ...env, STAGING_PREFIX: prefix(r) } },
        ),
      ),
    peer: (r: number) =>
      measured(() =>
        runWorker<ExportRun & { equalWork: { ms: number; cpuMs: number } }>(
          'bench/workers/export-peer.ts',
          [
            stack.mixpanelUrl,
            stack.credentials.username,
            stack.credentials.secret,
            PROJECT.export,
            query.from_date,
            query.to_date,
            query.where!,
            path.join(tmpdir(), `mixpanel-aep-bench-peer-${runId}-${r}.ndjson`),
            stack.bucket,
            `bench-${runId}-peer-${r}/export.ndjson.gz`,
          ],
          { env: { AWS_ENDPOINT_URL_S3: stack.s3Url, AWS_REGION: 'us-east-1' } },
        ),
      ),
  };

  const rounds: Array<{
    roofline: ExportRun;
    product: ExportRun & { manifestKeys: string[]; quarantined: number };
    peer?: ExportRun & { equalWork: { ms: number; cpuMs: number } };
  }> = [];
  let peerError: string | undefined;
  for (let r = 0; r < settings.exportRounds; r++) {
    const order = (['roofline', 'product', 'peer'] as const).map((_, i, a) => a[(i + r) % a.length]!);
    const got: Partial<(typeof rounds)[number]> = {};
    for (const who of order) {
      log(`export round ${r + 1}/${settings.exportRounds}: ${who}`);
      if (who === 'roofline') got.roofline = await contenders.roofline();
      else if (who === 'product') got.product = await contenders.product(r);
      else if (peerError === undefined) {
        try {
          got.peer = await contenders.peer(r);
        } catch (error) {
          peerError = (error as Error).message.split('\n').slice(0, 3).join(' ');
        }
      }
    }
    rounds.push(got as (typeof rounds)[number]);
  }
  const productEvents = rounds[0]!.product.events + rounds[0]!.product.quarantined;
  const notes: string[] = [];
  for (const r of rounds) {
    if (r.roofline.events !== productEvents)
      notes.push(`roofline read ${r.roofline.events} lines, the product ${productEvents}`);
    if (r.peer !== undefined && r.peer.events !== productEvents)
      notes.push(`peer exported ${r.peer.events} lines, the product ${productEvents}`);
  }
  const product = median(rounds.map((r) => rate(r.product.events, r.product.ms)));
  const roofline = median(rounds.map((r) => rate(r.roofline.events, r.roofline.ms)));
  const peers = rounds.filter((r) => r.peer !== undefined);
  const peer = peers.length > 0 ? median(peers.map((r) => rate(r.peer!.events, r.peer!.ms))) : null;
  const peerEqual = peers.length > 0 ? median(peers.map((r) => rate(r.peer!.events, r.peer!.equalWork.ms))) : null;
  const ratio = median(
    rounds.map((r) => rate(r.product.events, r.product.ms) / rate(r.roofline.events, r.roofline.ms)),
  );
  const perKEvents = (x: (r: (typeof rounds)[number]) => number | undefined): number | null => {
    const xs = rounds.map(x).filter((v): v is number => v !== undefined);
    return xs.length === 0 ? null : round(median(xs) / (productEvents / 1000), 1);
  };
  const out: Record<string, unknown> = {
    export: {
      eventsPerSec: round(product),
      rooflineEventsPerSec: round(roofline),
      ratio: round(ratio, 3),
      peerEventsPerSec: peer === null ? null : round(peer),
      ...(peer === null ? { peerNullReason: peerError ?? 'not run' } : {}),
      peerRatio: peer === null ? null : round(product / peer, 3),
      // The peer's export, then gzip and upload of its file to the same s3rver: the product's work, timed as a whole.
      peerEqualWorkEventsPerSec: peerEqual === null ? null : round(peerEqual),
      peerEqualWorkRatio: peerEqual === null ? null : round(product / peerEqual, 3),
      events: productEvents,
      rounds: rounds.length,
      cpuMsPer1kEvents: {
        product: perKEvents((r) => r.product.cpuMs),
        roofline: perKEvents((r) => r.roofline.cpuMs),
        peer: perKEvents((r) => r.peer?.cpuMs),
        peerEqualWork: perKEvents((r) => r.peer?.equalWork.cpuMs),
        emulatorDuringProduct: perKEvents((r) => r.product.emulatorCpuMs),
        s3rverDuringProduct: perKEvents((r) => r.product.s3CpuMs),
      },
      ...(notes.length > 0 ? { notes } : {}),
    },
  };
  table.push(
    row('export', 'product client → check → gzip → s3rver', product),
    row('', 'roofline HTTP → gunzip → gzip → discard', roofline),
    peer === null
      ? `${''.padEnd(8)}peer mixpanel-import: not measured (${peerError ?? 'not run'})`
      : row('', 'peer mixpanel-import (same query)', peer),
    ...(peerEqual === null ? [] : [row('', 'peer + gzip + upload to s3rver (equal work)', peerEqual)]),
    `${''.padEnd(8)}ratio ${ratio.toFixed(3)} (product/roofline), ${peer === null ? 'n/a' : (product / peer).toFixed(3)} (product/peer), ${peerEqual === null ? 'n/a' : (product / peerEqual).toFixed(3)} (product/peer equal work)`,
  );
  let profiledManifest: string | undefined;
  if (profileDir !== undefined) {
    const p = await runWorker<{ manifestKeys: string[] }>(
      'bench/workers/export-product.ts',
      [new Date(from).toISOString(), new Date(to).toISOString()],
      {
        env: { ...env, STAGING_PREFIX: prefix('profile'), ...profiled(profileDir, 'export') },
      },
    );
    profiledManifest = p.manifestKeys[0];
    profiles.export = await topFrames(path.join(profileDir, 'export.cpuprofile'));
  }

  if (forward) {
    const runs: Array<{
      events: number;
      accepted: number;
      rejected: number;
      byReason: Record<string, number>;
      complete: boolean;
      requests: number;
      maxRequestBytes: number;
      ms: number;
      cpuMs: number;
      aepCpuMs?: number;
    }> = [];
    for (let r = 0; r < rounds.length; r++) {
      const manifestKey = rounds[r]!.product.manifestKeys[0];
      if (manifestKey === undefined) throw new Error('the export committed no window to forward');
      log(`forward round ${r + 1}/${rounds.length}`);
      const before = processCpuMs(stack.pids.aepEmulator!);
      const f = await runWorker<(typeof runs)[number]>('bench/workers/forward-product.ts', [manifestKey], {
        env: { ...env, STAGING_PREFIX: prefix(r) },
      });
      const after = processCpuMs(stack.pids.aepEmulator!);
      runs.push({ ...f, ...(before !== undefined && after !== undefined ? { aepCpuMs: after - before } : {}) });
      if (!f.complete) throw new Error(`forward round ${r + 1} did not complete: ${JSON.stringify(f)}`);
    }
    const state = await stack.aepState();
    const forwardRate = median(runs.map((f) => rate(f.events, f.ms)));
    const sentMax = Math.max(...runs.map((f) => f.maxRequestBytes));
    const forwarderCpu = round(median(runs.map((f) => f.cpuMs)) / (runs[0]!.events / 1000), 1);
    out.forward = {
      eventsPerSec: round(forwardRate),
      // The largest body the AEP emulator received (its own count), and the largest the forwarder sent (its fetch).
      maxRequestBytes: Math.max(state.stats.maxRequestBytes, sentMax),
      maxRequestBytesSent: sentMax,
      requests: runs[0]!.requests,
      events: runs[0]!.events,
      accepted: runs[0]!.accepted,
      rejected: runs[0]!.rejected,
      byReason: runs[0]!.byReason,
      rounds: runs.length,
      // The forwarder's CPU time (user + system) per 1,000 staged records read, mapped and sent: median of the rounds.
      cpuMsPer1k: forwarderCpu,
      cpuMsPer1kEvents: {
        forwarder: forwarderCpu,
        aepEmulator: runs.every((f) => f.aepCpuMs !== undefined)
          ? round(median(runs.map((f) => f.aepCpuMs!)) / (runs[0]!.events / 1000), 1)
          : null,
      },
    };
    table.push(
      row('forward', 's3rver → map → AEP emulator (DCS)', forwardRate),
      `${''.padEnd(8)}CPU ${forwarderCpu} ms per 1,000 records; largest request ${Math.max(state.stats.maxRequestBytes, sentMax).toLocaleString('en-US')} B; ${runs[0]!.requests} requests for ${runs[0]!.accepted} records (${runs[0]!.rejected} rejected: ${JSON.stringify(runs[0]!.byReason)})`,
    );
    if (profileDir !== undefined && profiledManifest !== undefined) {
      // The window the export's profiling pass committed: not forwarded yet.
      await runWorker('bench/workers/forward-product.ts', [profiledManifest], {
        env: { ...env, STAGING_PREFIX: prefix('profile'), ...profiled(profileDir, 'forward') },
      });
      profiles.forward = await topFrames(path.join(profileDir, 'forward.cpuprofile'));
    }
  }
  return out;
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
});
