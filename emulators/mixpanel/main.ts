/**
 * Runs the Mixpanel export emulator as its own process, so benchmarks and the demo keep its CPU out of the measured
 * process: `tsx emulators/mixpanel/main.ts --config <options.json>`.
 *
 * The config file holds MixpanelEmulatorOptions as JSON (everything but `now`; the clock is the system clock). Once
 * listening, prints exactly one JSON line to stdout, `{"url":"http://127.0.0.1:PORT"}`. The control endpoints are on
 * (unless the config sets `"control": false`): `POST /__emulator/faults`, `GET /__emulator/requests`,
 * `POST /__emulator/events?project_id=…`, `POST /__emulator/raw-lines?project_id=…`. Stops on SIGINT / SIGTERM.
 */

import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { parseMixpanelEmulatorOptions } from './options.ts';
import { startMixpanelEmulator } from './server.ts';

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: 'string' } }, strict: true });
  if (values.config === undefined) throw new Error('Usage: tsx emulators/mixpanel/main.ts --config <options.json>');
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(values.config, 'utf8'));
  } catch (error) {
    throw new Error(`Cannot read the Mixpanel emulator config ${values.config}: ${(error as Error).message}`, { cause: error });
  }
  const options = parseMixpanelEmulatorOptions(raw);
  const emulator = await startMixpanelEmulator({ control: true, ...options });
  process.stdout.write(`${JSON.stringify({ url: emulator.url })}\n`);

  const stop = (): void => {
    emulator.close().then(
      () => process.exit(0),
      (error: unknown) => {
        process.stderr.write(`Mixpanel emulator: close failed: ${(error as Error).message}\n`);
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
