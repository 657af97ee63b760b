import { describe, expect, it } from 'vitest';
import { ConfigError, readConfig } from '#common/config';

const exportEnv = { MIXPANEL_PROJECT_ID: '123', MIXPANEL_SECRET_ID: 'mixpanel/sa', STAGING_BUCKET: 'my-staging' };
const forwardEnv = {
  STAGING_BUCKET: 'my-staging',
  AEP_SECRET_ID: 'aep/oauth',
  AEP_INLET_URL: 'https://dcs.adobedc.net/collection/abc123',
  AEP_FLOW_ID: 'f1e2d3c4-0000-4000-8000-000000000001',
  AEP_DATASET_ID: '64a1b2c3d4',
  AEP_SCHEMA_ID: 'https://ns.adobe.com/acme/schemas/0123abcd',
  AEP_TENANT_ID: '_acme',
};

describe('readConfig', () => {
  it('should apply the documented defaults for the export role', () => {
    const c = readConfig(exportEnv, 'export');
    expect(c.mixpanel).toMatchObject({
      projectId: '123',
      region: 'us',
      apiBaseUrl: 'https://data.mixpanel.com',
      projectTimezone: 'UTC',
      legacyLocalTime: false,
    });
    expect(c.windows).toMatchObject({ minutes: 60, mode: 'processing-time', settleMinutes: 30, lookbackDays: 5 });
    expect(c.staging).toEqual({ bucket: 'my-staging', prefix: '' });
  });

  it('should pick the residency host and honour the base URL override', () => {
    expect(readConfig({ ...exportEnv, MIXPANEL_REGION: 'in' }, 'export').mixpanel!.apiBaseUrl).toBe(
      'https://data-in.mixpanel.com',
    );
    expect(readConfig({ ...exportEnv, MIXPANEL_REGION: 'eu' }, 'export').mixpanel!.apiBaseUrl).toBe(
      'https://data-eu.mixpanel.com',
    );
    expect(
      readConfig({ ...exportEnv, MIXPANEL_API_BASE_URL: 'http://127.0.0.1:4010/' }, 'export').mixpanel!.apiBaseUrl,
    ).toBe('http://127.0.0.1:4010');
  });

  it('should name every bad or missing variable in one error', () => {
    // Prepare: four problems at once
    const env = {
      MIXPANEL_REGION: 'asia',
      WINDOW_MINUTES: '7',
      MIXPANEL_PROJECT_TIMEZONE: 'Mars/Olympus',
      MIXPANEL_SECRET_ID: 'x',
    };
    // Act
    const error = (() => {
      try {
        readConfig(env, 'export');
      } catch (e) {
        return e as ConfigError;
      }
      throw new Error('expected a ConfigError');
    })();
    // Assess
    expect(error).toBeInstanceOf(ConfigError);
    expect(error.problems.join('\n')).toMatch(/MIXPANEL_REGION: MIXPANEL_REGION must be us, eu or in/);
    expect(error.problems.join('\n')).toMatch(/WINDOW_MINUTES.*divide a day/);
    expect(error.problems.join('\n')).toMatch(/MIXPANEL_PROJECT_TIMEZONE must be an IANA time zone/);
    expect(error.problems.join('\n')).toMatch(/MIXPANEL_PROJECT_ID is required/);
    expect(error.problems.join('\n')).toMatch(/STAGING_BUCKET is required/);
    expect(error.message).toMatch(/5 problems/);
  });

  it('should refuse plain secrets in a deployed Lambda and never echo a secret value', () => {
    const env = {
      ...exportEnv,
      MIXPANEL_SECRET_ID: '',
      MIXPANEL_USERNAME: 'sa',
      MIXPANEL_SECRET: 'super-secret-value',
      AWS_LAMBDA_FUNCTION_NAME: 'fn',
    };
    expect(() => readConfig(env, 'export')).toThrow(/MIXPANEL_SECRET must not be set in a deployed Lambda/);
    try {
      readConfig({ ...env, MIXPANEL_REGION: 'nope' }, 'export');
    } catch (e) {
      expect((e as Error).message).not.toContain('super-secret-value');
    }
  });

  it('should accept local plain credentials outside Lambda', () => {
    const c = readConfig(
      { MIXPANEL_PROJECT_ID: '1', MIXPANEL_USERNAME: 'sa', MIXPANEL_SECRET: 's3cr3t', STAGING_BUCKET: 'b-1' },
      'export',
    );
    expect(c.mixpanel!.credentials).toEqual({ username: 'sa', secret: 's3cr3t' });
  });

  it('should read the forward role, strip the tenant underscore and require the inlet for streaming', () => {
    const c = readConfig(forwardEnv, 'forward');
    expect(c.aep).toMatchObject({
      sink: 'streaming',
      tenantId: 'acme',
      sandbox: 'prod',
      imsUrl: 'https://ims-na1.adobelogin.com/ims/token/v3',
      mapping: 'default',
    });
    const { AEP_INLET_URL: _, ...noInlet } = forwardEnv;
    expect(() => readConfig(noInlet, 'forward')).toThrow(/AEP_INLET_URL is required when AEP_SINK=streaming/);
    expect(readConfig({ ...noInlet, AEP_SINK: 'batch' }, 'forward').aep!.sink).toBe('batch');
  });

  it('should read AEP_PROFILE_ENABLED (default false) and the Profile send rate (default 1,500 records/s)', () => {
    // Act
    const off = readConfig(forwardEnv, 'forward').aep!;
    const on = readConfig(
      { ...forwardEnv, AEP_PROFILE_ENABLED: 'true', AEP_PROFILE_RECORDS_PER_SECOND: '700' },
      'forward',
    );
    const bad = (): unknown =>
      readConfig({ ...forwardEnv, AEP_PROFILE_ENABLED: 'maybe', AEP_PROFILE_RECORDS_PER_SECOND: '0' }, 'forward');

    // Assess
    expect(off).toMatchObject({ profileEnabled: false, profileRecordsPerSecond: 1500 });
    expect(on.aep).toMatchObject({ profileEnabled: true, profileRecordsPerSecond: 700 });
    expect(bad).toThrow(/AEP_PROFILE_ENABLED must be true or false/);
    expect(bad).toThrow(/AEP_PROFILE_RECORDS_PER_SECOND must be between 1 and 15000/);
  });

  it('should require the dataflow id for streaming, saying where to find it, and read the schema version', () => {
    // Prepare
    const { AEP_FLOW_ID: _, ...noFlow } = forwardEnv;

    // Act
    const missing = (): unknown => readConfig(noFlow, 'forward');
    const c = readConfig({ ...forwardEnv, AEP_SCHEMA_VERSION: '1.4' }, 'forward');

    // Assess
    expect(missing).toThrow(
      /AEP_FLOW_ID is required when AEP_SINK=streaming \(the id of the HTTP API dataflow[^)]*Sources > Dataflows/,
    );
    expect(missing).toThrow(/GET \/flows of the Flow Service API; `npm run cli -- provision` prints it/);
    expect(readConfig({ ...noFlow, AEP_SINK: 'batch' }, 'forward').aep!.sink).toBe('batch');
    expect(c.aep).toMatchObject({ flowId: forwardEnv.AEP_FLOW_ID, schemaVersion: '1.4' });
    expect(readConfig(forwardEnv, 'forward').aep!.schemaVersion).toBe('1.0');
  });

  it('should read the batch sink options, partial ingestion at 5% with diagnostics by default', () => {
    // Prepare
    const batchEnv = { ...forwardEnv, AEP_SINK: 'batch' };

    // Act
    const defaults = readConfig(batchEnv, 'forward').aep!;
    const set = readConfig(
      { ...batchEnv, AEP_BATCH_PARTIAL_INGESTION_PERCENT: '12.5', AEP_BATCH_ERROR_DIAGNOSTICS: 'true' },
      'forward',
    ).aep!;
    const off = readConfig(
      { ...batchEnv, AEP_BATCH_PARTIAL_INGESTION_PERCENT: '0', AEP_BATCH_ERROR_DIAGNOSTICS: 'false' },
      'forward',
    ).aep!;

    // Assess
    expect(defaults).toMatchObject({ batchPartialIngestionPercent: 5, batchErrorDiagnostics: true });
    expect(set).toMatchObject({ batchPartialIngestionPercent: 12.5, batchErrorDiagnostics: true });
    expect(off).toMatchObject({ batchPartialIngestionPercent: 0, batchErrorDiagnostics: false });
  });

  it('should refuse a partial ingestion percentage out of range, and diagnostics off with partial ingestion on', () => {
    // Act
    const bad = (env: Record<string, string>): unknown => readConfig({ ...forwardEnv, ...env }, 'forward');

    // Assess
    expect(() => bad({ AEP_BATCH_PARTIAL_INGESTION_PERCENT: '101' })).toThrow(
      /AEP_BATCH_PARTIAL_INGESTION_PERCENT must be a percentage between 0 and 100/,
    );
    expect(() => bad({ AEP_BATCH_PARTIAL_INGESTION_PERCENT: 'five' })).toThrow(
      /AEP_BATCH_PARTIAL_INGESTION_PERCENT must be a number/,
    );
    expect(() => bad({ AEP_BATCH_ERROR_DIAGNOSTICS: 'off' })).toThrow(
      /AEP_BATCH_ERROR_DIAGNOSTICS must be true or false/,
    );
    expect(() => bad({ AEP_BATCH_ERROR_DIAGNOSTICS: 'false' })).toThrow(
      /AEP_BATCH_ERROR_DIAGNOSTICS=false with AEP_BATCH_PARTIAL_INGESTION_PERCENT > 0: error diagnostics cannot be turned off/,
    );
  });

  it('should refuse an inlet URL that is not a collection URL and a schema id that is not a $id', () => {
    expect(() =>
      readConfig(
        { ...forwardEnv, AEP_INLET_URL: 'https://dcs.adobedc.net/other', AEP_SCHEMA_ID: 'acme.schema' },
        'forward',
      ),
    ).toThrow(/AEP_INLET_URL must be the streaming connection URL[\s\S]*AEP_SCHEMA_ID must be the schema \$id/);
  });
});
