/**
 * `schema` and `validate-mapping`: the mapping without any service. `schema` prints the XDM custom field group the
 * configured mapping writes (Schema Registry JSON, ready for POST /tenant/fieldgroups); `validate-mapping` runs the
 * forwarder's mapper over a file of raw export lines and lists every line it would reject, with the reason.
 */
import { constants as fsConstants, createReadStream, createWriteStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { IdSet } from '#forward/ledger';
import { loadMappingConfig } from '#forward/mapping-source';
import { type MappingConfig, PRESET_NAMES, type PresetName, presetConfig } from '#mapping/config';
import { compileMapper } from '#mapping/mapper';
import { fieldGroupForMapping, identityNamespaces, requiredFieldGroups } from '#mapping/schema';
import { UsageError, intFlag, parseFlags } from './args.ts';
import { type MappingSettings, readMappingSettings } from './config.ts';
import { type Env, loadEnv, s3ClientFor } from './env.ts';
import { type CliContext, type CliIo, EXIT_FAILED, EXIT_OK, count, line } from './io.ts';
import { formatReasons } from './report.ts';
import { withEnv } from './errors.ts';

export const SCHEMA_USAGE = `Usage: npm run cli -- schema [options]

Prints the XDM custom field group (Schema Registry JSON) for the fields the configured mapping writes under
_{AEP_TENANT_ID}. Create it with POST https://platform.adobe.io/data/foundation/schemaregistry/tenant/fieldgroups and
add it, with the standard field groups listed on stderr, to an XDM ExperienceEvent schema. Stderr also lists the
identity namespaces the records use (create them in Identity Service; the primary one is marked).

Configuration: MAPPING (preset default or adobe-source, a JSON file, or an s3:// URI; default "default") and
AEP_TENANT_ID (e.g. acme → fields under _acme).

Options:
  --env-file <path>    read this file instead of ./.env
  -h, --help           show this help
`;

export const MAPPING_INIT_USAGE = `Usage: npm run cli -- mapping-init [options]

Prints a preset's mapping config with its defaults written out (event-type table, identities and, for the default
preset, the commerce events and properties): a starting point for a mapping file (MAPPING=./mapping.json).

Options:
  --preset <name>      default or adobe-source (default "default")
  -h, --help           show this help
`;

/** `mapping-init`: prints `presetConfig(preset)` as JSON. */
export async function mappingInitCommand(argv: readonly string[], _env: Readonly<Env>, io: CliIo): Promise<number> {
  const { flags } = parseFlags(argv, { preset: { type: 'string' } });
  if (flags.help) {
    io.stdout.write(MAPPING_INIT_USAGE);
    return EXIT_OK;
  }
  const preset = flags.preset ?? 'default';
  if (!(PRESET_NAMES as readonly string[]).includes(preset)) {
    throw new UsageError(`--preset must be one of ${PRESET_NAMES.join(', ')}, got "${preset}"`);
  }
  io.stdout.write(`${JSON.stringify(presetConfig(preset as PresetName), null, 2)}\n`);
  return EXIT_OK;
}

export const VALIDATE_USAGE = `Usage: npm run cli -- validate-mapping <file.jsonl> [options]

Maps every line of a file of raw Mixpanel export lines (JSON Lines, as the Raw Event Export API returns them) with the
configured mapping and reports the lines it rejects, with the line number and the reason. Exits 1 if any line is
rejected. Repeated _ids are reported separately (the forwarder rejects them as "duplicate"; they are not mapping errors).
Records mapped without any identity are counted ("no identity"); with "requireIdentity": true in the mapping or
AEP_PROFILE_ENABLED=true (a Profile-enabled dataset) they are rejected with the reason no-identity, and with
AEP_PROFILE_ENABLED=true records over Profile's 10 KB event limit as too-large-for-profile.

Configuration: MAPPING, AEP_TENANT_ID, and MIXPANEL_PROJECT_ID / MIXPANEL_PROJECT_TIMEZONE /
MIXPANEL_LEGACY_LOCAL_TIME when they matter for _id and timestamp (project id 0 when unset).

Options:
  --out <file>         also write the mapped XDM records there (JSON Lines)
  --max-listed <n>     rejected lines listed (default 20; all are counted)
  --json               print the report as JSON
  --env-file <path>    read this file instead of ./.env
  -h, --help           show this help
`;

async function loadMapping(env: Env, settings: MappingSettings): Promise<MappingConfig> {
  const s3 = s3ClientFor(env);
  try {
    return await loadMappingConfig(settings.spec, s3);
  } finally {
    s3.destroy();
  }
}

export async function schemaCommand(
  argv: readonly string[],
  rawEnv: Readonly<Env>,
  io: CliIo,
  ctx: CliContext = {},
): Promise<number> {
  const { flags } = parseFlags(argv, { 'env-file': { type: 'string' } });
  if (flags.help) {
    io.stdout.write(SCHEMA_USAGE);
    return EXIT_OK;
  }
  const env = await loadEnv(rawEnv, {
    ...(ctx.cwd ? { cwd: ctx.cwd } : {}),
    ...(flags['env-file'] ? { envFile: flags['env-file'] } : {}),
  });
  const settings = readMappingSettings(env);
  const config = await withEnv(env, () => loadMapping(env, settings));
  io.stdout.write(`${JSON.stringify(fieldGroupForMapping(config, { tenant: settings.tenant }), null, 2)}\n`);
  const standard = requiredFieldGroups(config, settings.tenant);
  if (standard.length > 0) line(io.stderr, `Add these standard field groups to the schema too: ${standard.join(', ')}`);
  const namespaces = identityNamespaces(config);
  if (namespaces.length > 0) {
    const list = namespaces.map((n) => `${n.code} (${n.primary ? 'primary, ' : ''}from ${n.from})`);
    line(io.stderr, `Identity namespaces to create: ${list.join(', ')}`);
  } else {
    line(io.stderr, 'The mapping writes no identityMap: Real-Time Profile cannot use these records.');
  }
  return EXIT_OK;
}

interface Rejection {
  readonly line: number;
  readonly reason: string;
  readonly detail: string;
}

export async function validateMappingCommand(
  argv: readonly string[],
  rawEnv: Readonly<Env>,
  io: CliIo,
  ctx: CliContext = {},
): Promise<number> {
  const { flags, positionals } = parseFlags(
    argv,
    {
      out: { type: 'string' },
      'max-listed': { type: 'string' },
      json: { type: 'boolean' },
      'env-file': { type: 'string' },
    },
    { positionals: 1 },
  );
  if (flags.help) {
    io.stdout.write(VALIDATE_USAGE);
    return EXIT_OK;
  }
  const file = positionals[0];
  if (file === undefined) throw new UsageError('the file to validate is missing: validate-mapping <file.jsonl>');
  const maxListed = intFlag(flags['max-listed'], 'max-listed', 20, 0);
  const env = await loadEnv(rawEnv, {
    ...(ctx.cwd ? { cwd: ctx.cwd } : {}),
    ...(flags['env-file'] ? { envFile: flags['env-file'] } : {}),
  });
  const settings = readMappingSettings(env);
  const mapper = compileMapper(await withEnv(env, () => loadMapping(env, settings)), {
    projectId: settings.projectId,
    tenant: settings.tenant,
    projectTimezone: settings.projectTimezone,
    legacyLocalTime: settings.legacyLocalTime,
    profile: settings.profile,
  });

  try {
    await access(file, fsConstants.R_OK);
  } catch (error) {
    throw new UsageError(`cannot read ${file} (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  const input = createReadStream(file);
  const output = flags.out !== undefined ? createWriteStream(flags.out) : undefined;

  const ids = new IdSet();
  const listed: Rejection[] = [];
  const byReason: Record<string, number> = {};
  let lines = 0;
  let mapped = 0;
  let rejected = 0;
  let duplicates = 0;
  let withoutIdentity = 0;
  let n = 0;
  for await (const raw of createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })) {
    n++;
    if (raw.trim() === '') continue;
    lines++;
    let reason: string | undefined;
    let detail = '';
    let event: unknown;
    try {
      event = JSON.parse(raw);
    } catch {
      reason = 'not-json';
      detail = 'the line is not valid JSON';
    }
    if (reason === undefined) {
      const out = mapper(event);
      if (out.ok) {
        mapped++;
        if (!out.identified) withoutIdentity++;
        if (!ids.add(out.id)) duplicates++;
        if (output !== undefined && !output.write(`${out.json}\n`)) await once(output, 'drain');
        continue;
      }
      reason = out.reason;
      detail = out.detail;
    }
    rejected++;
    byReason[reason] = (byReason[reason] ?? 0) + 1;
    if (listed.length < maxListed) listed.push({ line: n, reason, detail });
  }
  if (output !== undefined) {
    output.end();
    await once(output, 'finish');
  }

  if (flags.json) {
    io.stdout.write(
      `${JSON.stringify(
        {
          file,
          mapping: settings.spec,
          tenant: settings.tenant,
          lines,
          mapped,
          rejected,
          duplicates,
          withoutIdentity,
          byReason,
          rejections: listed,
        },
        null,
        2,
      )}\n`,
    );
  } else {
    const o = io.stdout;
    line(
      o,
      `validate-mapping ${file}: mapping ${settings.spec}, tenant ${settings.tenant}, project ${settings.projectId}`,
    );
    const width = count(lines).length;
    const row = (label: string, n: number, note = ''): void =>
      line(o, `  ${label.padEnd(14)}${count(n).padStart(width)}${note}`);
    row('lines read', lines);
    row('mapped', mapped);
    row('rejected', rejected, rejected > 0 ? `  (${formatReasons(byReason)})` : '');
    row('duplicate _id', duplicates);
    const profileNote = '  (mapped without identityMap: Profile cannot use them)';
    row('no identity', withoutIdentity, withoutIdentity > 0 ? profileNote : '');
    if (rejected > 0) {
      line(o);
      line(o, `Rejected lines${rejected > listed.length ? ` (first ${listed.length} of ${count(rejected)})` : ''}:`);
      for (const r of listed) line(o, `  line ${r.line}: ${r.reason}: ${r.detail}`);
    }
    if (duplicates > 0)
      line(
        o,
        `  ${count(duplicates)} line(s) repeat an _id seen earlier in the file: the forwarder sends each _id of a window once and counts repeats as rejected "duplicate".`,
      );
    if (flags.out !== undefined) line(o, `  mapped records written to ${flags.out}`);
    line(
      o,
      rejected === 0
        ? 'OK: every line maps.'
        : `FAILED: ${count(rejected)} line(s) would be rejected (the forwarder keeps them in rejected/ with the reason).`,
    );
  }
  return rejected === 0 ? EXIT_OK : EXIT_FAILED;
}
