/**
 * XDM allows only additive changes to a field group once it is in use (help/xdm/schema/composition.md, "Schema
 * evolution": fields may be added, not removed, renamed or retyped). This module compares the field group the mapping
 * needs with the one the registry holds and says whether it is the same, can be extended, or conflicts.
 */

type Json = Record<string, unknown>;

export type FieldGroupComparison =
  | { readonly kind: 'same' }
  /** `merged` keeps every existing field and adds `added` (JSON pointers under the tenant object). */
  | { readonly kind: 'extend'; readonly added: readonly string[]; readonly merged: Json }
  /** Fields whose type differs: XDM refuses the change, so the provisioner does too. */
  | { readonly kind: 'conflict'; readonly conflicts: readonly string[] };

/** The attributes that make a field's type; titles and descriptions may change freely. */
const TYPE_KEYS = ['type', 'format', 'meta:xdmType', 'minimum', 'maximum', 'pattern'] as const;

/**
 * Compares the `definitions` of the wanted field group with the existing one.
 * @param wanted the body {@link fieldGroupForMapping} builds
 * @param existing the field group as the registry returned it
 */
export function compareFieldGroups(wanted: Json, existing: Json): FieldGroupComparison {
  const added: string[] = [];
  const conflicts: string[] = [];
  const mergedDefinitions = structuredClone(asObject(existing.definitions));
  const wantedDefinitions = asObject(wanted.definitions);
  for (const [name, definition] of Object.entries(wantedDefinitions)) {
    const target = asObject(mergedDefinitions[name]);
    mergedDefinitions[name] = target;
    const wantedProperties = asObject(asObject(definition).properties);
    target.properties = mergeProperties(wantedProperties, asObject(target.properties), '', added, conflicts);
  }
  if (conflicts.length > 0) return { kind: 'conflict', conflicts };
  if (added.length === 0) return { kind: 'same' };
  return { kind: 'extend', added, merged: { ...wanted, definitions: mergedDefinitions } };
}

function mergeProperties(wanted: Json, existing: Json, at: string, added: string[], conflicts: string[]): Json {
  const out: Json = { ...existing };
  for (const [key, schema] of Object.entries(wanted)) {
    const pointer = `${at}/${key}`;
    const have = existing[key];
    if (have === undefined) {
      out[key] = schema;
      added.push(pointer);
      continue;
    }
    const w = asObject(schema);
    const h = asObject(have);
    const wantsObject = w.properties !== undefined;
    const hasObject = h.properties !== undefined;
    if (wantsObject && hasObject) {
      const merged = mergeProperties(asObject(w.properties), asObject(h.properties), pointer, added, conflicts);
      out[key] = { ...h, properties: merged };
      continue;
    }
    // Only what the mapping states is compared: the registry adds attributes of its own (`meta:xdmType` everywhere).
    const retyped = TYPE_KEYS.some((k) => w[k] !== undefined && JSON.stringify(w[k]) !== JSON.stringify(h[k]));
    const differs = wantsObject !== hasObject || retyped;
    if (differs) conflicts.push(`${pointer}: the field group has ${describe(h)}, the mapping writes ${describe(w)}`);
  }
  return out;
}

function describe(schema: Json): string {
  if (schema.properties !== undefined) return 'an object';
  const type = String(schema['meta:xdmType'] ?? schema.type ?? 'no type');
  return schema.format === undefined ? type : `${type} (${String(schema.format)})`;
}

function asObject(value: unknown): Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value) ? (value as Json) : {};
}
