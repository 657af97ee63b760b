/**
 * Secrets through the real Secrets Manager client against the awsJson1.1 stand-in: read by id, cached per container,
 * read again after an authentication failure so a rotated secret is picked up, and actionable errors that never
 * carry the secret value.
 */
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { afterEach, describe, expect, it } from 'vitest';
import { type LocalStack, startLocalStack } from '#emulators/local-stack';
import { type SecretsManagerFake, startSecretsManagerFake } from '#emulators/secrets-manager';
import { readConfig } from '#common/config';
import { createExportDeps } from '#export/deps';
import { AepSecretSchema, MixpanelSecretSchema, SecretError, secretFromManager } from '#common/secrets';
import { createExportHandler } from '#export/handler';

const NOW = Date.parse('2026-11-20T12:10:00Z');
const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
let stack: LocalStack | undefined;
let fake: SecretsManagerFake | undefined;
afterEach(async () => {
  await stack?.close();
  await fake?.close();
  stack = undefined;
  fake = undefined;
});

const client = (url: string) =>
  new SecretsManagerClient({
    endpoint: url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
  });

describe('secrets from Secrets Manager', () => {
  it('should export with a service account read by secret id, and pick up a rotated secret after an auth failure', async () => {
    // Prepare: the secret store holds a stale secret at first
    stack = await startLocalStack({
      dataset: { seed: 3, count: 500, start: NOW - 3 * 3_600_000, end: NOW - 3_600_000 },
      now: () => NOW,
    });
    const good = JSON.stringify({ username: stack.env.MIXPANEL_USERNAME, secret: stack.secrets.mixpanelSecret });
    fake = await startSecretsManagerFake({
      'mixpanel/sa': JSON.stringify({ username: stack.env.MIXPANEL_USERNAME, secret: 'stale-secret-value' }),
    });
    const { MIXPANEL_USERNAME: _u, MIXPANEL_SECRET: _s, ...env } = stack.env;
    const config = readConfig({ ...env, MIXPANEL_SECRET_ID: 'mixpanel/sa' }, 'export');
    let clock = NOW;
    const deps = createExportDeps(config, {
      s3: stack.s3.client,
      secretsManager: client(fake.url),
      now: () => clock,
      sleep: async (ms) => void (clock += ms),
      log: quiet,
    });
    const handler = createExportHandler(() => deps);
    const event = { source: 'schedule', scheduledTime: new Date(NOW).toISOString() };
    // Act 1: stale secret → refused, with advice, and without the secret in the message
    const failure = await handler(event).catch((e: Error) => e);
    expect((failure as Error).message).toMatch(/rejected the credentials .* service account/);
    expect((failure as Error).message).not.toContain('stale-secret-value');
    const callsAfterFailure = fake.calls;
    expect(callsAfterFailure).toBe(2); // read once, read again after the refusal
    // Act 2: the secret is rotated; the next run reads it again after the first refusal
    fake.put('mixpanel/sa', good);
    const result = await handler(event);
    // Assess
    expect(result.windows[0]!.status).toBe('committed');
    expect(fake.calls).toBe(callsAfterFailure + 1);
    // Act 3: cached now — another run does not read the secret again
    await handler({
      from: new Date(NOW - 3 * 3_600_000).toISOString(),
      to: new Date(NOW - 2 * 3_600_000).toISOString(),
    });
    expect(fake.calls).toBe(callsAfterFailure + 1);
  });

  it('should say what to check when the secret is missing, denied, not JSON or of the wrong shape', async () => {
    fake = await startSecretsManagerFake({
      'not-json': 'username=x',
      'wrong-shape': JSON.stringify({ clientId: 'a', clientSecret: 'hidden-value-123', orgId: 'nope' }),
    });
    fake.deny('denied');
    const sm = client(fake.url);
    await expect(
      secretFromManager(sm, 'missing', MixpanelSecretSchema, 'Mixpanel service account').get(),
    ).rejects.toThrow(
      /Could not read the Mixpanel service account secret "missing" \(ResourceNotFoundException\)\. Check that it exists/,
    );
    await expect(
      secretFromManager(sm, 'denied', MixpanelSecretSchema, 'Mixpanel service account').get(),
    ).rejects.toThrow(/AccessDeniedException.*secretsmanager:GetSecretValue/);
    await expect(
      secretFromManager(sm, 'not-json', MixpanelSecretSchema, 'Mixpanel service account').get(),
    ).rejects.toThrow(/not valid JSON: store it as \{"username"/);
    const shape = await secretFromManager(sm, 'wrong-shape', AepSecretSchema, 'AEP')
      .get()
      .catch((e: unknown) => e);
    expect(shape).toBeInstanceOf(SecretError);
    expect((shape as Error).message).toMatch(/orgId: must end with @AdobeOrg/);
    expect((shape as Error).message).not.toContain('hidden-value-123');
  });
});
