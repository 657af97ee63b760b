/**
 * The pure parts of provisioning: which namespaces and field groups the mapping needs, and the additive comparison
 * of the tenant field group with the one the Schema Registry holds.
 */
import { describe, expect, it } from 'vitest';
import { compareFieldGroups } from '#aep/provision/field-group';
import { presetConfig } from '#mapping/config';
import { fieldGroupForMapping, namespacesToProvision, requiredFieldGroups } from '#mapping/schema';

type Json = Record<string, unknown>;

const PLAN_FIELD = { from: 'properties.plan', to: '_acme.mixpanel.plan', type: 'string' as const };
const withPlan = { ...presetConfig('default'), fields: [PLAN_FIELD] };

describe('namespacesToProvision', () => {
  it('should list the default namespaces, primary first, with the tenant field carrying the primary id', () => {
    // Act
    const namespaces = namespacesToProvision(presetConfig('default'), { tenant: 'acme' });

    // Assess
    expect(namespaces).toEqual([
      {
        code: 'MixpanelDistinctId',
        primary: true,
        idType: 'Cross_device',
        property: 'distinct_id',
        sourceProperty: '/_acme/mixpanel/distinctId',
      },
      { code: 'MixpanelDeviceId', primary: false, idType: 'Device', property: '$device_id' },
      { code: 'MixpanelUserId', primary: false, idType: 'Cross_device', property: '$user_id' },
    ]);
  });

  it('should list none for the adobe-source preset, which writes no identityMap', () => {
    expect(namespacesToProvision(presetConfig('adobe-source'), { tenant: 'acme' })).toEqual([]);
  });
});

describe('requiredFieldGroups', () => {
  it('should name every standard field group the default preset writes to', () => {
    expect(requiredFieldGroups(presetConfig('default')).sort()).toEqual([
      'https://ns.adobe.com/xdm/context/experienceevent-application',
      'https://ns.adobe.com/xdm/context/experienceevent-commerce',
      'https://ns.adobe.com/xdm/context/experienceevent-environment-details',
      'https://ns.adobe.com/xdm/context/experienceevent-marketing',
      'https://ns.adobe.com/xdm/context/experienceevent-search',
      'https://ns.adobe.com/xdm/context/experienceevent-web',
    ]);
  });
});

describe('compareFieldGroups', () => {
  const base = fieldGroupForMapping(presetConfig('default'), { tenant: 'acme' }) as Json;

  it('should see the same field group through the attributes the registry adds', () => {
    // Prepare: the registry's copy carries ids and a meta:xdmType on every field
    const text = JSON.stringify(base).replace(/"type":"string"/g, '"type":"string","meta:xdmType":"string"');
    const stored = JSON.parse(text) as Json;

    // Act / Assess
    expect(compareFieldGroups(base, { ...stored, $id: 'x', version: '1.0' })).toEqual({ kind: 'same' });
  });

  it('should extend with the new field and keep the fields the mapping no longer writes', () => {
    // Prepare: the stored group has a field the mapping dropped since
    const stored = structuredClone(base);
    const definition = (stored.definitions as Json).mixpanel as Json;
    const mixpanel = ((definition.properties as Json)._acme as Json).properties as Json;
    ((mixpanel.mixpanel as Json).properties as Json).legacy = { type: 'string' };

    // Act
    const result = compareFieldGroups(fieldGroupForMapping(withPlan, { tenant: 'acme' }) as Json, stored);

    // Assess
    expect(result.kind).toBe('extend');
    if (result.kind !== 'extend') return;
    expect(result.added).toEqual(['/_acme/mixpanel/plan']);
    expect(JSON.stringify(result.merged)).toContain('"legacy"');
    expect(JSON.stringify(result.merged)).toContain('"plan"');
  });

  it('should report a field whose type changed as a conflict', () => {
    // Prepare
    const stored = fieldGroupForMapping(withPlan, { tenant: 'acme' }) as Json;
    const retyped = { ...withPlan, fields: [{ ...withPlan.fields[0]!, type: 'boolean' as const }] };

    // Act
    const result = compareFieldGroups(fieldGroupForMapping(retyped, { tenant: 'acme' }) as Json, stored);

    // Assess
    const conflict = '/_acme/mixpanel/plan: the field group has string, the mapping writes boolean';
    expect(result).toEqual({ kind: 'conflict', conflicts: [conflict] });
  });
});
