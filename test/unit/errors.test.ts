/**
 * The error family: every exported error class of the product is a ConnectorError of the intended kind, and the CLI
 * chooses its exit code and advice from the kind (never from the class name).
 */
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '#cli/args';
import { describeFailure } from '#cli/errors';
import { EXIT_FAILED, EXIT_USAGE } from '#cli/io';
import { ConfigError } from '#common/config';
import { ConnectorError, type ErrorKind, errorKind, kindFromCause } from '#common/errors';
import { RetriesExhaustedError } from '#common/retry';
import { SecretError } from '#common/secrets';
import { AepHttpError, AepNetworkError, PlatformConfigurationError } from '#aep/errors';
import { BatchBodyNotReplayableError, BatchFileTooLargeError } from '#aep/batch';
import { ProvisionConflictError } from '#aep/provision/provision';
import { ImsError } from '#aep/ims';
import { type SendResult, StreamingDeliveryError } from '#aep/streaming';
import { BadExportEventError } from '#export/events';
import { WindowExportError } from '#export/run';
import { WindowDeadlineError } from '#export/stage-window';
import { FanOutError } from '#forward/fan-out';
import { LeaseHeldError } from '#forward/lease';
import { PartIntegrityError } from '#forward/part-reader';
import { ManifestMissingError, WindowForwardError } from '#forward/window';
import { MappingConfigError } from '#mapping/config';
import { QueryBudgetExhaustedError } from '#mixpanel/budget';
import { IncompleteExportError, MixpanelRequestError, MixpanelUnavailableError } from '#mixpanel/client';
import { StagingSpaceError } from '#staging/gzip-object';
import { ManifestError } from '#staging/manifest';
import { WindowRangeError } from '#windows/plan';
import { ResendRefusedError } from '#verify/resend';
import { WindowNotForwardedError } from '#verify/verify-window';
import { ConnectorConfigError } from '../../lib/config.ts';

const transientCause = new RetriesExhaustedError('GET x', 5, new Error('503'), 'retry budget of 5 attempts used up');
const noResult: SendResult = {
  accepted: [],
  rejected: [],
  unsent: ['a'],
  ambiguous: [],
  aepIds: [],
  retried: 0,
  requests: 1,
  maxRequestBytes: 0,
};
const reset = Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' });
const aepHttp = (status: number): AepHttpError =>
  new AepHttpError({ what: 'DCS request', service: 'dcs', status, adobeMessage: 'no', hint: 'Check the dataset id.' });

/** One instance of every exported error class, with the kind it must have. */
const CASES: ReadonlyArray<readonly [abstract new (...args: never[]) => Error, () => Error, ErrorKind]> = [
  [ConfigError, () => new ConfigError(['STAGING_BUCKET is required']), 'config'],
  [MappingConfigError, () => new MappingConfigError('mapping.json', ['fields[0]: unknown path']), 'config'],
  [ConnectorConfigError, () => new ConnectorConfigError('connector.json', ['projects: required']), 'config'],
  [UsageError, () => new UsageError('--from and --to go together'), 'input'],
  [BadExportEventError, () => new BadExportEventError('The export event must be a JSON object.'), 'input'],
  [WindowRangeError, () => new WindowRangeError('"from" must be before "to"'), 'input'],
  [MixpanelUnavailableError, () => new MixpanelUnavailableError('Mixpanel answered 503', 503), 'transient'],
  [IncompleteExportError, () => new IncompleteExportError('terminated early', 12), 'transient'],
  [QueryBudgetExhaustedError, () => new QueryBudgetExhaustedError(60, 0), 'transient'],
  [WindowDeadlineError, () => new WindowDeadlineError('deadline near'), 'transient'],
  [RetriesExhaustedError, () => transientCause, 'transient'],
  [AepNetworkError, () => new AepNetworkError('DCS request', reset), 'transient'],
  [LeaseHeldError, () => new LeaseHeldError('w1', '2024-01-01T00:00:00Z'), 'transient'],
  [FanOutError, () => new FanOutError('2 partition messages were not queued'), 'transient'],
  [MixpanelRequestError, () => new MixpanelRequestError('plan does not include the API', 402), 'permanent'],
  [SecretError, () => new SecretError('The secret is not valid JSON'), 'permanent'],
  [ManifestError, () => new ManifestError('manifest is not JSON'), 'permanent'],
  [StagingSpaceError, () => new StagingSpaceError('/tmp/x/part-0.gz', new Error('ENOSPC')), 'permanent'],
  [ManifestMissingError, () => new ManifestMissingError('staging/x/manifest.json'), 'permanent'],
  [PartIntegrityError, () => new PartIntegrityError('sha256 differs'), 'permanent'],
  [BatchFileTooLargeError, () => new BatchFileTooLargeError('part-00000.json', 256), 'permanent'],
  [BatchBodyNotReplayableError, () => new BatchBodyNotReplayableError('part-00000.json', reset), 'permanent'],
  [AepHttpError, () => aepHttp(400), 'permanent'],
  [ImsError, () => new ImsError('IMS answered without an access_token'), 'permanent'],
  [WindowExportError, () => new WindowExportError('w1', 'window w1 was not exported', new Error('x')), 'permanent'],
  [WindowForwardError, () => new WindowForwardError('w1', 'window w1 was not forwarded', new Error('x')), 'permanent'],
  [WindowNotForwardedError, () => new WindowNotForwardedError('delivery/w1/run=r/window.json'), 'input'],
  [ResendRefusedError, () => new ResendRefusedError('batch b1 is success, not failed'), 'input'],
  [StreamingDeliveryError, () => new StreamingDeliveryError('stopped', noResult, new Error('x')), 'permanent'],
  [ProvisionConflictError, () => new ProvisionConflictError('field group exists with other types'), 'permanent'],
  [
    PlatformConfigurationError,
    () => new PlatformConfigurationError({ what: 'DCS request', fault: 'flow', status: 400, adobeMessage: 'no flow' }),
    'config',
  ],
];

/** Every product module (what the Lambdas bundle, the CLI, and the CDK config reader). */
function productModules(): string[] {
  const root = path.resolve(import.meta.dirname, '../..');
  const walk = (dir: string): string[] =>
    readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
      e.isDirectory() ? walk(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
    );
  return [...walk(path.join(root, 'functions')), ...walk(path.join(root, 'cli')), path.join(root, 'lib/config.ts')];
}

describe('error family', () => {
  it.each(CASES.map(([cls, make, kind]) => [cls.name, make, kind] as const))(
    'should make %s a ConnectorError of kind %s',
    (name, make, kind) => {
      const error = make();
      expect(error).toBeInstanceOf(ConnectorError);
      expect(error).toBeInstanceOf(Error);
      expect(error.name).toBe(name);
      expect((error as ConnectorError).kind).toBe(kind);
      expect(errorKind(error)).toBe(kind);
    },
  );

  it('should cover every exported error class of the product', async () => {
    const found = new Set<string>();
    for (const file of productModules()) {
      const mod = (await import(file)) as Record<string, unknown>;
      for (const value of Object.values(mod)) {
        if (typeof value === 'function' && value.prototype instanceof Error) found.add(value.name);
      }
    }
    expect([...found].sort()).toEqual(['ConnectorError', ...CASES.map(([cls]) => cls.name)].sort());
  });

  it('should take the kind of AEP answers from their status', () => {
    for (const status of [408, 429, 500, 502, 503, 504]) {
      expect(aepHttp(status)).toMatchObject({ kind: 'transient', retryable: true });
    }
    for (const status of [400, 401, 403, 404, 413]) {
      expect(aepHttp(status)).toMatchObject({ kind: 'permanent', retryable: false });
    }
  });

  it('should make a failed step transient only when its cause is', () => {
    expect(kindFromCause(transientCause)).toBe('transient');
    expect(kindFromCause(new ConfigError(['x']))).toBe('permanent');
    expect(kindFromCause(new Error('S3 said no'))).toBe('permanent');
    expect(new WindowExportError('w1', 'not exported', transientCause).kind).toBe('transient');
    expect(new WindowForwardError('w1', 'not forwarded', aepHttp(503)).kind).toBe('transient');
    expect(new StreamingDeliveryError('stopped', noResult, transientCause).kind).toBe('transient');
    expect(new ImsError('IMS is failing', { cause: transientCause, status: 503 }).kind).toBe('transient');
    expect(new ImsError('IMS refused', { cause: aepHttp(401), status: 401 }).kind).toBe('permanent');
    expect(errorKind(new Error('plain'))).toBeUndefined();
  });

  it('should keep the cause, and add none when there is none', () => {
    expect(new WindowExportError('w1', 'not exported', transientCause).cause).toBe(transientCause);
    expect(new RetriesExhaustedError('GET x', 1, 'boom', 'why').cause).toBe('boom');
    expect('cause' in new SecretError('no cause')).toBe(false);
    expect('cause' in new MixpanelRequestError('no cause', 400)).toBe(false);
  });

  it('should carry the advice the message ends with as the hint', () => {
    const mapping = new MappingConfigError('mapping.json', ['a: b'], { hint: 'Fix the preset.' });
    expect(mapping.hint).toBe('Fix the preset.');
    expect(mapping.message.endsWith('Fix the preset.')).toBe(true);
    expect(aepHttp(400).hint).toBe('Check the dataset id.');
    expect(new UsageError('x').hint).toBeUndefined();
  });
});

describe('CLI failure by kind', () => {
  it('should exit 2 for config and input errors and 1 for the rest', () => {
    for (const [, make, kind] of CASES) {
      const expected = kind === 'config' || kind === 'input' ? EXIT_USAGE : EXIT_FAILED;
      expect(describeFailure(make(), {}).code, kind).toBe(expected);
    }
  });

  it('should decide by kind, not by name', () => {
    class OddlyNamed extends ConnectorError {
      constructor() {
        super('config', 'the settings are wrong');
        this.name = 'SomethingElse';
      }
    }
    expect(describeFailure(new OddlyNamed(), {}).code).toBe(EXIT_USAGE);
    // A foreign error that happens to share a product error's name is a failed run, not a usage problem.
    expect(describeFailure(Object.assign(new Error('x'), { name: 'ConfigError' }), {}).code).toBe(EXIT_FAILED);
    // A window that failed on a configuration problem is still a failed run.
    const failedOnConfig = new WindowExportError('w1', 'not exported', new ConfigError(['x']));
    expect(describeFailure(failedOnConfig, {}).code).toBe(EXIT_FAILED);
  });

  it('should advise trying again later for transient errors only', () => {
    const transient = describeFailure(new WindowForwardError('w1', 'window w1 was not forwarded', transientCause), {});
    expect(transient).toEqual({
      code: EXIT_FAILED,
      text:
        'error: window w1 was not forwarded\n' +
        '  The cause looks temporary (throttling, a busy or unreachable service): ' +
        'trying again later should get past it.',
    });
    expect(describeFailure(new MixpanelRequestError('plan does not include the API', 402), {}).text).toBe(
      'error: plan does not include the API',
    );
    expect(describeFailure(new ConfigError(['STAGING_BUCKET is required']), {}).text).not.toContain('temporary');
    // The AWS SDK's own advice wins over the kind's.
    const noRegion = new WindowForwardError('w1', 'Region is missing', transientCause);
    expect(describeFailure(noRegion, {}).text).toContain('AWS_REGION');
  });
});
