/**
 * Flag parsing for the CLI: node's `util.parseArgs` in strict mode, with errors turned into a `UsageError` that
 * names the flag, so the command can print its usage.
 */
import { parseArgs } from 'node:util';
import { ConnectorError } from '#common/errors';

/** Bad command line: the CLI prints the message and the command's usage, and exits 2. */
export class UsageError extends ConnectorError {
  constructor(message: string) {
    super('input', message);
    this.name = 'UsageError';
  }
}

export type FlagSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;

export interface Parsed<S extends FlagSpec> {
  readonly flags: { [K in keyof S]?: S[K]['type'] extends 'string' ? string : boolean } & { help?: boolean };
  readonly positionals: string[];
}

/** Parses `argv` (without the command name) against `spec`; `--help`/`-h` is always accepted. */
export function parseFlags<S extends FlagSpec>(
  argv: readonly string[],
  spec: S,
  opts: { positionals?: number } = {},
): Parsed<S> {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: [...argv],
      options: { ...spec, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: (opts.positionals ?? 0) > 0,
    });
  } catch (error) {
    // parseArgs explains itself ("Unknown option '--x'", "Option '--from <value>' argument missing"); drop its hint
    // about "--" which does not apply here.
    throw new UsageError((error as Error).message.replace(/\. To specify a positional argument.*$/s, ''));
  }
  if (parsed.positionals.length > (opts.positionals ?? 0)) {
    throw new UsageError(
      `unexpected argument${parsed.positionals.length > 1 ? 's' : ''}: ${parsed.positionals.join(' ')}`,
    );
  }
  return { flags: parsed.values as Parsed<S>['flags'], positionals: parsed.positionals };
}

/** A positive integer flag, or the default. */
export function intFlag(
  value: string | undefined,
  name: string,
  fallback: number,
  min = 1,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value.replace(/[_,]/g, '')))
    throw new UsageError(`--${name} must be a whole number (got "${value}")`);
  const n = Number(value.replace(/[_,]/g, ''));
  if (n < min || n > max) throw new UsageError(`--${name} must be between ${min} and ${max} (got ${n})`);
  return n;
}

/** One of `choices`, or undefined. */
export function choiceFlag<T extends string>(
  value: string | undefined,
  name: string,
  choices: readonly T[],
): T | undefined {
  if (value === undefined) return undefined;
  if (!(choices as readonly string[]).includes(value))
    throw new UsageError(`--${name} must be ${choices.join(' or ')} (got "${value}")`);
  return value as T;
}
