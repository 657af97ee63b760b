/**
 * The CLI's environment: the process environment over an optional `.env` file (the environment wins), and the AWS
 * clients built from it. The SDK reads credentials, region and endpoints from `process.env` on its own; values that
 * came from `.env` are not there, so they are passed to the clients explicitly (same variable names as the SDK's).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseEnv } from 'node:util';
import type { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient, type SecretsManagerClientConfig } from '@aws-sdk/client-secrets-manager';
import { registerSecret } from '#common/log';
import { createS3Client } from '#staging/s3';
import { UsageError } from './args.ts';

export type Env = Record<string, string | undefined>;

/** A `KEY=VALUE` line, with an optional `export ` prefix; group 1 is the raw value. */
const ASSIGNMENT = /^(?:export\s+)?[A-Za-z_][A-Za-z0-9_]*\s*=\s*(.*)$/;

/**
 * Parses `.env` text with Node's own parser (`util.parseEnv`: `#` comments, an optional `export ` prefix, quoted and
 * multi-line quoted values, no interpolation). Node skips a line it cannot read without a word, so each line is
 * checked first: a typo then stops the command instead of silently dropping a setting.
 * @throws UsageError naming the line that is not `KEY=VALUE`
 */
export function parseDotEnv(text: string, source = '.env'): Record<string, string> {
  let openQuote: string | undefined;
  text.split(/\r?\n/).forEach((raw, i) => {
    if (openQuote !== undefined) {
      // Inside a multi-line quoted value: only its closing quote matters.
      if (raw.includes(openQuote)) openQuote = undefined;
      return;
    }
    const l = raw.trim();
    if (l === '' || l.startsWith('#')) return;
    const m = ASSIGNMENT.exec(l);
    if (m === null) {
      const shown = JSON.stringify(l.length > 40 ? `${l.slice(0, 40)}…` : l);
      throw new UsageError(`${source} line ${i + 1} is not KEY=VALUE: ${shown}`);
    }
    const quote = m[1]![0];
    if ((quote === '"' || quote === "'" || quote === '`') && !m[1]!.slice(1).includes(quote)) openQuote = quote;
  });
  return parseEnv(text) as Record<string, string>;
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
    if (opts.envFile !== undefined)
      throw new UsageError(
        `cannot read --env-file ${opts.envFile} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
      );
  }
  const merged: Env = { ...fromFile };
  for (const [k, v] of Object.entries(env)) if (v !== undefined) merged[k] = v;
  for (const name of ['MIXPANEL_SECRET', 'AEP_CLIENT_SECRET', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'])
    registerSecret(merged[name]);
  return merged;
}

/** Client settings from the SDK's standard variables, for values that may have come from `.env`. */
function awsSettings(env: Env, service: 'S3' | 'SECRETS_MANAGER') {
  const endpoint = env[`AWS_ENDPOINT_URL_${service}`] ?? env.AWS_ENDPOINT_URL;
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION;
  const keys =
    env.AWS_ACCESS_KEY_ID !== undefined && env.AWS_SECRET_ACCESS_KEY !== undefined
      ? {
          accessKeyId: env.AWS_ACCESS_KEY_ID,
          secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
          ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}),
        }
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
