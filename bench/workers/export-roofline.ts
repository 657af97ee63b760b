/**
 * Export roofline in a fresh process: the least work any exporter must do with the same bytes — HTTP GET from the
 * Mixpanel emulator (gzip), gunzip, gzip again at the product's own level (GZIP_LEVEL), discard. No parsing, no
 * storage. argv: the full export URL, then the Authorization header value.
 */
import http from 'node:http';
import { createGunzip, createGzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { GZIP_LEVEL } from '#staging/gzip-object';
import { report, timed } from './common.ts';

const [url, authorization] = process.argv.slice(2) as [string, string];
let lines = 0;
let rawBytes = 0;
let gzBytes = 0;
const { ms, cpuMs } = await timed(async () => {
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = http.request(url, { headers: { authorization, 'accept-encoding': 'gzip' } }, resolve);
    req.on('error', reject);
    req.end();
  });
  if (res.statusCode !== 200 || res.headers['content-encoding'] !== 'gzip')
    throw new Error(`roofline: HTTP ${res.statusCode} ${String(res.headers['content-encoding'])}`);
  const gunzip = createGunzip();
  // Counting newlines (memchr) is the one extra step, so that the rate is in events like the others.
  gunzip.on('data', (chunk: Buffer) => {
    rawBytes += chunk.length;
    for (let i = chunk.indexOf(10); i !== -1; i = chunk.indexOf(10, i + 1)) lines++;
  });
  const gzip = createGzip({ level: GZIP_LEVEL });
  await pipeline(
    res,
    gunzip,
    gzip,
    new Writable({
      write(chunk: Buffer, _encoding, callback) {
        gzBytes += chunk.length;
        callback();
      },
    }),
  );
});
report({ events: lines, rawBytes, gzBytes, ms, cpuMs });
