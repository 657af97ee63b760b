/**
 * Map benchmark in a fresh process: the product's `mapper(JSON.parse(line))` (its output already holds the record as
 * JSON text, `out.json`) against the roofline `JSON.stringify(JSON.parse(line))` over the same seeded export lines.
 * Rounds alternate which one goes first; each round times both over every line. argv: events, rounds, seed.
 */
import { generateDataset } from '#emulators/mixpanel/generator';
import { presetConfig } from '#mapping/config';
import { compileMapper } from '#mapping/mapper';
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
const mapper = compileMapper(presetConfig('default'), {
  projectId: '3141592',
  tenant: 'acme',
  projectTimezone: 'UTC',
  legacyLocalTime: false,
});

let sink = 0;
let outputChars = 0;
function roofline(): number {
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

// Warm-up: both paths reach their optimised code before anything is timed.
roofline();
product();
const perRound: Array<{ rooflineMs: number; productMs: number }> = [];
// The profiling pass (BENCH_CPU_PROFILE) records product rounds only.
if (process.env.BENCH_CPU_PROFILE !== undefined) {
  await timed(async () => {
    for (let r = 0; r < rounds; r++) product();
  });
}
for (let r = 0; r < (process.env.BENCH_CPU_PROFILE === undefined ? rounds : 0); r++) {
  if (r % 2 === 0) {
    const rooflineMs = roofline();
    perRound.push({ rooflineMs, productMs: product() });
  } else {
    const productMs = product();
    perRound.push({ rooflineMs: roofline(), productMs });
  }
}
// Where the product's time goes, on the first 20,000 lines: JSON.parse alone, and JSON.stringify of the records the
// mapper builds (output it must produce whatever it does before). Diagnostic: not part of the ratio.
const sample = lines.slice(0, 20_000);
const records = sample.map((line) => mapper(JSON.parse(line))).flatMap((out) => (out.ok ? [out.record] : []));
let parseMs = Number.POSITIVE_INFINITY;
let serializeMs = Number.POSITIVE_INFINITY;
let sampleProductMs = Number.POSITIVE_INFINITY;
for (let r = 0; r < 3; r++) {
  let t0 = performance.now();
  for (const line of sample) sink += JSON.parse(line) === null ? 1 : 0;
  parseMs = Math.min(parseMs, performance.now() - t0);
  t0 = performance.now();
  for (const record of records) sink += JSON.stringify(record).length;
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
