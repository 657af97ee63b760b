import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import {
  BATCH_MAX_CONCURRENCY,
  loadConnectorConfig,
  parseConnectorConfig,
  scheduleIntervalMinutes,
} from '../../lib/config.ts';
import { problemsOf, twoProjectConfig } from './helpers.ts';

const EXAMPLE = fileURLToPath(new URL('../../connector.config.example.json', import.meta.url));

describe('connector config', () => {
  const dirs: string[] = [];
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('should accept the committed example (what a fresh clone synthesises)', () => {
    // Act
    const config = loadConnectorConfig(EXAMPLE);

    // Assess
    expect(config.projects).toHaveLength(1);
    expect(config.aep.sink).toBe('streaming');
    expect(config.staging.removalPolicy).toBe('retain');
  });

  it('should fill the documented defaults', () => {
    // Act
    const config = parseConnectorConfig(twoProjectConfig());

    // Assess
    expect(config.stackName).toBe('MixpanelAepConnector');
    expect(config.metricsNamespace).toBe('MixpanelAepConnector');
    expect(config.staging).toEqual({ prefix: '', removalPolicy: 'retain' });
    expect(config.projects[0]).toMatchObject({
      region: 'us',
      legacyLocalTime: false,
      enabled: true,
      window: { minutes: 60, mode: 'processing-time', settleMinutes: 30, lookbackDays: 5 },
    });
    expect(config.aep).toMatchObject({
      sink: 'streaming',
      sandbox: 'prod',
      maxConcurrency: 2,
      verifyEveryMinutes: 5,
      imsUrl: 'https://ims-na1.adobelogin.com/ims/token/v3',
      platformUrl: 'https://platform.adobe.io',
    });
    expect(config.alarms).toMatchObject({ maxRejectionRate: 0.05, missedWindows: 3 });
    expect(config.retention).toEqual({ stagingDays: 30, quarantineDays: 90, rejectedDays: 90, accessLogsDays: 365 });
    expect(config.mapping).toBe('default');
  });

  it('should list every problem of an invalid config at once, each with its path', () => {
    // Prepare
    const input = {
      stackName: '1bad',
      projects: [
        {
          id: 'abc',
          timezone: 'Mars/Olympus',
          secret: {},
          schedule: { expression: 'rate(2 hour)' },
          window: { minutes: 7, lookbackDays: 90 },
        },
        {
          id: 42,
          timezone: 'UTC',
          secret: { name: 'a', arn: 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:b' },
          schedule: { expression: 'cron(0 * * * ? *)' },
        },
        { id: '42', timezone: 'UTC', secret: { create: true }, schedule: { expression: 'every hour' } },
      ],
      aep: { secret: { name: 'aep' }, sink: 'streaming', datasetId: 'ds', schemaId: 'acme.schema', tenantId: 'acme' },
      alarms: { email: 'not-an-email', maxRejectionRate: 2 },
      logRetentionDays: 10,
      surprise: true,
    };

    // Act
    const problems = problemsOf(() => parseConnectorConfig(input));

    // Assess
    expect(problems).toEqual(
      expect.arrayContaining([
        'stackName: must start with a letter and hold only letters, digits and -',
        'projects[0].id: must be the numeric Mixpanel project id',
        'projects[0].timezone: must be an IANA time zone such as UTC or America/Los_Angeles',
        'projects[0].secret: give exactly one of "name", "arn" or "create": true',
        'projects[0].schedule.expression: write "rate(1 hour)" for one and "rate(2 hours)" for more',
        'projects[0].window.minutes: must divide a day (e.g. 15, 30, 60, 120, 1440)',
        expect.stringMatching(/^projects\[0\]\.window\.lookbackDays: /),
        'projects[1].secret: give exactly one of "name", "arn" or "create": true',
        'projects[1].schedule.intervalMinutes: is required with a cron expression (how often it fires, for the missed-window alarm)',
        expect.stringMatching(/^projects\[2\]\.schedule\.expression: must be "rate\(/),
        'projects[2].id: duplicates projects[1].id (42)',
        'aep.schemaId: must be the schema $id https://ns.adobe.com/{tenant}/schemas/{id}',
        'aep.inletUrl: is required with aep.sink "streaming" (the streaming connection URL)',
        'aep.flowId: is required with aep.sink "streaming" (the HTTP API dataflow id: Platform UI, Sources > Dataflows; ' +
          'GET /flows of the Flow Service API; `npm run cli -- provision` prints it)',
        expect.stringMatching(/^alarms\.email: /),
        expect.stringMatching(/^alarms\.maxRejectionRate: /),
        expect.stringMatching(/^logRetentionDays: must be one of 1, 3, 5/),
        'surprise: unknown setting',
      ]),
    );
    expect(problems).toHaveLength(18);
  });

  it('should reject a batch sink with windows AEP would see too many batches for', () => {
    // Prepare
    const input = twoProjectConfig();
    input.aep.sink = 'batch';
    input.projects[0]!.window = { minutes: 15 };

    // Act
    const problems = problemsOf(() => parseConnectorConfig(input));

    // Assess
    expect(problems).toEqual([
      expect.stringMatching(/^projects\[0\]\.window\.minutes: must be at least 20 with aep\.sink "batch"/),
    ]);
  });

  it('should hold the batch sink to BATCH_MAX_CONCURRENCY forwarders (Platform ingests 20 GB/h of batches)', () => {
    // Prepare
    const withBatch = (maxConcurrency: number) => {
      const input = twoProjectConfig();
      input.aep.sink = 'batch';
      (input.aep as { maxConcurrency?: number }).maxConcurrency = maxConcurrency;
      return input;
    };

    // Act
    const problems = problemsOf(() => parseConnectorConfig(withBatch(BATCH_MAX_CONCURRENCY + 1)));
    const accepted = parseConnectorConfig(withBatch(BATCH_MAX_CONCURRENCY));

    // Assess
    expect(problems).toEqual([expect.stringMatching(/^aep\.maxConcurrency: must be at most 2 with aep\.sink "batch"/)]);
    expect(accepted.aep.maxConcurrency).toBe(BATCH_MAX_CONCURRENCY);
  });

  it('should take aep.verifyEveryMinutes from 5 to 60 (a verify round lasts at most 4 minutes)', () => {
    // Prepare
    const withEvery = (n: number) => {
      const input = twoProjectConfig();
      (input.aep as { verifyEveryMinutes?: number }).verifyEveryMinutes = n;
      return input;
    };

    // Act
    const one = parseConnectorConfig(withEvery(5)).aep.verifyEveryMinutes;
    const sixty = parseConnectorConfig(withEvery(60)).aep.verifyEveryMinutes;
    const tooOften = problemsOf(() => parseConnectorConfig(withEvery(4)));
    const tooRare = problemsOf(() => parseConnectorConfig(withEvery(61)));

    // Assess
    expect([one, sixty]).toEqual([5, 60]);
    expect(tooOften).toEqual(['aep.verifyEveryMinutes: must be between 5 and 60']);
    expect(tooRare).toEqual(['aep.verifyEveryMinutes: must be between 5 and 60']);
  });

  it('should refuse a missed-window alarm longer than CloudWatch can evaluate', () => {
    // Prepare: 10 intervals of 30 minutes is 5 h, fine; 60 intervals of 30 minutes is 30 h > 24 h for sub-hour periods.
    const input = twoProjectConfig();
    input.projects[0]!.schedule = { expression: 'rate(30 minutes)' };
    input.projects[0]!.window = { minutes: 30 };
    input.alarms = { missedWindows: 60 };

    // Act
    const problems = problemsOf(() => parseConnectorConfig(input));

    // Assess
    expect(problems).toEqual([
      expect.stringMatching(/^alarms\.missedWindows: 60 intervals of 30 min \(projects\[0\]\) exceed/),
    ]);
  });

  it('should read a schedule interval from rate expressions and require it for cron', () => {
    expect(scheduleIntervalMinutes({ expression: 'rate(1 hour)' })).toBe(60);
    expect(scheduleIntervalMinutes({ expression: 'rate(15 minutes)' })).toBe(15);
    expect(scheduleIntervalMinutes({ expression: 'rate(2 days)' })).toBe(2880);
    expect(scheduleIntervalMinutes({ expression: 'cron(0 3 * * ? *)' })).toBeUndefined();
    expect(scheduleIntervalMinutes({ expression: 'cron(0 3 * * ? *)', intervalMinutes: 1440 })).toBe(1440);
  });

  it('should resolve a mapping file against the config file and report a missing one', () => {
    // Prepare
    const dir = mkdtempSync(join(tmpdir(), 'connector-config-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'my-mapping.json'), '{}');
    writeFileSync(join(dir, 'ok.json'), JSON.stringify({ ...twoProjectConfig(), mapping: './my-mapping.json' }));
    writeFileSync(join(dir, 'missing.json'), JSON.stringify({ ...twoProjectConfig(), mapping: 'nope.json' }));
    writeFileSync(join(dir, 'broken.json'), '{ "projects": [');

    // Act
    const ok = loadConnectorConfig(join(dir, 'ok.json'));
    const missing = problemsOf(() => loadConnectorConfig(join(dir, 'missing.json')));
    const broken = problemsOf(() => loadConnectorConfig(join(dir, 'broken.json')));

    // Assess
    expect(ok.mapping).toBe(join(dir, 'my-mapping.json'));
    expect(missing).toEqual([`mapping: file nope.json not found (resolved against ${dir})`]);
    expect(broken).toEqual([expect.stringMatching(/^\(file\): cannot be read as JSON/)]);
  });
});
