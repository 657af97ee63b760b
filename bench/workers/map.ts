/**
 * Map benchmark in a fresh process: the product's `mapper(JSON.parse(line))` (its output already holds the record as
 * JSON text, `out.json`) against two baselines over the same seeded export lines:
 * - the roofline: the work the contract makes unavoidable per line — `JSON.parse` of the line, the `_id` of its dedupe
 *   tuple (`eventId`, the product's own function), `JSON.stringify` of the record the mapper produced for it
 *   (mapped once before anything is timed);
 * - the plain baseline `JSON.stringify(JSON.parse(line))` (the previous roofline, kept for comparison).
 * Rounds rotate which one goes first; each round times all three over every line. argv: events, rounds, seed.
 */
import { generateDataset } from '#emulators/mixpanel/generator';
import { presetConfig } from '#mapping/config';
import { eventId } from '#mapping/id';
import { compileMapper, type XdmRecord } from '#mapping/mapper';
import { mixpanelTimeMs } from '#mapping/event-time';
import { report, timed } from './common.ts';

const [count = 50_000, rounds = 5, seed = 6] = process.argv.slice(2).map(Number);
const H = 3_600_000;
const start = Math.floor(Date.now() / H) * H - 3 * H;
const lines: string[] = [];
let inputBytes = 0;
for (const event of generateDataset({ seed, count, start, end: start + H })) {
  const line = JSON.stringify(event);
  inputBytes += Buffer.byteLength(line);
  lines.push(line);
}
const PROJECT_ID = '3141592';
const mapper = compileMapper(presetConfig('default'), {
  projectId: PROJECT_ID,
  tenant: 'acme',
  projectTimezone: 'UTC',
  legacyLocalTime: false,
});

// The records the product maps each line to (undefined for a line it rejects), built before anything is timed: as
// parsed copies of the records' JSON text, equal to the mapper's records key for key. Holding the mapper's own records
// would make V8 see every object its allocation sites create survive, and allocate them directly in the old
// generation from then on (allocation-site pretenuring): the product would then be timed with ~1.9 KB of old
// generation per event and the major collections that follow, which the deployed forwarder (it keeps no records)
// never has.
const records: Array<XdmRecord | undefined> = lines.map((line) => {
  const out = mapper(JSON.parse(line));
  return out.ok ? (JSON.parse(out.json) as XdmRecord) : undefined;
});

let sink = 0;
let outputChars = 0;
/** The contract's unavoidable work on one line; a line the product rejects costs the parse alone. */
function roofline(): number {
  const t0 = performance.now();
  for (let i = 0; i < lines.length; i++) {
    const event = JSON.parse(lines[i]!) as { event: string; properties: Record<string, unknown> };
    const record = records[i];
    if (record === undefined) continue;
    const props = event.properties;
    sink += eventId(PROJECT_ID, event, event.event, props, mixpanelTimeMs(props.time as number)).length;
    sink += JSON.stringify(record).length;
  }
  return performance.now() - t0;
}
function plain(): number {
  const t0 = performance.now();
  for (let i = 0; i < lines.length; i++) sink += JSON.stringify(JSON.parse(lines[i]!)).length;
  return performance.now() - t0;
}
let mapped = 0;
function product(): number {
  const t0 = performance.now();
  let chars = 0;
  let ok = 0;
  for (let i = 0; i < lines.length; i++) {
    const out = mapper(JSON.parse(lines[i]!));
    if (out.ok) {
      chars += out.json.length;
      ok++;
    }
  }
  const ms = performance.now() - t0;
  outputChars = chars;
  mapped = ok;
  sink += chars;
  return ms;
}

// Warm-up: every path reaches its optimised code before anything is timed.
roofline();
plain();
product();
const perRound: Array<{
  rooflineMs: number;
  plainMs: number;
  productMs: number;
  rooflineCpuMs: number;
  productCpuMs: number;
}> = [];
/** CPU time of this process so far (user + system, every thread: GC helpers included), ms. */
const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
// The profiling pass (BENCH_CPU_PROFILE) records product rounds only.
if (process.env.BENCH_CPU_PROFILE !== undefined) {
  await timed(async () => {
    for (let r = 0; r < rounds; r++) product();
  });
}
const contenders = { roofline, plain, product } as const;
const names = Object.keys(contenders) as Array<keyof typeof contenders>;
for (let r = 0; r < (process.env.BENCH_CPU_PROFILE === undefined ? rounds : 0); r++) {
  const ms = { roofline: 0, plain: 0, product: 0 };
  const cpu = { roofline: 0, plain: 0, product: 0 };
  for (let i = 0; i < names.length; i++) {
    const who = names[(i + r) % names.length]!;
    const c0 = cpuMs();
    ms[who] = contenders[who]();
    cpu[who] = cpuMs() - c0;
  }
  perRound.push({
    rooflineMs: ms.roofline,
    plainMs: ms.plain,
    productMs: ms.product,
    rooflineCpuMs: cpu.roofline,
    productCpuMs: cpu.product,
  });
}
// Where the product's time goes, on the first 20,000 lines: JSON.parse alone, and JSON.stringify of the records the
// mapper builds (output it must produce whatever it does before). Diagnostic: not part of the ratio.
const sample = lines.slice(0, 20_000);
const sampleRecords = records.slice(0, sample.length).filter((r) => r !== undefined);
let parseMs = Number.POSITIVE_INFINITY;
let serializeMs = Number.POSITIVE_INFINITY;
let sampleProductMs = Number.POSITIVE_INFINITY;
for (let r = 0; r < 3; r++) {
  let t0 = performance.now();
  for (const line of sample) sink += JSON.parse(line) === null ? 1 : 0;
  parseMs = Math.min(parseMs, performance.now() - t0);
  t0 = performance.now();
  for (const record of sampleRecords) sink += JSON.stringify(record).length;
  serializeMs = Math.min(serializeMs, performance.now() - t0);
  t0 = performance.now();
  for (const line of sample) sink += mapper(JSON.parse(line)).ok ? 1 : 0;
  sampleProductMs = Math.min(sampleProductMs, performance.now() - t0);
}
report({
  events: lines.length,
  mapped,
  inputBytes,
  outputChars,
  perRound,
  breakdown: { events: sample.length, productMs: sampleProductMs, parseMs, serializeRecordsMs: serializeMs },
  sink: sink % 10,
});
