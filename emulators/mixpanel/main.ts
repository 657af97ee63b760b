/**
 * Runs the Mixpanel export emulator as its own process, so benchmarks and the demo keep its CPU out of the measured
 * process: `tsx emulators/mixpanel/main.ts --config <options.json>`.
 *
 * The config file holds MixpanelEmulatorOptions as JSON (everything but `now`; the clock is the system clock). Once
 * listening, prints exactly one JSON line to stdout, `{"url":"http://127.0.0.1:PORT"}`. The control endpoints are on
 * (unless the config sets `"control": false`): `POST /__emulator/faults`, `GET /__emulator/requests`,
 * `POST /__emulator/events?project_id=…`, `POST /__emulator/raw-lines?project_id=…`. Stops on SIGINT / SIGTERM.
 */

import { parseMixpanelEmulatorOptions } from './options.ts';
import { startMixpanelEmulator } from './server.ts';

import { runEmulatorProcess } from '../process.ts';

runEmulatorProcess(
  'Mixpanel emulator',
  'emulators/mixpanel/main.ts',
  (raw) => startMixpanelEmulator({ control: true, ...parseMixpanelEmulatorOptions(raw) }),
  (e) => ({ url: e.url }),
);
