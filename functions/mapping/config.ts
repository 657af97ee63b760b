/**
 * Mapping config: the JSON a user writes (or a preset name) and its resolution into a {@link MappingPlan}, the
 * precompiled form the mapper and the field-group generator work from. Longer than 400 lines: the zod schema and the
 * one pass of cross-entry checks that builds the plan belong together (every problem is reported at once).
 *
 * ```json
 * { "preset": "default", "tenant": "acme",
 *   "eventTypes": {"Order Completed": "commerce.purchases"},
 *   "identities": [{"from": "properties.distinct_id", "namespace": "MixpanelDistinctId", "primary": true}],
 *   "fields": [{"from": "properties.plan", "to": "_acme.mixpanel.plan", "type": "string"}],
 *   "drop": ["properties.$email"], "hash": ["properties.email"],
 *   "defaultEventType": "mixpanel.event", "requireIdentity": true,
 *   "commerce": {"events": {"purchases": ["Order Completed"]}, "properties": {"priceTotal": "revenue"}} }
 * ```
 * - `preset` (`default` | `adobe-source`, default `default`) gives the base fields.
 * - `eventTypes` is merged over the preset table of Mixpanel's standard events (event-types.ts) and the commerce
 *   events (`adobe-source` only writes `eventType` when it is given). An event whose type is overridden loses the
 *   table's counters. `defaultEventType` is the type of every other event (default `mixpanel.event`).
 * - `commerce` (preset `default`): event names counted as purchases / cart adds / checkouts / product views and the
 *   properties read for `commerce.order` and `productListItems` (commerce.ts).
 * - `requireIdentity`: the target dataset is enabled for Profile, so a record without any identity is rejected as
 *   `no-identity` (otherwise it is sent and counted). The primary namespace is the identity with `primary: true`.
 * - `identities`, when given, replaces the preset's list (`[]` writes no identityMap).
 * - `fields` adds mappings. `from` is `event` or `properties.<name>` (a top-level property, the rest of the string
 *   verbatim, dots included). `to` is a path under the tenant object (`_acme.…`, or `_{tenant}.…` to stay portable)
 *   or one of the standard paths in presets.ts; a standard path replaces the preset's mapping of that path.
 * - `drop` and `hash` take `properties.<name>`: dropped values appear nowhere; hashed values appear only as the
 *   lower-case hex SHA-256 of their text (identity, field and properties map alike).
 */
import * as z from 'zod';
import { PRESET_NAMES } from '#common/settings';
import {
  ADOBE_SOURCE_FIELDS,
  AUTHENTICATED_STATES,
  type AuthenticatedState,
  type Conversion,
  DEFAULT_IDENTITIES,
  DEFAULT_PROPERTIES_MAP_PATH,
  DEFAULT_STANDARD_FIELDS,
  DEFAULT_TENANT_FIELDS,
  FALLBACK_EVENT_TYPE,
  FIELD_TYPES,
  fieldTypeOf,
  type PresetField,
  type PresetSource,
  STANDARD_PATHS,
} from './presets.ts';
import { ConnectorError } from '#common/errors';
import { DEFAULT_EVENT_TYPES, type EventRule, eventRulesOf } from './event-types.ts';
import { type CommerceConfig, type CommercePlan, CommerceSchema, commercePlan } from './commerce.ts';

export type { EventRule };

export { PRESET_NAMES };
export type PresetName = (typeof PRESET_NAMES)[number];

/** Values are taken verbatim (event and property names may carry spaces), so no trimming. */
const nonEmpty = z.string().min(1, { error: 'must be a non-empty string' });

const IdentitySchema = z.strictObject({
  from: nonEmpty,
  namespace: nonEmpty,
  primary: z.boolean().optional(),
  authenticatedState: z.enum(AUTHENTICATED_STATES).optional(),
});

const FieldSchema = z.strictObject({
  from: nonEmpty,
  to: nonEmpty,
  type: z.enum(FIELD_TYPES),
});

/** Structure of a mapping config; the rules that span entries are checked by {@link parseMappingConfig}. */
export const MappingConfigSchema = z.strictObject({
  preset: z.enum(PRESET_NAMES).default('default'),
  tenant: nonEmpty.optional(),
  eventTypes: z.record(nonEmpty, nonEmpty).optional(),
  identities: z.array(IdentitySchema).optional(),
  fields: z.array(FieldSchema).optional(),
  drop: z.array(nonEmpty).optional(),
  hash: z.array(nonEmpty).optional(),
  defaultEventType: nonEmpty.optional(),
  commerce: CommerceSchema.optional(),
  requireIdentity: z.boolean().optional(),
});

export type MappingConfig = z.infer<typeof MappingConfigSchema>;

/** A mapping config that cannot be used; `issues` holds one `path: problem` line per problem. */
export class MappingConfigError extends ConnectorError {
  readonly issues: string[];

  /** `options.hint` replaces the closing advice (default: fix the entries in `source`). */
  constructor(source: string, issues: string[], options?: ErrorOptions & { hint?: string }) {
    const hint =
      options?.hint ??
      `Fix these entries in ${source}; the format is described in docs/xdm-mapping.md ("Mapping config").`;
    super('config', `Invalid mapping config (${source}):\n${issues.map((i) => `  - ${i}`).join('\n')}\n${hint}`, {
      ...options,
      hint,
    });
    this.name = 'MappingConfigError';
    this.issues = issues;
  }
}

/**
 * Validates a parsed mapping JSON. `source` names it in the error (a file name, an S3 URI, a preset).
 * Checks the structure, then every rule that spans entries; with `tenant` set, also the tenant-specific paths.
 * @throws MappingConfigError naming every bad path
 */
export function parseMappingConfig(json: unknown, source: string): MappingConfig {
  const parsed = MappingConfigSchema.safeParse(json);
  if (!parsed.success) {
    throw new MappingConfigError(source, parsed.error.issues.flatMap(formatZodIssue), { cause: parsed.error });
  }
  const issues = checkConfig(parsed.data, parsed.data.tenant).issues;
  if (issues.length > 0) throw new MappingConfigError(source, issues);
  return parsed.data;
}

/** The config of a preset, with its defaults written out (a starting point for a custom mapping file). */
export function presetConfig(name: PresetName): MappingConfig {
  if (name === 'default') {
    return {
      preset: 'default',
      eventTypes: { ...DEFAULT_EVENT_TYPES },
      identities: DEFAULT_IDENTITIES.map((i) => ({ ...i })),
      // Written out, so a mapping file started from the preset shows (and can edit) the commerce defaults.
      commerce: structuredClone(commercePlan(undefined)) as CommerceConfig,
      fields: [],
      drop: [],
      hash: [],
    };
  }
  return { preset: 'adobe-source', identities: [], fields: [], drop: [], hash: [] };
}

// ---------------------------------------------------------------------------------------------------------------------
// Resolution into a plan

/** Where a planned field takes its value from. */
export type Source = PresetSource;

export interface FieldPlan {
  /** Output path from the record root, e.g. `['_acme', 'mixpanel', 'eventName']`. */
  path: string[];
  source: Source;
  conversion: Conversion;
  whenAbsent?: boolean;
  /** Under the tenant object (part of the custom field group) or a standard XDM path. */
  custom: boolean;
  /** `$id` of the standard field group defining a standard path. */
  fieldGroup?: string;
  title: string;
  description: string;
}

export interface IdentityPlan {
  /** Property name. */
  key: string;
  namespace: string;
  primary: boolean;
  authenticatedState: AuthenticatedState;
}

/** A mapping config resolved against a tenant: what the mapper writes, in output order. */
export interface MappingPlan {
  preset: PresetName;
  /** Tenant object key, with its underscore (`_acme`). */
  tenantKey: string;
  /** Event name → rule, or null when the record carries no eventType. */
  eventRules: ReadonlyMap<string, EventRule> | null;
  fallbackEventType: string;
  /** Commerce properties to read (preset default), or null. */
  commerce: CommercePlan | null;
  /** Reject records without an identity (`no-identity`). */
  requireIdentity: boolean;
  identities: IdentityPlan[];
  fields: FieldPlan[];
  /** Path of the map of all other properties, or null (preset adobe-source). */
  propertiesMapPath: string[] | null;
  drop: ReadonlySet<string>;
  hash: ReadonlySet<string>;
}

/** `acme` or `_acme` → `acme`. Tenant ids are lower-case letters and digits; underscores are tolerated. */
const TENANT_PATTERN = /^_?([A-Za-z0-9][A-Za-z0-9_]*)$/;
/** Custom field names: alphanumeric or underscore, not starting with an underscore (Adobe, "Define XDM fields in the UI"). */
const FIELD_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_]*$/;
const PROPERTIES_PREFIX = 'properties.';
const TENANT_PLACEHOLDER = '_{tenant}.';

/**
 * Resolves a validated config against the tenant (`acme` or `_acme`; the config's own `tenant` must agree).
 * @throws MappingConfigError when a tenant-specific rule fails (e.g. a `to` under another tenant)
 */
export function resolveMapping(config: MappingConfig, tenant: string, source = 'mapping'): MappingPlan {
  const { issues, plan } = checkConfig(config, tenant);
  if (issues.length > 0 || plan === undefined) throw new MappingConfigError(source, issues);
  return plan;
}

/** Every rule that spans entries; builds the plan when a tenant is known and nothing failed. */
function checkConfig(config: MappingConfig, tenantArg: string | undefined): { issues: string[]; plan?: MappingPlan } {
  const issues: string[] = [];
  let tenant: string | undefined;
  if (tenantArg !== undefined) {
    const m = TENANT_PATTERN.exec(tenantArg);
    if (m?.[1] === undefined) issues.push(`tenant: "${tenantArg}" is not a tenant id (letters, digits, underscores)`);
    else tenant = m[1];
  }
  let ownTenant: string | undefined;
  if (config.tenant !== undefined) {
    ownTenant = TENANT_PATTERN.exec(config.tenant)?.[1];
    if (ownTenant === undefined)
      issues.push(`tenant: "${config.tenant}" is not a tenant id (letters, digits, underscores)`);
    else if (tenant !== undefined && ownTenant.toLowerCase() !== tenant.toLowerCase()) {
      issues.push(
        `tenant: the mapping is written for "${ownTenant}" but the target tenant (AEP_TENANT_ID) is "${tenant}"`,
      );
    }
  }
  /** The tenant `to` paths are checked against, when one is known. */
  const knownTenant = tenant ?? ownTenant;

  const drop = collectPropertyPaths(config.drop, 'drop', issues);
  const hash = collectPropertyPaths(config.hash, 'hash', issues);
  (config.hash ?? []).forEach((path, i) => {
    const key = propertyKey(path);
    if (key !== undefined && drop.has(key))
      issues.push(`hash[${i}]: ${path} is also dropped; remove it from drop or from hash`);
  });

  // Identities
  const identitySpecs = config.identities ?? (config.preset === 'default' ? DEFAULT_IDENTITIES : []);
  const identities: IdentityPlan[] = [];
  let primaryAt = -1;
  identitySpecs.forEach((spec, i) => {
    const key = propertyKey(spec.from);
    if (key === undefined) {
      issues.push(`identities[${i}].from: must be "properties.<name>", got "${spec.from}"`);
      return;
    }
    if (drop.has(key))
      issues.push(`identities[${i}].from: ${spec.from} is dropped; remove it from drop or from identities`);
    if (spec.namespace === '__proto__') issues.push(`identities[${i}].namespace: "__proto__" cannot be a namespace`);
    if (spec.primary === true) {
      if (primaryAt >= 0)
        issues.push(`identities[${i}].primary: only one identity can be primary (identities[${primaryAt}] is)`);
      else primaryAt = i;
    }
    identities.push({
      key,
      namespace: spec.namespace,
      primary: spec.primary === true,
      authenticatedState: spec.authenticatedState ?? 'ambiguous',
    });
  });

  // Preset fields
  const presetTenantFields = config.preset === 'default' ? DEFAULT_TENANT_FIELDS : ADOBE_SOURCE_FIELDS;
  const mapPath = config.preset === 'default' ? DEFAULT_PROPERTIES_MAP_PATH : undefined;
  const standard = new Map<string, FieldPlan>();
  if (config.preset === 'default') {
    for (const { key, path } of DEFAULT_STANDARD_FIELDS) {
      standard.set(path, standardField(path, { kind: 'property', key }, `Mixpanel \`${key}\`.`));
    }
  }
  /** Paths taken below the tenant object; compared lower-cased (custom field names are case-insensitive in XDM). */
  const taken: Array<{ lower: string; path: string; by: string }> = presetTenantFields.map((f) => ({
    lower: f.path.toLowerCase(),
    path: f.path,
    by: `preset ${config.preset}`,
  }));
  if (mapPath !== undefined)
    taken.push({ lower: mapPath.toLowerCase(), path: mapPath, by: `preset ${config.preset} (properties map)` });

  // Custom fields
  const custom: Array<{ relative: string; plan: Omit<FieldPlan, 'path'> }> = [];
  const standardTakenBy = new Map<string, number>();
  (config.fields ?? []).forEach((field, i) => {
    const at = `fields[${i}]`;
    let source: Source | undefined;
    if (field.from === 'event') source = { kind: 'event' };
    else {
      const key = propertyKey(field.from);
      if (key === undefined) issues.push(`${at}.from: must be "event" or "properties.<name>", got "${field.from}"`);
      else {
        source = { kind: 'property', key };
        if (drop.has(key)) issues.push(`${at}.from: ${field.from} is dropped; remove it from drop or from fields`);
        if (hash.has(key) && field.type !== 'string') {
          issues.push(
            `${at}.type: ${field.from} is hashed (a hex string), so the type must be "string", not "${field.type}"`,
          );
        }
      }
    }

    const std = STANDARD_PATHS[field.to];
    if (std !== undefined) {
      const expected = fieldTypeOf(std.conversion);
      if (field.type !== expected)
        issues.push(`${at}.type: ${field.to} is a standard XDM ${expected} field, not ${field.type}`);
      const previous = standardTakenBy.get(field.to);
      if (previous !== undefined) issues.push(`${at}.to: ${field.to} is already mapped by fields[${previous}]`);
      standardTakenBy.set(field.to, i);
      if (source !== undefined) standard.set(field.to, standardField(field.to, source, `From \`${field.from}\`.`));
      return;
    }

    const relative = tenantRelative(field.to, knownTenant);
    if (relative === undefined) {
      const prefix = knownTenant === undefined ? '_{tenant}.' : `_${knownTenant}.`;
      issues.push(
        `${at}.to: must start with ${prefix} (custom fields live under the tenant object) or be a standard path: ` +
          Object.keys(STANDARD_PATHS).join(', '),
      );
      return;
    }
    const segments = relative.split('.');
    const bad = segments.find((s) => !FIELD_NAME_PATTERN.test(s));
    if (bad !== undefined) {
      issues.push(
        `${at}.to: "${bad}" is not a valid XDM field name (letters, digits and underscores, not starting with an underscore)`,
      );
      return;
    }
    const lower = relative.toLowerCase();
    const clash = taken.find(
      (t) => lower === t.lower || lower.startsWith(`${t.lower}.`) || t.lower.startsWith(`${lower}.`),
    );
    if (clash !== undefined) {
      issues.push(
        `${at}.to: ${field.to} collides with ${clash.path} (taken by ${clash.by}); XDM field names are case-insensitive`,
      );
      return;
    }
    taken.push({ lower, path: relative, by: at });
    if (source !== undefined) {
      custom.push({
        relative,
        plan: {
          source,
          conversion: field.type,
          custom: true,
          title: segments[segments.length - 1] ?? relative,
          description: `From \`${field.from}\`.`,
        },
      });
    }
  });

  // Event types: standard events, then commerce events, then the config's own names (which drop the counters).
  let eventRules: Map<string, EventRule> | null = null;
  const commerce = config.preset === 'default' ? commercePlan(config.commerce) : null;
  if (config.preset !== 'default' && config.commerce !== undefined) {
    issues.push('commerce: only preset default writes commerce fields');
  }
  if (config.requireIdentity === true && identitySpecs.length === 0) {
    issues.push('requireIdentity: the mapping has no identities, so every record would be rejected as no-identity');
  }
  if (config.preset === 'default' || config.eventTypes !== undefined) {
    eventRules = eventRulesOf(commerce, config.eventTypes ?? {});
  }

  if (issues.length > 0 || tenant === undefined) return { issues };
  const tenantKey = `_${tenant}`;
  const fields: FieldPlan[] = [
    ...standard.values(),
    ...presetTenantFields.map((f) => tenantField(tenantKey, f)),
    ...custom.map((c) => ({ ...c.plan, path: [tenantKey, ...c.relative.split('.')] })),
  ];
  return {
    issues,
    plan: {
      preset: config.preset,
      tenantKey,
      eventRules,
      fallbackEventType: config.defaultEventType ?? FALLBACK_EVENT_TYPE,
      commerce,
      requireIdentity: config.requireIdentity === true,
      identities,
      fields,
      propertiesMapPath: mapPath === undefined ? null : [tenantKey, ...mapPath.split('.')],
      drop,
      hash,
    },
  };
}

function standardField(path: string, source: Source, description: string): FieldPlan {
  const std = STANDARD_PATHS[path];
  if (std === undefined) throw new Error(`not a standard path: ${path}`);
  return {
    path: path.split('.'),
    source,
    conversion: std.conversion,
    custom: false,
    fieldGroup: std.fieldGroup,
    title: path,
    description,
  };
}

function tenantField(tenantKey: string, f: PresetField): FieldPlan {
  const plan: FieldPlan = {
    path: [tenantKey, ...f.path.split('.')],
    source: f.source,
    conversion: f.conversion,
    custom: true,
    title: f.title,
    description: f.description,
  };
  if (f.whenAbsent !== undefined) plan.whenAbsent = f.whenAbsent;
  return plan;
}

/** `properties.<name>` → name (everything after the prefix, dots included); anything else → undefined. */
function propertyKey(path: string): string | undefined {
  return path.startsWith(PROPERTIES_PREFIX) && path.length > PROPERTIES_PREFIX.length
    ? path.slice(PROPERTIES_PREFIX.length)
    : undefined;
}

function collectPropertyPaths(paths: string[] | undefined, list: string, issues: string[]): Set<string> {
  const keys = new Set<string>();
  (paths ?? []).forEach((path, i) => {
    const key = propertyKey(path);
    if (key === undefined) issues.push(`${list}[${i}]: must be "properties.<name>", got "${path}"`);
    else keys.add(key);
  });
  return keys;
}

/** `_acme.a.b` (or `_{tenant}.a.b`) → `a.b`; when the tenant is unknown yet, any `_<id>.` prefix is accepted. */
function tenantRelative(to: string, tenant: string | undefined): string | undefined {
  if (to.startsWith(TENANT_PLACEHOLDER)) return nonEmptyOrUndefined(to.slice(TENANT_PLACEHOLDER.length));
  if (tenant !== undefined) {
    const prefix = `_${tenant}.`;
    return to.toLowerCase().startsWith(prefix.toLowerCase()) ? nonEmptyOrUndefined(to.slice(prefix.length)) : undefined;
  }
  const dot = to.indexOf('.');
  if (dot < 0 || !TENANT_PATTERN.test(to.slice(0, dot)) || !to.startsWith('_')) return undefined;
  return nonEmptyOrUndefined(to.slice(dot + 1));
}

function nonEmptyOrUndefined(s: string): string | undefined {
  return s.length > 0 ? s : undefined;
}

function formatZodIssue(issue: z.ZodError['issues'][number]): string[] {
  let path = '';
  for (const seg of issue.path) {
    if (typeof seg === 'number') path += `[${seg}]`;
    else if (typeof seg === 'string' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(seg)) path += path === '' ? seg : `.${seg}`;
    else path += `[${JSON.stringify(String(seg))}]`;
  }
  if (issue.code === 'unrecognized_keys') {
    const allowed = path === '' ? Object.keys(MappingConfigSchema.shape).join(', ') : 'see docs/xdm-mapping.md';
    return issue.keys.map((k) => `${path === '' ? k : `${path}.${k}`}: unknown key (allowed: ${allowed})`);
  }
  return [`${path === '' ? '(root)' : path}: ${issue.message}`];
}
