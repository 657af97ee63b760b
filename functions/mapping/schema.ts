/**
 * The XDM custom field group a mapping needs, in the Schema Registry's JSON (POST /tenant/fieldgroups,
 * Adobe "Field groups endpoint": `meta:intendedToExtend`, `definitions` with the fields nested under `_{TENANT_ID}`,
 * and an `allOf` referencing the definition), so a user creates the schema from it instead of by hand.
 * Standard fields (web, environment, device, placeContext, application, commerce…) are not part of it: they come from
 * Adobe's standard field groups, listed by {@link requiredFieldGroups}. `_id`, `timestamp`, `eventType` and
 * `identityMap` come with the XDM ExperienceEvent class; {@link identityNamespaces} lists the identity namespaces
 * the records use (to create in Identity Service before ingesting).
 */
import type { MapperContext } from './mapper.ts';
import { type FieldPlan, type MappingConfig, type MappingPlan, resolveMapping } from './config.ts';
import { COMMERCE_FIELD_GROUP, type Conversion } from './presets.ts';

/** `$id` of the XDM ExperienceEvent class, the class the field group extends. */
export const EXPERIENCE_EVENT_CLASS = 'https://ns.adobe.com/xdm/context/experienceevent';

/**
 * XDM "Long": JSON integer within ±(2^53 − 1) (Adobe, "XDM field type constraints"). Epoch milliseconds do not fit
 * the 32-bit "Integer", so every integer field of the mapping is a Long.
 */
const LONG_RANGE = { minimum: -9007199254740991, maximum: 9007199254740991 } as const;

type JsonSchema = Record<string, unknown>;

interface ObjectNode {
  title?: string;
  description?: string;
  type: 'object';
  properties: Record<string, JsonSchema>;
}

/**
 * Schema Registry custom field group JSON for the fields a mapping writes under `_{tenant}`.
 * @throws MappingConfigError when the config does not resolve for the tenant
 */
export function fieldGroupForMapping(config: MappingConfig, ctx: Pick<MapperContext, 'tenant'>): object {
  const plan = resolveMapping(config, ctx.tenant, `mapping (preset ${config.preset}) for tenant ${ctx.tenant}`);
  const tenantObject: ObjectNode = { type: 'object', properties: {} };
  for (const field of plan.fields) {
    if (field.custom) place(tenantObject, field.path.slice(1), leafSchema(field));
  }
  if (plan.propertiesMapPath !== null) {
    place(tenantObject, plan.propertiesMapPath.slice(1), {
      title: 'Properties',
      description: 'Every other Mixpanel event property, as text (objects and arrays as JSON).',
      type: 'object',
      'meta:xdmType': 'map',
      additionalProperties: { type: 'string' },
    });
  }
  const definition = 'mixpanel';
  const standardGroups = standardFieldGroupsOf(plan);
  return {
    title: config.preset === 'adobe-source' ? 'Mixpanel source fields' : 'Mixpanel events',
    description:
      `Fields written by mixpanel-aep-connector (mapping preset ${plan.preset}) under ${plan.tenantKey}. ` +
      'Add it to an XDM ExperienceEvent schema' +
      (standardGroups.length > 0 ? `, together with the standard field groups ${standardGroups.join(', ')}.` : '.'),
    type: 'object',
    'meta:intendedToExtend': [EXPERIENCE_EVENT_CLASS],
    definitions: {
      [definition]: { properties: { [plan.tenantKey]: tenantObject } },
    },
    allOf: [{ $ref: `#/definitions/${definition}` }],
  };
}

/** `$id`s of the standard field groups whose fields the mapping writes (add them to the schema too). */
export function standardFieldGroupsForMapping(config: MappingConfig, ctx: Pick<MapperContext, 'tenant'>): string[] {
  return standardFieldGroupsOf(resolveMapping(config, ctx.tenant));
}

/** Tenant used to resolve a config when only its tenant-independent parts are asked for. */
const ANY_TENANT = 'tenant';

/**
 * `$id`s of the standard ExperienceEvent field groups a schema needs for everything this mapping can write (standard
 * fields, event-type counters, commerce). The tenant does not change them; the config's own tenant is used if set.
 * @throws MappingConfigError when the config does not resolve
 */
export function requiredFieldGroups(config: MappingConfig, tenant?: string): string[] {
  return standardFieldGroupsOf(resolveMapping(config, tenant ?? tenantOf(config)));
}

/**
 * The tenant to resolve a config with when the caller does not know it: the config's own, else the one its custom
 * fields are written for (`_acme.…`), else a placeholder (then only `_{tenant}.…` paths resolve).
 */
function tenantOf(config: MappingConfig): string {
  if (config.tenant !== undefined) return config.tenant;
  for (const field of config.fields ?? []) {
    const m = /^_([A-Za-z0-9_]+)\./.exec(field.to);
    if (m?.[1] !== undefined) return m[1];
  }
  return ANY_TENANT;
}

/** An identity namespace the records use: create it (custom namespace) before ingesting. */
export interface IdentityNamespace {
  /** Identity symbol (the identityMap key). */
  code: string;
  /** The Mixpanel property it is read from. */
  from: string;
  /** Primary identity of the records (Real-Time Profile's key when present). */
  primary: boolean;
  authenticatedState: string;
}

/**
 * The identity namespaces of a mapping, in identityMap order, one per namespace (the first mapping that names it).
 * @throws MappingConfigError when the config does not resolve
 */
export function identityNamespaces(config: MappingConfig): IdentityNamespace[] {
  const plan = resolveMapping(config, tenantOf(config));
  const out: IdentityNamespace[] = [];
  for (const i of plan.identities) {
    const known = out.find((n) => n.code === i.namespace);
    if (known !== undefined) {
      known.primary ||= i.primary;
      continue;
    }
    const from = `properties.${i.key}`;
    out.push({ code: i.namespace, from, primary: i.primary, authenticatedState: i.authenticatedState });
  }
  return out;
}

function standardFieldGroupsOf(plan: MappingPlan): string[] {
  const groups = new Set<string>();
  for (const field of plan.fields) if (field.fieldGroup !== undefined) groups.add(field.fieldGroup);
  for (const rule of plan.eventRules?.values() ?? []) for (const c of rule.constants) groups.add(c.fieldGroup);
  if (plan.commerce !== null) groups.add(COMMERCE_FIELD_GROUP);
  return [...groups];
}

function place(root: ObjectNode, path: readonly string[], leaf: JsonSchema): void {
  let node = root;
  for (let i = 0; i < path.length - 1; i++) {
    const key = path[i] as string;
    let child = node.properties[key] as ObjectNode | undefined;
    if (child === undefined) {
      child = { title: key === 'mixpanel' ? 'Mixpanel' : key, type: 'object', properties: {} };
      node.properties[key] = child as unknown as JsonSchema;
    }
    node = child;
  }
  node.properties[path[path.length - 1] as string] = leaf;
}

function leafSchema(field: FieldPlan): JsonSchema {
  return { title: field.title, description: field.description, ...typeSchema(field.conversion) };
}

function typeSchema(conversion: Conversion): JsonSchema {
  switch (conversion) {
    case 'integer':
    case 'whole':
    case 'epoch-seconds':
      return { type: 'integer', ...LONG_RANGE };
    case 'number':
      return { type: 'number' };
    case 'boolean':
      return { type: 'boolean' };
    case 'date-time':
      return { type: 'string', format: 'date-time' };
    case 'uri':
      return { type: 'string', format: 'uri' };
    default:
      return { type: 'string' };
  }
}

/** Identity Service namespace types (identity-service.yaml `namespaceCreate.idType`). */
export type IdentityNamespaceType = 'Cookie' | 'Cross_device' | 'Device' | 'Email' | 'Mobile' | 'Non_people' | 'Phone';

/** An identity namespace the mapping writes into `identityMap`. */
export interface MappingNamespace {
  /** Namespace code (the `identityMap` key). */
  readonly code: string;
  readonly primary: boolean;
  /** Type to create it with when the sandbox does not have it yet. */
  readonly idType: IdentityNamespaceType;
  /** The Mixpanel property its value comes from. */
  readonly property: string;
  /**
   * JSON pointer of the tenant field that holds the same value (`/_acme/mixpanel/distinctId`), where an identity
   * descriptor can mark it; absent when the mapping keeps the value only in `identityMap`.
   */
  readonly sourceProperty?: string;
}

/**
 * The identity namespaces to provision for the mapping, primary first, each with its Identity Service type and the
 * tenant field carrying its value if any (what an identity descriptor marks).
 */
export function namespacesToProvision(config: MappingConfig, ctx: Pick<MapperContext, 'tenant'>): MappingNamespace[] {
  const plan = resolveMapping(config, ctx.tenant);
  const out = plan.identities.map((identity): MappingNamespace => {
    const field = plan.fields.find(
      (f) => f.custom && f.source.kind === 'property' && f.source.key === identity.key && f.conversion === 'string',
    );
    return {
      code: identity.namespace,
      primary: identity.primary,
      // Device ids identify a device; distinct ids and user ids follow a person across devices.
      idType: /device/i.test(identity.namespace) ? 'Device' : 'Cross_device',
      property: identity.key,
      ...(field === undefined ? {} : { sourceProperty: `/${field.path.join('/')}` }),
    };
  });
  return out.sort((a, b) => Number(b.primary) - Number(a.primary));
}
