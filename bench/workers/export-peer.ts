/**
 * Peer baseline in a fresh process: the npm package `mixpanel-import` exporting the same query from the same emulator,
 * unmodified. It has no host option (its export URL is hard-coded to https://data{,-eu,-in}.mixpanel.com) and makes
 * its requests with `got`, which calls Node's `https.request` at request time. So this process wraps `https.request`:
 * a request for a Mixpanel data host goes to the emulator over plain HTTP instead; nothing else changes.
 * It writes the export where it normally does (a local NDJSON file, its default destination), which is removed after.
 * argv: emulator origin, username, secret, project id, from_date, to_date, where, output file.
 */
import http from 'node:http';
import https from 'node:https';
import { createRequire } from 'node:module';
import { rm } from 'node:fs/promises';
import { report, timed } from './common.ts';

const [origin, acct, pass, project, start, end, whereClause, file] = process.argv.slice(2) as [
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

const {
  value: summary,
  ms,
  cpuMs,
} = await timed(() =>
  mixpanelImport({ acct, pass, project }, null, {
    recordType: 'export',
    region: 'US',
    start,
    end,
    whereClause,
    where: file,
    verbose: false,
    logs: false,
    showProgress: false,
  }),
);
await rm(file, { force: true });
report({ events: summary.success, failed: summary.failed, requests: summary.requests, redirected, ms, cpuMs });
