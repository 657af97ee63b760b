/**
 * What every CLI command gets and returns: argv, an environment, and two text sinks; an exit code back.
 * Commands never touch `process` themselves, so tests call them directly with a captured output.
 */

/** A text sink (process.stdout or a test buffer). */
export interface TextSink {
  write(text: string): unknown;
}

export interface CliIo {
  readonly stdout: TextSink;
  readonly stderr: TextSink;
}

/** Hooks for tests: a clock, a sleep that does not wait, a working directory for `.env`. */
export interface CliContext {
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  /** Where `.env` is looked for (default: the process's working directory). */
  readonly cwd?: string;
}

export type Command = (
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
  io: CliIo,
  ctx?: CliContext,
) => Promise<number>;

/** Exit codes: 0 success, 1 the run failed (or found problems), 2 bad usage or configuration. */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/** Collects written text (tests, and commands that render before deciding where output goes). */
export class Buffered implements TextSink {
  text = '';
  write(text: string): boolean {
    this.text += text;
    return true;
  }
}

export function line(sink: TextSink, text = ''): void {
  sink.write(`${text}\n`);
}

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

/** 50000 → "50,000". */
export function count(n: number): string {
  return integer.format(n);
}

/** 1234 → "1.2 s", 83 → "83 ms", 125_000 → "2 min 5 s". */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const m = Math.floor(ms / 60_000);
  return `${m} min ${Math.round((ms - m * 60_000) / 1000)} s`;
}

/** Events per second over `ms`, as an integer with separators ("—" when nothing was timed). */
export function rate(events: number, ms: number): string {
  return ms > 0 ? count((events * 1000) / ms) : '—';
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/**
 * A plain-text table: the first row is the header; columns whose cells are numbers (after separators) align right.
 * The last row is set apart when `total` is true.
 */
export function table(rows: readonly (readonly string[])[], opts: { total?: boolean; indent?: string } = {}): string {
  const widths: number[] = [];
  for (const row of rows) {
    for (const [i, cell] of row.entries()) widths[i] = Math.max(widths[i] ?? 0, cell.length);
  }
  const numeric = widths.map((_, i) =>
    rows.slice(1).every((r) => /^[-+]?[\d,.]+( ?[%a-zA-Z]+)?$|^—$/.test(r[i] ?? '')),
  );
  const indent = opts.indent ?? '  ';
  const render = (row: readonly string[]): string =>
    indent +
    row
      .map((cell, i) => (numeric[i] ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const rule = indent + widths.map((w) => '─'.repeat(w)).join('  ');
  const out = [render(rows[0] ?? []), rule];
  const body = rows.slice(1);
  body.forEach((row, i) => {
    if (opts.total === true && i === body.length - 1) out.push(rule);
    out.push(render(row));
  });
  return out.join('\n');
}
