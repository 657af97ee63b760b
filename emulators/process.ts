/**
 * Runs an emulator as a process of its own (benchmarks and demos keep its CPU out of the measured process):
 * `--config <options.json>` in, one JSON line with its addresses out once listening, a clean stop on SIGINT/SIGTERM.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';

export interface RunnableEmulator {
  close(): Promise<void>;
}

export function runEmulatorProcess<T extends RunnableEmulator>(
  name: string,
  script: string,
  start: (rawConfig: unknown) => Promise<T>,
  announce: (emulator: T) => Record<string, string>,
): void {
  const main = async (): Promise<void> => {
    const { values } = parseArgs({ options: { config: { type: 'string' } }, strict: true });
    if (values.config === undefined) throw new Error(`Usage: tsx ${script} --config <options.json>`);
    let raw: unknown;
    try {
      raw = JSON.parse(await readFile(values.config, 'utf8'));
    } catch (error) {
      throw new Error(`Cannot read the ${name} config ${values.config}: ${(error as Error).message}`, { cause: error });
    }
    const emulator = await start(raw);
    process.stdout.write(`${JSON.stringify(announce(emulator))}\n`);
    const stop = (): void => {
      emulator.close().then(
        () => process.exit(0),
        (error: unknown) => {
          process.stderr.write(`${name}: close failed: ${(error as Error).message}\n`);
          process.exit(1);
        },
      );
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  };
  main().catch((error: unknown) => {
    process.stderr.write(`${(error as Error).message}\n`);
    process.exit(2);
  });
}
