import { describe, expect, it } from 'vitest';
import { ConfigError, readConfig } from '#common/config';
import { LIMITS } from '#common/settings';
import { ConnectorConfigError, type ConnectorConfigInput, parseConnectorConfig } from '../../lib/config.ts';
import { twoProjectConfig } from './helpers.ts';

// The environment the stack writes for the file's first project and its AEP settings.
const { aep } = twoProjectConfig();
const exportEnv = { MIXPANEL_PROJECT_ID: '111', MIXPANEL_SECRET_ID: 'mixpanel/web', STAGING_BUCKET: 'my-staging' };
const aepIds = { AEP_DATASET_ID: aep.datasetId, AEP_SCHEMA_ID: aep.schemaId, AEP_TENANT_ID: aep.tenantId };
const forwardEnv = {
  STAGING_BUCKET: 'my-staging',
  AEP_SECRET_ID: 'aep/creds',
  AEP_INLET_URL: aep.inletUrl!,
  AEP_FLOW_ID: aep.flowId!,
  ...aepIds,
};

/** The deployment file's problems, each without its JSON path; [] when it is valid. */
function fileProblems(edit: (c: ConnectorConfigInput) => void): string[] {
  const input = twoProjectConfig();
  edit(input);
  try {
    parseConnectorConfig(input);
    return [];
  } catch (error) {
    if (!(error instanceof ConnectorConfigError)) throw error;
    return error.problems.map((p) => p.replace(/^[^:]+: /, ''));
  }
}

/** The environment's problems for `name`, each without the variable name and the echoed value; [] when valid. */
function envProblems(env: Record<string, string>, role: 'export' | 'forward', name: string): string[] {
  try {
    readConfig(env, role);
    return [];
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return error.problems
      .filter((p) => p.startsWith(`${name}: `))
      .flatMap((p) =>
        p
          .slice(`${name}: `.length)
          .replace(/ \(got .*\)$/, '')
          .split('; '),
      )
      .map((p) => p.replaceAll(`${name} `, ''));
  }
}

const WINDOW_SETTINGS = [
  ['minutes', 'WINDOW_MINUTES', LIMITS.windowMinutes, 7],
  ['settleMinutes', 'SETTLE_MINUTES', LIMITS.settleMinutes, undefined],
  ['lookbackDays', 'LOOKBACK_DAYS', LIMITS.lookbackDays, undefined],
  ['maxWindowsPerRun', 'MAX_WINDOWS_PER_RUN', LIMITS.maxWindowsPerRun, undefined],
  ['queriesPerHour', 'EXPORT_QUERIES_PER_HOUR', LIMITS.queriesPerHour, undefined],
  ['maxEventsPerExport', 'MAX_EVENTS_PER_EXPORT', LIMITS.maxEventsPerExport, undefined],
] as const;

describe('shared configuration rules', () => {
  it.each(WINDOW_SETTINGS)('should judge window.%s and %s alike at their bounds', (key, name, range, odd) => {
    const [min, max] = range;
    // A negative number cannot be written in the environment at all (it is not a whole number there).
    for (const value of [min, max, min - 1, max + 1, odd ?? max].filter((v) => v >= 0)) {
      // Act
      const inFile = fileProblems((c) => {
        c.projects[0]!.window = { minutes: key === 'minutes' ? value : 60, [key]: value };
      });
      const inEnv = envProblems({ ...exportEnv, [name]: String(value) }, 'export', name);

      // Assess
      expect(inFile, `${key}=${value}`).toEqual(inEnv);
      expect(inFile.length > 0, `${key}=${value}`).toBe(value < min || value > max || value === odd);
    }
  });

  type Edit = (c: ConnectorConfigInput, v: string) => void;
  it.each<[string, string, string, Edit]>([
    ['region', 'MIXPANEL_REGION', 'asia', (c, v) => ((c.projects[0] as { region?: string }).region = v)],
    ['sink', 'AEP_SINK', 'kafka', (c, v) => ((c.aep as { sink?: string }).sink = v)],
    ['sandbox', 'AEP_SANDBOX', 'Prod!', (c, v) => (c.aep.sandbox = v)],
    ['tenant', 'AEP_TENANT_ID', 'ac-me', (c, v) => (c.aep.tenantId = v)],
    ['inlet', 'AEP_INLET_URL', 'https://dcs.adobedc.net/x', (c, v) => (c.aep.inletUrl = v)],
    ['IMS URL', 'AEP_IMS_URL', 'ftp://ims', (c, v) => (c.aep.imsUrl = v)],
  ])('should refuse the same %s with the same words in both places', (_, name, value, edit) => {
    // Act
    const inFile = fileProblems((c) => edit(c, value));
    const role = name.startsWith('AEP_') ? 'forward' : 'export';
    const inEnv = envProblems({ ...(role === 'forward' ? forwardEnv : exportEnv), [name]: value }, role, name);

    // Assess
    expect(inFile).toHaveLength(1);
    expect(inFile).toEqual(inEnv);
  });

  it.each([0, 5, 100, -1, 100.5])(
    'should judge aep.batch.partialIngestionPercent and AEP_BATCH_PARTIAL_INGESTION_PERCENT alike at %s',
    (value) => {
      const [min, max] = LIMITS.batchPartialIngestionPercent;
      const name = 'AEP_BATCH_PARTIAL_INGESTION_PERCENT';

      // Act
      const inFile = fileProblems((c) => {
        c.aep.batch = { partialIngestionPercent: value };
      });
      const inEnv = value < 0 ? inFile : envProblems({ ...forwardEnv, [name]: String(value) }, 'forward', name);

      // Assess
      expect(inFile).toEqual(inEnv);
      expect(inFile.length > 0).toBe(value < min || value > max);
    },
  );

  it('should refuse diagnostics off with partial ingestion on, in both places', () => {
    // Act
    const inFile = fileProblems((c) => {
      c.aep.batch = { partialIngestionPercent: 5, errorDiagnostics: false };
    });
    const off = fileProblems((c) => {
      c.aep.batch = { partialIngestionPercent: 0, errorDiagnostics: false };
    });
    const inEnv = envProblems(
      { ...forwardEnv, AEP_BATCH_PARTIAL_INGESTION_PERCENT: '5', AEP_BATCH_ERROR_DIAGNOSTICS: 'false' },
      'forward',
      'AEP_BATCH_ERROR_DIAGNOSTICS=false with AEP_BATCH_PARTIAL_INGESTION_PERCENT > 0',
    );

    // Assess
    expect(inFile).toHaveLength(1);
    expect(inFile).toEqual(inEnv);
    expect(off).toEqual([]);
  });

  it('should apply the same defaults in the deployment file and the Lambda environment', () => {
    // Act
    const parsed = parseConnectorConfig(twoProjectConfig());
    const exported = readConfig(exportEnv, 'export');
    const forwarded = readConfig(forwardEnv, 'forward');

    // Assess
    const { minutes, mode, settleMinutes, lookbackDays } = exported.windows;
    expect(parsed.projects[0]!.window).toMatchObject({ minutes, mode, settleMinutes, lookbackDays });
    expect(parsed.projects[0]!.region).toBe(exported.mixpanel!.region);
    const { imsUrl, platformUrl, sandbox, sink, mapping } = forwarded.aep!;
    expect(parsed.aep).toMatchObject({ imsUrl, platformUrl, sandbox, sink });
    const { batchPartialIngestionPercent, batchErrorDiagnostics } = forwarded.aep!;
    expect(parsed.aep.batch).toEqual({
      partialIngestionPercent: batchPartialIngestionPercent,
      errorDiagnostics: batchErrorDiagnostics,
    });
    expect(parsed.mapping).toBe(mapping);
  });
});
