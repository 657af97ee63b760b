/**
 * The CLI without services: command dispatch and usage errors, `.env` handling, `schema`, `validate-mapping`, and the
 * explanation of connection failures.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { generateDataset } from '#emulators/mixpanel/generator';
import { UsageError } from '#cli/args';
import { loadEnv, parseDotEnv } from '#cli/env';
import { describeFailure, explainUnreachable } from '#cli/errors';
import { Buffered, table } from '#cli/io';
import { runCli } from '#cli/main';
import { identityLine } from '#cli/report';
import { DEFAULT_COMMERCE } from '#mapping/commerce';
import { type MappingConfig, parseMappingConfig, presetConfig } from '#mapping/config';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'cli-unit-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function cli(argv: string[], env: Record<string, string> = {}) {
  const io = { stdout: new Buffered(), stderr: new Buffered() };
  const code = await runCli(argv, env, io, { cwd: dir });
  return { code, stdout: io.stdout.text, stderr: io.stderr.text };
}

describe('command line', () => {
  it('should print the usage and exit 2 for an unknown command', async () => {
    const out = await cli(['synk']);
    expect(out.code).toBe(2);
    expect(out.stderr).toContain('error: unknown command "synk"');
    expect(out.stderr).toContain('Commands:');
  });

  it('should name a bad flag and print the command usage, exit 2', async () => {
    const out = await cli(['sync', '--frm', '2024-01-01']);
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(/error: Unknown option '--frm'/);
    expect(out.stderr).toContain('Usage: npm run cli -- sync');
  });

  it('should refuse --from without --to and --force without a range', async () => {
    expect((await cli(['sync', '--from', '2024-01-01T00:00:00Z'])).stderr).toContain('--from and --to go together');
    const forced = await cli(['sync', '--force']);
    expect(forced.code).toBe(2);
    expect(forced.stderr).toContain('--force needs --from and --to');
  });

  it('should report the accepted records without identity in the run summary, and nothing when there are none', () => {
    expect(identityLine({ accepted: 200, withoutIdentity: 50 })).toBe(
      '50 accepted record(s) (25.0 %) carry no identity: Real-Time Customer Profile cannot use them ' +
        "(set AEP_PROFILE_ENABLED=true or the mapping's requireIdentity to reject them as no-identity)",
    );
    expect(identityLine({ accepted: 200, withoutIdentity: 0 })).toBeUndefined();
  });

  it('should print the default preset with its commerce defaults for a mapping file (mapping-init)', async () => {
    const out = await cli(['mapping-init']);
    const adobe = await cli(['mapping-init', '--preset', 'adobe-source']);
    const wrong = await cli(['mapping-init', '--preset', 'nope']);

    expect(out.code).toBe(0);
    const printed = JSON.parse(out.stdout) as MappingConfig;
    expect(printed.commerce).toEqual(DEFAULT_COMMERCE);
    expect(parseMappingConfig(printed, 'printed')).toEqual(presetConfig('default'));
    expect(JSON.parse(adobe.stdout)).toEqual(presetConfig('adobe-source'));
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/--preset must be one of default, adobe-source/);
  });

  it.each(['demo', 'sync', 'forward', 'replay', 'schema', 'validate-mapping', 'mapping-init'])(
    'should print the help of %s and exit 0',
    async (command) => {
      const out = await cli([command, '--help']);
      expect(out.code).toBe(0);
      expect(out.stdout).toMatch(/^Usage: npm/);
      expect(out.stdout).toContain('-h, --help');
    },
  );

  it('should explain a window id that is not one', async () => {
    const out = await cli(['replay', '--window', 'yesterday']);
    expect(out.code).toBe(2);
    expect(out.stderr).toContain('"yesterday" is not a window id: expected {from}_{to} in compact UTC');
  });
});

describe('.env', () => {
  it('should read KEY=VALUE lines with comments, quotes and export, and let the environment win', async () => {
    // Prepare
    await writeFile(
      path.join(dir, '.env'),
      [
        '# Mixpanel',
        'export MIXPANEL_PROJECT_ID=123',
        'MIXPANEL_REGION = eu  # EU residency',
        'AEP_SANDBOX="dev-1"',
        "MAPPING='my mapping.json'",
        '',
        'STAGING_BUCKET=from-file',
      ].join('\n'),
    );
    // Act
    const env = await loadEnv({ STAGING_BUCKET: 'from-env' }, { cwd: dir });
    // Assess
    expect(env).toMatchObject({
      MIXPANEL_PROJECT_ID: '123',
      MIXPANEL_REGION: 'eu',
      AEP_SANDBOX: 'dev-1',
      MAPPING: 'my mapping.json',
      STAGING_BUCKET: 'from-env',
    });
  });

  it('should read multi-line quoted values and comments after a quoted value as Node does', () => {
    // Act
    const env = parseDotEnv(
      ['KEY="-----BEGIN-----', 'abc', '-----END-----"', "NAME='x' # a comment", 'LAST=1'].join('\n'),
    );
    // Assess
    expect(env).toEqual({ KEY: '-----BEGIN-----\nabc\n-----END-----', NAME: 'x', LAST: '1' });
    expect(() => parseDotEnv('A="open\nstill open\n"\nnot a line')).toThrow(/\.env line 4 is not KEY=VALUE/);
  });

  it('should name the line that is not KEY=VALUE, and a missing --env-file', async () => {
    expect(() => parseDotEnv('A=1\nthis is not\n')).toThrow(/\.env line 2 is not KEY=VALUE/);
    await expect(loadEnv({}, { envFile: path.join(dir, 'nope.env') })).rejects.toThrow(UsageError);
    // A missing default .env is fine.
    await expect(loadEnv({ A: '1' }, { cwd: dir })).resolves.toEqual({ A: '1' });
  });
});

describe('schema', () => {
  it('should print the field group JSON for the default mapping under _acme', async () => {
    const out = await cli(['schema'], { AEP_TENANT_ID: 'acme' });
    expect(out.code).toBe(0);
    const group = JSON.parse(out.stdout) as {
      'meta:intendedToExtend': string[];
      definitions: {
        mixpanel: {
          properties: Record<string, { properties: Record<string, { properties: Record<string, unknown> }> }>;
        };
      };
    };
    expect(group['meta:intendedToExtend']).toEqual(['https://ns.adobe.com/xdm/context/experienceevent']);
    const mixpanel = group.definitions.mixpanel.properties._acme!.properties.mixpanel!.properties;
    expect(Object.keys(mixpanel)).toEqual(
      expect.arrayContaining(['eventName', 'distinctId', 'insertId', 'time', 'properties']),
    );
    expect(out.stderr).toContain('Add these standard field groups');
    expect(out.stderr).toContain('https://ns.adobe.com/xdm/context/experienceevent-commerce');
    expect(out.stderr).toContain(
      'Identity namespaces to create: MixpanelDistinctId (primary, from properties.distinct_id), ' +
        'MixpanelDeviceId (from properties.$device_id), MixpanelUserId (from properties.$user_id)',
    );
  });

  it('should print the adobe-source fields for MAPPING=adobe-source, read from .env', async () => {
    await writeFile(path.join(dir, '.env'), 'AEP_TENANT_ID=_acme\nMAPPING=adobe-source\n');
    const out = await cli(['schema']);
    expect(out.code).toBe(0);
    expect(out.stdout).toContain('"_acme"');
    for (const field of ['distinct_id', 'event_name', 'insert_id', 'mp_processing_time_ms'])
      expect(out.stdout).toContain(`"${field}"`);
  });

  it('should name AEP_TENANT_ID when it is missing, and a mapping file that cannot be read', async () => {
    const missing = await cli(['schema']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('AEP_TENANT_ID is required to map events (the tenant id, e.g. acme');
    const badFile = await cli(['schema'], { AEP_TENANT_ID: 'acme', MAPPING: path.join(dir, 'missing.json') });
    expect(badFile.code).toBe(2);
    expect(badFile.stderr).toMatch(/cannot read .*missing\.json \(ENOENT\)/);
  });
});

describe('validate-mapping', () => {
  const good = [
    ...generateDataset({
      seed: 3,
      count: 4,
      start: Date.parse('2024-05-01T00:00:00Z'),
      end: Date.parse('2024-05-01T01:00:00Z'),
      duplicateFraction: 0,
    }),
  ].map((e) => JSON.stringify(e));

  it('should report each rejected line with its number and reason, and exit 1', async () => {
    // Prepare: line 2 is not JSON, line 4 has no time, line 6 repeats line 1
    const file = path.join(dir, 'events.jsonl');
    const lines = [
      good[0]!,
      '{"event": "Broken"',
      good[1]!,
      JSON.stringify({ event: 'Signed Up', properties: { distinct_id: 'u1' } }),
      good[2]!,
      good[0]!,
      '',
    ];
    await writeFile(file, lines.join('\n'));
    // Act
    const out = await cli(['validate-mapping', file, '--out', path.join(dir, 'xdm.jsonl')], {
      AEP_TENANT_ID: 'acme',
      MIXPANEL_PROJECT_ID: '42',
    });
    // Assess
    expect(out.code).toBe(1);
    expect(out.stdout).toContain('line 2: not-json: the line is not valid JSON');
    expect(out.stdout).toContain('line 4: missing-time: "properties.time" is missing');
    expect(out.stdout).toMatch(/read\s+6/);
    expect(out.stdout).toMatch(/mapped\s+4/);
    expect(out.stdout).toMatch(/rejected\s+2/);
    expect(out.stdout).toMatch(/duplicate _id\s+1/);
    expect(out.stdout).toContain('FAILED: 2 line(s) would be rejected');
    const written = (await readFile(path.join(dir, 'xdm.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { _id: string; _acme: { mixpanel: { projectId: string } } });
    expect(written).toHaveLength(4);
    expect(written[0]!._acme.mixpanel.projectId).toBe('42');
  });

  it('should exit 0 when every line maps, and report JSON with --json', async () => {
    const file = path.join(dir, 'ok.jsonl');
    await writeFile(file, `${good.join('\n')}\n`);
    const out = await cli(['validate-mapping', file, '--json'], { AEP_TENANT_ID: 'acme' });
    expect(out.code).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ lines: 4, mapped: 4, rejected: 0, duplicates: 0, rejections: [] });
  });

  it('should count lines without identity, and reject them as no-identity when the mapping or Profile requires one', async () => {
    // Prepare: line 2 has no distinct_id, $device_id or $user_id
    const file = path.join(dir, 'anonymous.jsonl');
    const anonymous = JSON.stringify({
      event: 'Invoice Paid',
      properties: { time: 1714521600, $insert_id: 'x1', amount: 9 },
    });
    await writeFile(file, `${[good[0]!, anonymous, good[1]!].join('\n')}\n`);
    const strict = path.join(dir, 'strict.json');
    await writeFile(strict, JSON.stringify({ preset: 'default', requireIdentity: true }));

    // Act
    const lenient = await cli(['validate-mapping', file, '--json'], { AEP_TENANT_ID: 'acme' });
    const profile = await cli(['validate-mapping', file, '--json'], { AEP_TENANT_ID: 'acme', MAPPING: strict });
    const enabled = await cli(['validate-mapping', file, '--json'], {
      AEP_TENANT_ID: 'acme',
      AEP_PROFILE_ENABLED: 'true',
    });

    // Assess
    expect(JSON.parse(enabled.stdout)).toMatchObject({ rejected: 1, byReason: { 'no-identity': 1 } });
    expect(lenient.code).toBe(0);
    expect(JSON.parse(lenient.stdout)).toMatchObject({ mapped: 3, rejected: 0, withoutIdentity: 1 });
    expect(profile.code).toBe(1);
    expect(JSON.parse(profile.stdout)).toMatchObject({
      mapped: 2,
      rejected: 1,
      withoutIdentity: 0,
      byReason: { 'no-identity': 1 },
      rejections: [{ line: 2, reason: 'no-identity' }],
    });
  });

  it('should say which file cannot be read', async () => {
    const out = await cli(['validate-mapping', path.join(dir, 'nope.jsonl')], { AEP_TENANT_ID: 'acme' });
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(/cannot read .*nope\.jsonl \(ENOENT\)/);
  });
});

describe('unreachable services', () => {
  it('should name the variable whose URL refused the connection', () => {
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:4010'), {
      code: 'ECONNREFUSED',
      address: '127.0.0.1',
      port: 4010,
    });
    const text = explainUnreachable(new Error('Mixpanel export failed after 5 attempt(s)', { cause: refused }), {
      MIXPANEL_API_BASE_URL: 'http://localhost:4010',
    });
    expect(text).toContain('cannot reach Mixpanel (Raw Event Export API) at http://localhost:4010 (ECONNREFUSED');
    expect(text).toContain('set by MIXPANEL_API_BASE_URL');
  });

  it('should explain a DNS failure of a default host by the variable that chose it', () => {
    const dns = new TypeError('fetch failed', {
      cause: Object.assign(new Error('getaddrinfo ENOTFOUND data-eu.mixpanel.com'), {
        code: 'ENOTFOUND',
        hostname: 'data-eu.mixpanel.com',
      }),
    });
    const text = explainUnreachable(dns, { MIXPANEL_REGION: 'eu' });
    expect(text).toContain(
      'cannot reach Mixpanel (Raw Event Export API) at https://data-eu.mixpanel.com (ENOTFOUND: host not found (DNS))',
    );
    expect(text).toContain('the default for MIXPANEL_REGION (MIXPANEL_REGION=eu)');
  });

  it('should recognise a bucket host of the regional S3 endpoint', () => {
    const dns = Object.assign(new Error('getaddrinfo ENOTFOUND my-bucket.s3.eu-west-1.amazonaws.com'), {
      code: 'ENOTFOUND',
      hostname: 'my-bucket.s3.eu-west-1.amazonaws.com',
    });
    const text = explainUnreachable(dns, { AWS_REGION: 'eu-west-1' });
    expect(text).toContain('cannot reach S3 at https://my-bucket.s3.eu-west-1.amazonaws.com (ENOTFOUND');
    expect(text).toContain(
      "the default for AWS_REGION (AWS_REGION=eu-west-1): check your network, proxy and firewall, that AWS_REGION is the bucket's region",
    );
  });

  it('should list every variable pointing at the same origin, and ignore errors that are not connection failures', () => {
    const refused = new AggregateError(
      [Object.assign(new Error('x'), { code: 'ECONNREFUSED', address: '::1', port: 8443 })],
      'fetch failed',
    );
    const env = {
      AEP_IMS_URL: 'http://localhost:8443/ims/token/v3',
      AEP_INLET_URL: 'http://localhost:8443/collection/abc',
      AEP_PLATFORM_URL: 'https://platform.adobe.io',
    };
    expect(explainUnreachable(refused, env)).toContain('set by AEP_IMS_URL, AEP_INLET_URL');
    expect(explainUnreachable(new Error('Mixpanel answered 400'), env)).toBeUndefined();
  });
});

describe('failures', () => {
  it("should add what to do to the AWS SDK's missing region and credentials errors", () => {
    expect(describeFailure(new Error('Region is missing'), {})).toEqual({
      code: 1,
      text: 'error: Region is missing\n  Set AWS_REGION to the region of the staging bucket (or a region in your AWS profile).',
    });
    expect(describeFailure(new Error('Could not load credentials from any providers'), {}).text).toContain(
      'AWS_PROFILE',
    );
  });
});

describe('table', () => {
  it('should align numbers right and text left, and set the total apart', () => {
    const text = table(
      [
        ['window', 'events'],
        ['a', '1,000'],
        ['total', '12'],
      ],
      { total: true, indent: '' },
    );
    expect(text.split('\n')).toEqual([
      'window  events',
      '──────  ──────',
      'a        1,000',
      '──────  ──────',
      'total       12',
    ]);
  });
});
