/**
 * `classifyLineBytes` (the export's check on raw bytes) must give exactly the verdict of `classifyLine` (JSON.parse of
 * the decoded line) for every line: real export lines, hand-picked edge cases, and seeded random damage to real lines.
 */
import { describe, expect, it } from 'vitest';
import { generateDataset } from '#emulators/mixpanel/generator';
import { classifyLineBytes } from '#export/line-check';
import { classifyLine } from '#export/stage-window';
import { makeWindow } from '#windows/plan';

const H = 3_600_000;
const START = Date.parse('2026-11-20T00:00:00Z');
const WINDOWS = [
  makeWindow(START, START + H / 2, 'processing-time'),
  makeWindow(START + H / 2, START + H, 'processing-time'),
  makeWindow(START, START + H, 'event-time'),
];

/** Verdicts that differ between the two checks for `bytes` (the text is its UTF-8 decoding). */
function mismatches(bytes: Buffer): string[] {
  // The line sits inside a larger buffer, as it does in an export chunk.
  const padded = Buffer.concat([Buffer.from('x\n'), bytes, Buffer.from('\ny')]);
  const text = bytes.toString('utf8');
  return WINDOWS.flatMap((w) => {
    const want = classifyLine(text, w);
    const got = classifyLineBytes(padded, 2, 2 + bytes.length, w);
    return want === got
      ? []
      : [`${JSON.stringify(text).slice(0, 120)} (${w.mode} ${w.from}): ${String(want)} ≠ ${String(got)}`];
  });
}

const t = START + 5;
const EDGE_CASES = [
  '',
  ' ',
  '{}',
  '[]',
  'null',
  '1',
  '"x"',
  'true',
  '{"event":"a","properties":{}}',
  '{"event":"","properties":{}}',
  `{"event":"a","properties":{"mp_processing_time_ms":${t}}}`,
  ` {"event":"a","properties":{"mp_processing_time_ms":${t}}}\r `,
  `{"ev\\u0065nt":"a","properti\\u0065s":{"mp_processing_tim\\u0065_ms":${t}}}`,
  `{"event":"a","properties":{"mp_processing_time_ms":${t}},"properties":1}`,
  `{"event":"a","event":"","properties":{"mp_processing_time_ms":${t}}}`,
  `{"event":"","event":"a","properties":{"mp_processing_time_ms":${t}}}`,
  `{"event":"a","properties":{"mp_processing_time_ms":${t},"mp_processing_time_ms":"1"}}`,
  `{"event":"a","properties":{"x":{"mp_processing_time_ms":${t}}}}`,
  `{"event":"a","other":{"mp_processing_time_ms":${t}},"properties":{}}`,
  `{"event":"a","properties":{"mp_processing_time_ms":${t}.5e0}}`,
  `{"event":"a","properties":{"mp_processing_time_ms":1e400}}`,
  '{"event":"a","properties":{"mp_processing_time_ms":-0}}',
  `{"event":"\\u0000","properties":{"mp_processing_time_ms":${t}}}`,
  '[{"event":"a","properties":{}}]',
  '{"event":["a"],"properties":{}}',
  '{"event":"a","properties":[]}',
  '{"event":"a","properties":null}',
  '\ufeff{}',
  `{"event":"a","properties":{"mp_processing_time_ms":${t}}} x`,
  '{"event":"a" "properties":{}}',
  `{"event":"a","properties":{"mp_processing_time_ms":${t}}`,
  '{"a":1,}',
  '[1,]',
  '{"a":01}',
  '{"a":1.}',
  '{"a":.5}',
  '{"a":-}',
  '{"a":1e}',
  '{"a":"\\x"}',
  '{"a":"\\u12G4"}',
  '{"a":"\\u12"}',
  '{"a":tru}',
  '{"a":nul}',
  '{"a":"tab\there"}',
  '{"a":"é 🌸 \\ud83c"}',
  '{"é":1}',
  `${'['.repeat(3000)}${']'.repeat(3000)}`,
  `${'{"a":'.repeat(2000)}1${'}'.repeat(2000)}`,
  '{"a":[1,{"b":[true,false,null]}],"event":"e","properties":{}}',
];

describe('classifyLineBytes', () => {
  it('should give the verdict of classifyLine for real export lines and edge cases', () => {
    // Prepare
    const lines = [...generateDataset({ seed: 17, count: 1500, start: START, end: START + H })].map((e) =>
      JSON.stringify(e),
    );
    // Act
    const found = [...lines, ...EDGE_CASES].flatMap((line) => mismatches(Buffer.from(line)));
    // Assess
    expect(found).toEqual([]);
  });

  it('should give the verdict of classifyLine for damaged lines, malformed UTF-8 included', () => {
    // Prepare: seeded damage (insertions of JSON punctuation, deletions, replaced bytes)
    let seed = 20261122;
    const random = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
    const pieces = [
      '{',
      '}',
      '[',
      ']',
      ',',
      ':',
      '"',
      '\\',
      '\\u00',
      'e',
      '0',
      '-',
      '.',
      'E+',
      ' ',
      '\t',
      'true',
      'nul',
      '\u0001',
      'é',
      '🌸',
      '"event"',
      '"properties"',
      `${t}`,
    ];
    const damaged: Buffer[] = [];
    for (const event of generateDataset({ seed: 18, count: 1500, start: START, end: START + H })) {
      const line = JSON.stringify(event);
      for (let k = 0; k < 3; k++) {
        let text = line;
        const at = Math.floor(random() * text.length);
        const r = random();
        if (r < 0.4) text = text.slice(0, at) + pieces[Math.floor(random() * pieces.length)] + text.slice(at);
        else if (r < 0.7) text = text.slice(0, at) + text.slice(at + 1 + Math.floor(random() * 3));
        else text = text.slice(0, at) + pieces[Math.floor(random() * pieces.length)] + text.slice(at + 1);
        damaged.push(Buffer.from(text));
      }
      const bytes = Buffer.from(line);
      bytes[Math.floor(random() * bytes.length)] = 0x80 + Math.floor(random() * 0x80); // malformed UTF-8 somewhere
      damaged.push(bytes);
    }
    // Act
    const found = damaged.flatMap((bytes) => mismatches(bytes));
    // Assess
    expect(found).toEqual([]);
  });
});
