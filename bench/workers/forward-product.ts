/**
 * Product forward in a fresh process: the forward handler, as the Lambda runs it, for the SQS message of one committed
 * manifest — parts read back from s3rver, mapped to XDM, sent to the AEP emulator's DCS batch endpoint (streaming
 * sink). `fetch` is wrapped only to record the size of every request body. argv: the manifest key.
 */
import { readConfig } from '#common/config';
import { createForwardDeps } from '#forward/deps';
import type { WindowForwardResult } from '#forward/window';
import { sqsEventFor } from '#cli/pipeline';
import { createForwardHandler } from '../../functions/forward/handler.ts';
import { benchS3, peakRssMb, quiet, report, timed } from './common.ts';

const [manifestKey] = process.argv.slice(2) as [string];
const config = readConfig(process.env, 'forward');
let requests = 0;
let maxRequestBytes = 0;
const measuringFetch: typeof fetch = async (input, init) => {
  const body = init?.body;
  // The sink streams its bodies with their length in content-length.
  const length = Number(new Headers(init?.headers).get('content-length') ?? Number.NaN);
  const bytes =
    typeof body === 'string'
      ? Buffer.byteLength(body)
      : body instanceof Uint8Array
        ? body.byteLength
        : Number.isFinite(length)
          ? length
          : 0;
  if (String(input instanceof Request ? input.url : input).includes('/collection/')) {
    requests++;
    maxRequestBytes = Math.max(maxRequestBytes, bytes);
  }
  return fetch(input, init);
};
const deps = await createForwardDeps(config, { s3: benchS3(), log: quiet, fetch: measuringFetch });
const results: WindowForwardResult[] = [];
const handler = createForwardHandler(
  async () => deps,
  (r) => results.push(r),
);
const { value: reply, ms, cpuMs } = await timed(() => handler(sqsEventFor(config.staging.bucket, manifestKey)));
const r = results[0];
report({
  events: r?.events ?? 0,
  accepted: r?.accepted ?? 0,
  rejected: r?.rejected ?? 0,
  byReason: r?.byReason ?? {},
  complete: r?.complete ?? false,
  failures: reply.batchItemFailures.length,
  requests,
  maxRequestBytes,
  ms,
  cpuMs,
  maxRssMb: peakRssMb(),
});
