/**
 * Runs the AEP emulator as a process: `tsx emulators/aep/main.ts --config <options.json>`.
 *
 * The config file holds AepEmulatorOptions as JSON. Once listening, prints one JSON line to stdout,
 * `{"url","imsTokenUrl","platformUrl"}`, and serves, besides Adobe's endpoints:
 * - `GET  /__emulator/state`          stats and accepted counts per dataset (accepted, unique, duplicates)
 * - `GET  /__emulator/accepted-ids`   `{"ids": [...]}` (optional `?datasetId=`)
 * - `POST /__emulator/faults`         queue one AepFault (JSON body)
 * - `POST /__emulator/expire-tokens`
 * Stops on SIGINT / SIGTERM.
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { startAepEmulator } from './server.ts';
import { parseAepEmulatorOptions } from './options.ts';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: 'string' } }, strict: true });
  if (values.config === undefined) throw new Error('Usage: tsx emulators/aep/main.ts --config <options.json>');
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(values.config, 'utf8'));
  } catch (error) {
    throw new Error(`Cannot read the emulator config ${values.config}: ${(error as Error).message}`, { cause: error });
  }
  const emulator = await startAepEmulator(parseAepEmulatorOptions(raw));
  process.stdout.write(`${JSON.stringify({ url: emulator.url, imsTokenUrl: emulator.imsTokenUrl, platformUrl: emulator.platformUrl })}\n`);

  const stop = (): void => {
    emulator.close().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`AEP emulator: close failed: ${(error as Error).message}\n`);
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`${(error as Error).message}\n`);
  process.exit(2);
});
