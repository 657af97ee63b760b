/**
 * Secrets from AWS Secrets Manager, cached per container and refreshed on demand (after an auth failure), so a
 * rotated secret is picked up without a cold start. Local runs may use plain values from the environment instead.
 * Secret values are registered with the log redactor and never appear in an error message.
 */
import { GetSecretValueCommand, type SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import * as z from 'zod';
import { registerSecret } from '#common/log';
import { ConnectorError } from '#common/errors';

export interface SecretReader<T> {
  /** The cached value, fetched on first use. */
  get(): Promise<T>;
  /** Fetches again (after the remote side rejected the cached value). */
  refresh(): Promise<T>;
}

export class SecretError extends ConnectorError {
  constructor(message: string, cause?: unknown) {
    super('permanent', message, cause === undefined ? undefined : { cause });
    this.name = 'SecretError';
  }
}

/**
 * `{"username": "...", "secret": "..."}` — a Mixpanel service account (docs/architecture.md#configuration). Without
 * `username`, `secret` is read as the legacy project API secret (deprecated by Mixpanel, retired 2027-03-03;
 * reference/mixpanel-export-api.md).
 */
export const MixpanelSecretSchema = z.object({ username: z.string().min(1).optional(), secret: z.string().min(1) });
export type MixpanelSecret = z.infer<typeof MixpanelSecretSchema>;

/**
 * `{"clientId","clientSecret","orgId","scopes"?}` — Adobe OAuth Server-to-Server credentials
 * (docs/architecture.md#configuration).
 */
export const AepSecretSchema = z.object({
  clientId: z.string().min(1),
  clientSecret: z.string().min(1),
  orgId: z.string().regex(/@AdobeOrg$/, 'must end with @AdobeOrg'),
  scopes: z
    .union([
      z.array(z.string()),
      z.string().transform((s) =>
        s
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean),
      ),
    ])
    .optional(),
});
export type AepSecret = z.infer<typeof AepSecretSchema>;

/** Reads a JSON secret from Secrets Manager and validates its shape. */
export function secretFromManager<T>(
  client: SecretsManagerClient,
  secretId: string,
  schema: z.ZodType<T>,
  what: string,
): SecretReader<T> {
  let cached: Promise<T> | undefined;
  const fetchOnce = async (): Promise<T> => {
    let text: string | undefined;
    try {
      const out = await client.send(new GetSecretValueCommand({ SecretId: secretId }));
      text = out.SecretString;
    } catch (error) {
      const name = error instanceof Error ? error.name : 'Error';
      throw new SecretError(
        `Could not read the ${what} secret "${secretId}" (${name}). Check that it exists in this account and region and that the function's role may call secretsmanager:GetSecretValue on it.`,
        error,
      );
    }
    if (text === undefined)
      throw new SecretError(`The ${what} secret "${secretId}" has no SecretString: store it as JSON text.`);
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch {
      throw new SecretError(`The ${what} secret "${secretId}" is not valid JSON: store it as ${describe(schema)}.`);
    }
    const parsed = schema.safeParse(json);
    if (!parsed.success) {
      const fields = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
      throw new SecretError(
        `The ${what} secret "${secretId}" has the wrong shape (${fields}): store it as ${describe(schema)}.`,
      );
    }
    registerValues(parsed.data);
    return parsed.data;
  };
  return {
    get() {
      cached ??= fetchOnce().catch((error: unknown) => {
        cached = undefined;
        throw error;
      });
      return cached;
    },
    refresh() {
      cached = undefined;
      return this.get();
    },
  };
}

/**
 * The credentials function of a token provider: the cached secret on the first call, a fresh read on every later one
 * (a later call means the token was refused, so a rotated secret is picked up).
 */
export function rereadAfterFirst<T>(reader: SecretReader<T>): () => Promise<T> {
  let refresh = false;
  return async () => {
    const value = refresh ? await reader.refresh() : await reader.get();
    refresh = true;
    return value;
  };
}

/** A secret given directly (local runs, tests). */
export function staticSecret<T>(value: T): SecretReader<T> {
  registerValues(value);
  return { get: async () => value, refresh: async () => value };
}

function describe(schema: z.ZodType): string {
  if (schema === (MixpanelSecretSchema as z.ZodType))
    return '{"username": "<service account username>", "secret": "<service account secret>"}';
  if (schema === (AepSecretSchema as z.ZodType))
    return '{"clientId": "...", "clientSecret": "...", "orgId": "...@AdobeOrg", "scopes": ["..."]}';
  return 'the documented JSON object';
}

function registerValues(value: unknown): void {
  if (value === null || typeof value !== 'object') return;
  for (const [key, v] of Object.entries(value)) {
    if (typeof v === 'string' && /secret|password|token/i.test(key)) registerSecret(v);
  }
}
