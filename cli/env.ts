/**
 * The CLI's environment: the process environment over an optional `.env` file (the environment wins), and the AWS
 * clients built from it. The SDK reads credentials, region and endpoints from `process.env` on its own; values that
 * came from `.env` are not there, so they are passed to the clients explicitly (same variable names as the SDK's).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient, type SecretsManagerClientConfig } from '@aws-sdk/client-secrets-manager';
import { registerSecret } from '#common/log';
import { createS3Client } from '#staging/s3';
import { UsageError } from './args.ts';

export type Env = Record<string, string | undefined>;

/**
 * Parses `.env` text: `KEY=VALUE` lines, `#` comments, blank lines, an optional `export ` prefix, and values in
 * single or double quotes (double quotes understand `\n`). No interpolation: what is written is what is used.
 * @throws UsageError naming the line that is not `KEY=VALUE`
 */
export function parseDotEnv(text: string, source = '.env'): Record<string, string> {
  const out: Record<string, string> = {};
  text.split(/\r?\n/).forEach((raw, i) => {
    const l = raw.trim();
    if (l === '' || l.startsWith('#')) return;
    const m = /^(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(l);
    if (m === null) throw new UsageError(`${source} line ${i + 1} is not KEY=VALUE: ${JSON.stringify(l.length > 40 ? `${l.slice(0, 40)}…` : l)}`);
    let value = m[2]!;
    const quote = value[0];
    if ((quote === '"' || quote === "'") && value.length >= 2 && value.endsWith(quote)) {
      value = value.slice(1, -1);
      if (quote === '"') value = value.replace(/\\n/g, '\n').replace(/\\"/g, '"');
    } else {
      // An unquoted value ends at an inline comment (" #").
      value = value.replace(/\s+#.*$/, '').trim();
    }
    out[m[1]!] = value;
  });
  return out;
}

/**
 * The environment a command runs with: `.env` (from `envFile`, or `.env` in `cwd` when present) under `env`.
 * Secret values are registered with the log redactor so they never reach an output.
 */
export async function loadEnv(env: Readonly<Env>, opts: { cwd?: string; envFile?: string } = {}): Promise<Env> {
  const file = opts.envFile ?? path.join(opts.cwd ?? process.cwd(), '.env');
  let fromFile: Record<string, string> = {};
  try {
    fromFile = parseDotEnv(await readFile(file, 'utf8'), opts.envFile ?? '.env');
  } catch (error) {
    if (error instanceof UsageError) throw error;
    // A missing default .env is normal; a file named with --env-file must exist.
    if (opts.envFile !== undefined) throw new UsageError(`cannot read --env-file ${opts.envFile} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const merged: Env = { ...fromFile };
  for (const [k, v] of Object.entries(env)) if (v !== undefined) merged[k] = v;
  for (const name of ['MIXPANEL_SECRET', 'AEP_CLIENT_SECRET', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN']) registerSecret(merged[name]);
  return merged;
}

/** Client settings from the SDK's standard variables, for values that may have come from `.env`. */
function awsSettings(env: Env, service: 'S3' | 'SECRETS_MANAGER') {
  const endpoint = env[`AWS_ENDPOINT_URL_${service}`] ?? env.AWS_ENDPOINT_URL;
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  const keys =
    env.AWS_ACCESS_KEY_ID !== undefined && env.AWS_SECRET_ACCESS_KEY !== undefined
      ? { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) }
      : undefined;
  return {
    ...(endpoint ? { endpoint } : {}),
    ...(region ? { region } : {}),
    ...(keys ? { credentials: keys } : env.AWS_PROFILE ? { profile: env.AWS_PROFILE } : {}),
  };
}

/** S3 through the SDK's default chain, with `AWS_ENDPOINT_URL_S3` (path-style) for a local S3. */
export function s3ClientFor(env: Env): S3Client {
  return createS3Client({}, awsSettings(env, 'S3'));
}

export function secretsManagerFor(env: Env): SecretsManagerClient {
  return new SecretsManagerClient(awsSettings(env, 'SECRETS_MANAGER') as SecretsManagerClientConfig);
}
