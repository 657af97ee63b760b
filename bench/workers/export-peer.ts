/**
 * Peer baseline in a fresh process: the npm package `mixpanel-import` exporting the same query from the same emulator,
 * unmodified. It has no host option (its export URL is hard-coded to https://data{,-eu,-in}.mixpanel.com) and makes
 * its requests with `got`, which calls Node's `https.request` at request time. So this process wraps `https.request`:
 * a request for a Mixpanel data host goes to the emulator over plain HTTP instead; nothing else changes.
 * It writes the export where it normally does (a local NDJSON file, its default destination), which is removed after.
 * Then, in the same timed section, what a user of it must add to stage the window as the product does: gzip the file
 * (the product's level) and upload it to the same S3 server (`@aws-sdk/lib-storage`, multipart, its defaults). The
 * peer's figure is the export alone; its equal-work figure is the export, gzip and upload as a whole.
 * argv: emulator origin, username, secret, project id, from_date, to_date, where, output file, bucket, object key
 * (S3 endpoint from AWS_ENDPOINT_URL_S3, as for the product's workers).
 */
import http from 'node:http';
import https from 'node:https';
import { createRequire } from 'node:module';
import { createReadStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { createGzip } from 'node:zlib';
import { Upload } from '@aws-sdk/lib-storage';
import { GZIP_LEVEL } from '#staging/gzip-object';
import { benchS3, report, timed } from './common.ts';

const [origin, acct, pass, project, start, end, whereClause, file, bucket, key] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
  string,
  string,
  string,
  string,
  string,
];
const MIXPANEL_DATA_HOSTS = new Set(['data.mixpanel.com', 'data-eu.mixpanel.com', 'data-in.mixpanel.com']);
const target = new URL(origin);
const agent = new http.Agent({ keepAlive: true });
let redirected = 0;

type RequestFn = typeof https.request;
const original: RequestFn = https.request;
const intercept = ((...args: unknown[]) => {
  const [first, second, third] = args;
  const url = first instanceof URL ? first : typeof first === 'string' ? new URL(first) : undefined;
  if (url !== undefined && MIXPANEL_DATA_HOSTS.has(url.hostname)) {
    redirected++;
    const to = new URL(url.pathname + url.search, target);
    const options = typeof second === 'object' && second !== null ? { ...(second as http.RequestOptions) } : {};
    // The TLS agent and options of the original request do not apply to the plain HTTP emulator.
    options.agent = agent;
    delete (options as { protocol?: unknown }).protocol;
    const callback = typeof second === 'function' ? second : third;
    return http.request(to, options, callback as (res: http.IncomingMessage) => void);
  }
  return (original as (...a: unknown[]) => http.ClientRequest)(...args);
}) as RequestFn;
https.request = intercept;

const require = createRequire(import.meta.url);
const mixpanelImport = require('mixpanel-import') as (
  creds: Record<string, unknown>,
  data: unknown,
  opts: Record<string, unknown>,
) => Promise<Record<string, unknown>>;

const s3 = benchS3();
let exported: { ms: number; cpuMs: number } | undefined;
const {
  value: summary,
  ms,
  cpuMs,
} = await timed(async () => {
  const cpu = process.cpuUsage();
  const t0 = performance.now();
  const done = await mixpanelImport({ acct, pass, project }, null, {
    recordType: 'export',
    region: 'US',
    start,
    end,
    whereClause,
    where: file,
    verbose: false,
    logs: false,
    showProgress: false,
  });
  const used = process.cpuUsage(cpu);
  exported = { ms: performance.now() - t0, cpuMs: (used.user + used.system) / 1000 };
  await new Upload({
    client: s3,
    params: { Bucket: bucket, Key: key, Body: createReadStream(file).pipe(createGzip({ level: GZIP_LEVEL })) },
  }).done();
  return done;
});
await rm(file, { force: true });
report({
  events: summary.success,
  failed: summary.failed,
  requests: summary.requests,
  redirected,
  // The plain peer: its export alone.
  ms: exported!.ms,
  cpuMs: exported!.cpuMs,
  // Export + gzip + upload, timed as a whole.
  equalWork: { ms, cpuMs },
});
