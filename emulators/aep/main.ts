/**
 * Runs the AEP emulator as a process: `tsx emulators/aep/main.ts --config <options.json>`.
 *
 * The config file holds AepEmulatorOptions as JSON. Once listening, prints one JSON line to stdout,
 * `{"url","imsTokenUrl","platformUrl"}`, and serves, besides Adobe's endpoints:
 * - `GET  /__emulator/state`          stats and accepted counts per dataset (accepted, unique, duplicates)
 * - `GET  /__emulator/accepted-ids`   `{"ids": [...]}` (optional `?datasetId=`)
 * - `POST /__emulator/faults`         queue one AepFault or promotion fault (JSON body)
 * - `POST /__emulator/expire-tokens`
 * - `POST /__emulator/settle`         Platform catches up: streaming slices and completed batches settle now
 * Stops on SIGINT / SIGTERM.
 */
import { startAepEmulator } from './server.ts';
import { parseAepEmulatorOptions } from './options.ts';

import { runEmulatorProcess } from '../process.ts';

runEmulatorProcess(
  'AEP emulator',
  'emulators/aep/main.ts',
  (raw) => startAepEmulator(parseAepEmulatorOptions(raw)),
  (e) => ({ url: e.url, imsTokenUrl: e.imsTokenUrl, platformUrl: e.platformUrl }),
);
