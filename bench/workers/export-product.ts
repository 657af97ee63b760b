/**
 * Product export in a fresh process: Mixpanel emulator → MixpanelExportClient → line validation → gzip → multipart
 * upload into s3rver, through the export handler exactly as the Lambda runs it (configuration from the environment).
 * argv: from, to (ISO, a manual processing-time range). Prints events, parts, wall and CPU time.
 */
import { readConfig } from '#common/config';
import { createExportDeps } from '#export/deps';
import { createExportHandler } from '../../functions/export/handler.ts';
import { benchS3, peakRssMb, quiet, report, timed } from './common.ts';

const [from, to] = process.argv.slice(2);
const deps = createExportDeps(readConfig(process.env, 'export'), { s3: benchS3(), log: quiet });
const handler = createExportHandler(() => deps);
const { value: result, ms, cpuMs } = await timed(() => handler({ from, to, mode: 'processing-time' }));
const committed = result.windows.filter((w) => w.status === 'committed');
report({
  events: committed.reduce((n, w) => n + w.events, 0),
  quarantined: committed.reduce((n, w) => n + w.quarantined, 0),
  parts: committed.reduce((n, w) => n + w.parts, 0),
  bytes: committed.reduce((n, w) => n + w.bytes, 0),
  windows: committed.length,
  manifestKeys: committed.map((w) => w.manifestKey),
  ms,
  cpuMs,
  maxRssMb: peakRssMb(),
});
