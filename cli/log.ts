/**
 * The `log` the CLI hands to the handlers. The Lambdas log JSON lines through Powertools; on a terminal that drowns
 * the progress output, so by default only warnings and errors are shown, as one readable line each, and `--verbose`
 * prints every record as the JSON line the Lambda would write. Both go to stderr, so `--json` output on stdout stays
 * parseable. Every line passes through the secret redactor.
 */
import type { Log } from '#common/log';
import { redact } from '#common/log';
import type { TextSink } from './io.ts';

type Level = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

export interface LoggedProblem {
  readonly level: 'WARN' | 'ERROR';
  readonly message: string;
  readonly error?: unknown;
}

export interface CliLog extends Log {
  /** Warnings and errors logged so far (the command explains the last error at the end). */
  readonly problems: LoggedProblem[];
}

/** A plain view of an error for a log line (message, name, code, causes), never its enumerable internals. */
export function errorJson(error: unknown, withStack: boolean): Record<string, unknown> {
  if (!(error instanceof Error)) return { message: String(error) };
  const e = error as Error & { code?: unknown };
  return {
    name: e.name,
    message: e.message,
    ...(typeof e.code === 'string' ? { code: e.code } : {}),
    ...(withStack && e.stack ? { stack: e.stack } : {}),
    ...(e.cause !== undefined ? { cause: errorJson(e.cause, false) } : {}),
  };
}

function merge(
  input: unknown,
  extra: readonly unknown[],
  withStack: boolean,
): { message: string; fields: Record<string, unknown> } {
  const fields: Record<string, unknown> = {};
  let message = '';
  if (typeof input === 'string') message = input;
  else if (input !== null && typeof input === 'object') {
    const { message: m, ...rest } = input as Record<string, unknown>;
    message = String(m ?? '');
    Object.assign(fields, rest);
  }
  for (const x of extra) {
    if (x instanceof Error) fields.error = x;
    else if (typeof x === 'string') fields.extra = x;
    else if (x !== null && typeof x === 'object') Object.assign(fields, x);
  }
  for (const [k, v] of Object.entries(fields)) if (v instanceof Error) fields[k] = errorJson(v, withStack);
  return { message, fields };
}

/** One short line for a human: the message and its fields as `key value`, errors by their message. */
function humanLine(message: string, fields: Record<string, unknown>): string {
  const parts = Object.entries(fields).map(([k, v]) => {
    const text =
      v !== null && typeof v === 'object' && 'message' in v
        ? String((v as { message: unknown }).message)
        : typeof v === 'string'
          ? v
          : JSON.stringify(v);
    return `${k} ${text}`;
  });
  const full = parts.length > 0 ? `${message} (${parts.join(', ')})` : message;
  return full.length > 400 ? `${full.slice(0, 400)}…` : full;
}

export function createCliLog(sink: TextSink, opts: { verbose: boolean; service?: string }): CliLog {
  const problems: LoggedProblem[] = [];
  const write = (level: Level, input: unknown, extra: unknown[]): void => {
    const firstError =
      extra.find((x) => x instanceof Error) ??
      (input as { error?: unknown } | undefined)?.error ??
      extra.map((x) => (x as { error?: unknown } | null)?.error).find((x) => x instanceof Error);
    const { message, fields } = merge(input, extra, opts.verbose);
    if (level === 'WARN' || level === 'ERROR')
      problems.push({ level, message, ...(firstError !== undefined ? { error: firstError } : {}) });
    if (opts.verbose) {
      const record = {
        level,
        message,
        timestamp: new Date().toISOString(),
        service: opts.service ?? 'mixpanel-aep-connector',
        ...fields,
      };
      sink.write(`${redact(JSON.stringify(record))}\n`);
    } else if (level === 'WARN' || level === 'ERROR') {
      sink.write(`${redact(`  ${level === 'WARN' ? 'warning' : 'error'}: ${humanLine(message, fields)}`)}\n`);
    }
  };
  return {
    problems,
    debug: (input: unknown, ...extra: unknown[]) => write('DEBUG', input, extra),
    info: (input: unknown, ...extra: unknown[]) => write('INFO', input, extra),
    warn: (input: unknown, ...extra: unknown[]) => write('WARN', input, extra),
    error: (input: unknown, ...extra: unknown[]) => write('ERROR', input, extra),
  };
}
