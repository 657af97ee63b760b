/**
 * Configuration for the CLI commands, read with the product's one schema (`readConfig`) so the rules and the messages
 * are the Lambdas' own. A command that needs both roles reports the problems of both in one error.
 */
import { type Config, ConfigError, type Role, readConfig } from '#common/config';
import type { Env } from './env.ts';

/** Reads the configuration of every role in `roles`; throws one ConfigError listing every problem. */
export function readConfigs(env: Env, roles: readonly Role[]): Config[] {
  const problems: string[] = [];
  const configs: Config[] = [];
  for (const role of roles) {
    try {
      configs.push(readConfig(env, role));
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      for (const p of error.problems) if (!problems.includes(p)) problems.push(p);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
  return configs;
}

export interface MappingSettings {
  /** MAPPING: a preset name, a JSON file, or an s3:// URI. */
  readonly spec: string;
  /** AEP_TENANT_ID without the underscore. */
  readonly tenant: string;
  readonly projectId: string;
  readonly projectTimezone: string;
  readonly legacyLocalTime: boolean;
  /** AEP_PROFILE_ENABLED: Profile's limits apply (records over 10 KB or without identity are rejected). */
  readonly profile: boolean;
}

/**
 * What mapping needs and nothing more (no credentials, no bucket): MAPPING, AEP_TENANT_ID, and the project settings
 * that affect `_id` and `timestamp`. Validated by the same schema; a missing tenant is named like every other variable.
 */
export function readMappingSettings(env: Env, opts: { requireProject?: boolean } = {}): MappingSettings {
  const problems: string[] = [];
  // The local role validates whatever is set; STAGING_BUCKET is not needed to map, so a placeholder stands in.
  let config: Config | undefined;
  try {
    config = readConfig(
      { ...env, STAGING_BUCKET: 'unused-for-mapping', MIXPANEL_PROJECT_ID: undefined, AEP_DATASET_ID: undefined },
      'local',
    );
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    problems.push(...error.problems);
  }
  const tenant = (env.AEP_TENANT_ID ?? '').trim();
  if (tenant === '')
    problems.push('AEP_TENANT_ID is required to map events (the tenant id, e.g. acme: custom fields go under _acme)');
  else if (!/^_?[a-z0-9]+$/i.test(tenant))
    problems.push(`AEP_TENANT_ID: AEP_TENANT_ID must be the tenant id, e.g. acme (got ${JSON.stringify(tenant)})`);
  const projectId = (env.MIXPANEL_PROJECT_ID ?? '').trim();
  if (projectId !== '' && !/^\d+$/.test(projectId))
    problems.push(
      `MIXPANEL_PROJECT_ID: MIXPANEL_PROJECT_ID must be the numeric project id (got ${JSON.stringify(projectId)})`,
    );
  if (projectId === '' && opts.requireProject === true)
    problems.push('MIXPANEL_PROJECT_ID is required (the numeric Mixpanel project id)');
  if (problems.length > 0 || config === undefined) throw new ConfigError(problems);
  return {
    spec: env.MAPPING?.trim() || 'default',
    tenant: tenant.replace(/^_/, ''),
    projectId: projectId || '0',
    projectTimezone: env.MIXPANEL_PROJECT_TIMEZONE?.trim() || 'UTC',
    legacyLocalTime: /^(true|1|yes)$/.test(env.MIXPANEL_LEGACY_LOCAL_TIME ?? ''),
    profile: /^(true|1|yes)$/.test(env.AEP_PROFILE_ENABLED ?? ''),
  };
}
