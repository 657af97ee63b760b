import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const MAIN = fileURLToPath(new URL('../../emulators/aep/main.ts', import.meta.url));
const ORG = 'ORG1@AdobeOrg';
const SCHEMA = 'https://ns.adobe.com/acme/schemas/0123456789abcdef';
const CONFIG = {
  clients: [{ clientId: 'connector', clientSecret: 's3cret', orgId: ORG }],
  tenant: 'acme',
  datasets: [{ id: 'ds-events', schemaId: SCHEMA }],
  connections: [{ id: 'inlet-1', authenticated: false }],
  flows: [{ id: 'flow-1', connectionId: 'inlet-1', datasetId: 'ds-events' }],
  keep: 'ids',
};

let dir: string;
let child: ChildProcess | undefined;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aep-emulator-'));
});

afterEach(async () => {
  if (child !== undefined && child.exitCode === null) {
    const exited = new Promise((resolve) => child?.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
  child = undefined;
  await rm(dir, { recursive: true, force: true });
});

/** Starts `tsx emulators/aep/main.ts --config <file>` and resolves with its stdout's first line, parsed. */
async function startProcess(config: unknown): Promise<{ url: string; imsTokenUrl: string; platformUrl: string }> {
  const file = join(dir, 'aep.json');
  await writeFile(file, JSON.stringify(config));
  child = spawn(process.execPath, ['--import', 'tsx', MAIN, '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  const { stdout, stderr } = child;
  if (stdout === null || stderr === null) throw new Error('no stdio');
  let errors = '';
  stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: stdout }).once('line', resolve);
    child?.once('exit', (code) =>
      reject(new Error(`emulator exited with ${code} before printing its URLs: ${errors}`)),
    );
  });
  return JSON.parse(line) as { url: string; imsTokenUrl: string; platformUrl: string };
}

function message(id: string): unknown {
  const schemaRef = { id: SCHEMA, contentType: 'application/vnd.adobe.xed-full+json;version=1.0' };
  return {
    header: { schemaRef, imsOrgId: ORG, datasetId: 'ds-events', flowId: 'flow-1', source: { name: 'test' } },
    body: { xdmMeta: { schemaRef }, xdmEntity: { _id: id, timestamp: '2024-05-17T22:05:48Z', _acme: { n: 1 } } },
  };
}

describe('AEP emulator as a process', () => {
  it('should print its URLs once listening and report accepted ids and duplicates at /__emulator/state', async () => {
    // Prepare
    const urls = await startProcess(CONFIG);
    const post = (ids: string[]) =>
      fetch(`${urls.url}/collection/batch/inlet-1`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-sandbox-name': 'prod' },
        body: JSON.stringify({ messages: ids.map(message) }),
      });

    // Act
    await post(['a', 'b']);
    await post(['b', 'c']);
    const state = (await (await fetch(`${urls.url}/__emulator/state`)).json()) as {
      stats: { requests: number; messagesAccepted: number };
      accepted: Record<string, { accepted: number; unique: number; duplicates: number }>;
      acceptedTotal: number;
      duplicatesTotal: number;
    };
    const ids = (await (await fetch(`${urls.url}/__emulator/accepted-ids?datasetId=ds-events`)).json()) as {
      ids: string[];
    };

    // Assess
    expect(urls).toEqual({
      url: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
      imsTokenUrl: `${urls.url}/ims/token/v3`,
      platformUrl: urls.url,
    });
    expect(state.stats).toMatchObject({ requests: 2, messagesAccepted: 4 });
    expect(state.accepted).toEqual({ 'ds-events': { accepted: 4, unique: 3, duplicates: 1 } });
    expect(state.duplicatesTotal).toBe(1);
    expect(ids.ids).toEqual(['a', 'b', 'b', 'c']);
  });

  it('should take faults over HTTP for out-of-process tests', async () => {
    // Prepare
    const urls = await startProcess(CONFIG);
    const queued = await fetch(`${urls.url}/__emulator/faults`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ kind: 'status', target: 'dcs', status: 503, retryAfterSeconds: 1 }),
    });

    // Act
    const res = await fetch(`${urls.url}/collection/batch/inlet-1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-sandbox-name': 'prod' },
      body: JSON.stringify({ messages: [message('a')] }),
    });

    // Assess
    expect(queued.status).toBe(204);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('1');
  });

  it('should exit with a message naming the bad option when the config is invalid', async () => {
    // Prepare
    const config = { ...CONFIG, clients: [{ clientId: 'connector', clientSecret: 's3cret', orgId: 'not-an-org' }] };

    // Act
    const outcome = await startProcess(config).then(
      () => undefined,
      (error: Error) => error.message,
    );

    // Assess
    expect(outcome).toMatch(/^emulator exited with 2 before printing its URLs: Invalid AEP emulator options/);
    expect(outcome).toContain('clients[0].orgId');
  });
});
