/**
 * `provision`: sets up the Platform side with the AEP credentials (schema, identities, dataset, streaming dataflow;
 * functions/aep/provision/) and prints, or writes, the values the connector's configuration needs.
 */
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { type AepConfig, ConfigError, readConfig } from '#common/config';
import { ImsTokenProvider } from '#aep/ims';
import { rereadAfterFirst } from '#common/secrets';
import { PlatformApi } from '#aep/provision/api';
import {
  DEFAULT_OBJECT_NAME,
  type ProvisionedValues,
  type ProvisionResult,
  type ProvisionStep,
  provisionPlatform,
} from '#aep/provision/provision';
import { aepCredentials } from '#forward/deps';
import { loadMappingConfig } from '#forward/mapping-source';
import { UsageError, parseFlags } from './args.ts';
import { type Env, loadEnv, s3ClientFor, secretsManagerFor } from './env.ts';
import { withEnv } from './errors.ts';
import { type CliContext, type CliIo, EXIT_OK, line } from './io.ts';

export const PROVISION_USAGE = `Usage: npm run cli -- provision [options]

Sets up the Platform side for the configured mapping and sink, with the AEP credentials: reads the tenant id, creates
(or extends) the tenant field group and an XDM ExperienceEvent schema with the standard field groups, the identity
namespaces and the primary identity descriptor, the dataset, and for AEP_SINK=streaming the authenticated HTTP API
streaming connection and its dataflow. Objects are found by name and reused: running it again creates nothing new.
Prints AEP_TENANT_ID, AEP_SCHEMA_ID, AEP_DATASET_ID, AEP_PROFILE_ENABLED (whether the dataset is enabled for
Profile), AEP_INLET_URL and AEP_FLOW_ID.

Configuration: AEP_SECRET_ID (or AEP_CLIENT_ID, AEP_CLIENT_SECRET, AEP_ORG_ID), AEP_SCOPES, AEP_IMS_URL,
AEP_PLATFORM_URL, AEP_SANDBOX, AEP_SINK, MAPPING. The credential's role needs the permissions listed in
docs/deploy.md ("Provision the Platform side").

Options:
  --name <name>          base name of the schema, dataset and dataflow (default "${DEFAULT_OBJECT_NAME}")
  --profile              enable the schema and the dataset for Real-Time Customer Profile
  --dry-run              read what exists and print every call that would change something; change nothing
  --write-config <file>  write the values into a connector.config.json (its "aep" object) or a .env file
  --json                 print the result as JSON
  --env-file <path>      read this file instead of ./.env
  -h, --help             show this help
`;

const FLAGS = {
  name: { type: 'string' },
  profile: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  'write-config': { type: 'string' },
  json: { type: 'boolean' },
  'env-file': { type: 'string' },
} as const;

/** Placeholders for the values provisioning produces, so the product's one schema can validate the rest. */
const PRODUCED = {
  AEP_DATASET_ID: 'provisioned',
  AEP_SCHEMA_ID: 'https://ns.adobe.com/provisioned/schemas/provisioned',
  AEP_TENANT_ID: 'provisioned',
  AEP_INLET_URL: 'https://dcs.adobedc.net/collection/provisioned',
  AEP_FLOW_ID: 'provisioned',
};

/** Reads the AEP settings provisioning needs, with the product's messages for a bad or missing variable. */
export function readProvisionSettings(env: Env): AepConfig {
  const config = readConfig({ ...env, ...PRODUCED, STAGING_BUCKET: 'unused', MIXPANEL_PROJECT_ID: undefined }, 'local');
  if (config.aep === undefined) throw new ConfigError(['AEP credentials are required to provision']);
  return config.aep;
}

export interface ProvisionRun {
  readonly result: ProvisionResult;
  readonly api: PlatformApi;
}

/** Provisions with the settings of `env` (the CLI command and the demo both call this). */
export async function runProvision(
  env: Env,
  o: {
    name?: string;
    profile?: boolean;
    dryRun?: boolean;
    onStep?: (s: ProvisionStep) => void;
    sleep?: (ms: number) => Promise<void>;
  },
): Promise<ProvisionRun> {
  const aep = readProvisionSettings(env);
  let sm: SecretsManagerClient | undefined;
  const s3 = s3ClientFor(env);
  try {
    const secret = aepCredentials(aep, () => (sm ??= secretsManagerFor(env)));
    const tokens = new ImsTokenProvider({
      imsUrl: aep.imsUrl,
      credentials: rereadAfterFirst(secret),
      ...(o.sleep ? { sleep: o.sleep } : {}),
    });
    const api = new PlatformApi({
      platformUrl: aep.platformUrl,
      sandbox: aep.sandbox,
      tokens,
      dryRun: o.dryRun === true,
      ...(o.sleep ? { sleep: o.sleep } : {}),
    });
    const mapping = await loadMappingConfig(aep.mapping, s3);
    const result = await provisionPlatform({
      api,
      mapping,
      sink: aep.sink,
      name: o.name ?? DEFAULT_OBJECT_NAME,
      profile: o.profile === true,
      ...(o.onStep ? { onStep: o.onStep } : {}),
    });
    return { result, api };
  } finally {
    s3.destroy();
    sm?.destroy();
  }
}

export async function provisionCommand(
  argv: readonly string[],
  rawEnv: Readonly<Env>,
  io: CliIo,
  ctx: CliContext = {},
): Promise<number> {
  const { flags } = parseFlags(argv, FLAGS);
  if (flags.help) {
    io.stdout.write(PROVISION_USAGE);
    return EXIT_OK;
  }
  if (flags.name !== undefined && flags.name.trim() === '') throw new UsageError('--name must not be empty');
  const env = await loadEnv(rawEnv, {
    ...(ctx.cwd ? { cwd: ctx.cwd } : {}),
    ...(flags['env-file'] ? { envFile: flags['env-file'] } : {}),
  });
  const settings = readProvisionSettings(env);
  const dryRun = flags['dry-run'] === true;
  const out = io.stdout;
  if (flags.json !== true) {
    const what = `sandbox "${settings.sandbox}" at ${settings.platformUrl}`;
    const intro = `${dryRun ? 'Dry run: nothing is changed. ' : ''}Provisioning ${what}`;
    line(out, `${intro} for the ${settings.sink} sink and mapping ${settings.mapping}`);
  }
  const onStep = flags.json === true ? undefined : (s: ProvisionStep) => line(out, formatStep(s));
  const { result, api } = await withEnv(env, () =>
    runProvision(env, {
      ...(flags.name ? { name: flags.name.trim() } : {}),
      profile: flags.profile === true,
      dryRun,
      ...(onStep ? { onStep } : {}),
      ...(ctx.sleep ? { sleep: ctx.sleep } : {}),
    }),
  );
  const written =
    flags['write-config'] !== undefined && !dryRun
      ? await writeValues(path.resolve(ctx.cwd ?? process.cwd(), flags['write-config']), result.values)
      : undefined;
  if (flags.json === true) {
    const calls = dryRun ? { calls: api.writes } : {};
    line(out, JSON.stringify({ dryRun, values: result.values, steps: result.steps, ...calls }, null, 2));
    return EXIT_OK;
  }
  if (dryRun) {
    line(out);
    const nothing = 'Nothing to change: every object exists as the mapping needs it.';
    line(out, api.writes.length === 0 ? nothing : `Calls that would be made (${api.writes.length}):`);
    for (const call of api.writes) {
      line(out, `  ${call.method} ${call.path}   ${call.what}`);
      if (call.body !== undefined) line(out, `      ${JSON.stringify(call.body)}`);
    }
  }
  line(out);
  line(
    out,
    dryRun
      ? 'Values (placeholders stand for objects a real run creates):'
      : 'Values for connector.config.json (aep.*) or the environment:',
  );
  for (const [key, value] of Object.entries(result.values)) line(out, `  ${key}=${value}`);
  if (written !== undefined) line(out, `Written to ${written}.`);
  if (dryRun && flags['write-config'] !== undefined)
    line(out, 'Nothing written: --write-config is ignored in a dry run.');
  return EXIT_OK;
}

const MARK: Record<ProvisionStep['action'], string> = {
  found: '=',
  created: '+',
  extended: '~',
  updated: '~',
  'would create': '+?',
  'would extend': '~?',
  'would update': '~?',
};

function formatStep(s: ProvisionStep): string {
  const detail = s.detail === undefined ? '' : ` (${s.detail})`;
  const id = s.id !== undefined && s.id !== s.name ? `  ${s.id}` : '';
  return `  ${MARK[s.action].padEnd(2)} ${s.object.padEnd(20)} ${s.action.padEnd(12)} ${s.name}${id}${detail}`;
}

/** connector.config.json key of each value (lib/config.ts `aep`). */
const CONFIG_KEYS: Record<keyof ProvisionedValues, string> = {
  AEP_TENANT_ID: 'tenantId',
  AEP_SCHEMA_ID: 'schemaId',
  AEP_DATASET_ID: 'datasetId',
  AEP_SINK: 'sink',
  AEP_PROFILE_ENABLED: 'profileEnabled',
  AEP_INLET_URL: 'inletUrl',
  AEP_FLOW_ID: 'flowId',
};

/** Updates the `aep` object of a JSON config, or the variables of a `.env` file (created when missing). */
async function writeValues(file: string, values: ProvisionedValues): Promise<string> {
  const text = await readFile(file, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT' && !file.endsWith('.json')) return '';
    const why = error.code ?? error.message;
    throw new UsageError(`cannot read --write-config ${file} (${why}); copy connector.config.example.json first`);
  });
  const entries = Object.entries(values) as Array<[keyof ProvisionedValues, string]>;
  if (file.endsWith('.json')) {
    let config: Record<string, unknown>;
    try {
      config = JSON.parse(text) as Record<string, unknown>;
    } catch (error) {
      throw new UsageError(`--write-config ${file} is not JSON (${(error as Error).message})`);
    }
    const aep = { ...((config.aep ?? {}) as Record<string, unknown>) };
    // connector.config.json takes a boolean for profileEnabled (lib/config.ts), the environment its text.
    for (const [key, value] of entries)
      aep[CONFIG_KEYS[key]] = key === 'AEP_PROFILE_ENABLED' ? value === 'true' : value;
    await writeFile(file, `${JSON.stringify({ ...config, aep }, null, 2)}\n`);
    return file;
  }
  const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
  for (const [key, value] of entries) {
    const at = lines.findIndex((l) => new RegExp(`^\\s*(export\\s+)?${key}\\s*=`).test(l));
    if (at === -1) lines.push(`${key}=${value}`);
    else lines[at] = `${key}=${value}`;
  }
  await writeFile(file, `${lines.join('\n')}\n`);
  return file;
}
