import { describe, expect, it } from 'vitest';
import {
  EXPERIENCE_EVENT_CLASS,
  fieldGroupForMapping,
  parseMappingConfig,
  presetConfig,
  standardFieldGroupsForMapping,
} from '#mapping/index';

type Json = Record<string, unknown>;

/** The `_{tenant}` object schema of a field group. */
function tenantSchema(group: object, tenantKey: string): Json {
  const definitions = (group as Json).definitions as Record<string, { properties: Json }>;
  const [definition] = Object.values(definitions);
  return definition?.properties[tenantKey] as Json;
}

/** `path → type` of every leaf below an object schema (`format` appended, maps shown as map<type>). */
function leafTypes(schema: Json, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, child] of Object.entries((schema.properties ?? {}) as Record<string, Json>)) {
    const path = `${prefix}${key}`;
    if (child['meta:xdmType'] === 'map') out[path] = `map<${(child.additionalProperties as Json).type as string}>`;
    else if (child.type === 'object') Object.assign(out, leafTypes(child, `${path}.`));
    else
      out[path] =
        child.format === undefined ? (child.type as string) : `${child.type as string}/${child.format as string}`;
  }
  return out;
}

describe('fieldGroupForMapping', () => {
  it('should describe _{tenant}.mixpanel.* of the default preset with XDM types', () => {
    // Act
    const group = fieldGroupForMapping(presetConfig('default'), { tenant: 'acme' });

    // Assess
    expect(group).toMatchObject({
      type: 'object',
      'meta:intendedToExtend': [EXPERIENCE_EVENT_CLASS],
      allOf: [{ $ref: '#/definitions/mixpanel' }],
    });
    expect(leafTypes(tenantSchema(group, '_acme'))).toEqual({
      'mixpanel.eventName': 'string',
      'mixpanel.distinctId': 'string',
      'mixpanel.insertId': 'string',
      'mixpanel.time': 'integer',
      'mixpanel.processingTimeMs': 'integer',
      'mixpanel.apiTimestampMs': 'integer',
      'mixpanel.apiEndpoint': 'string',
      'mixpanel.import': 'boolean',
      'mixpanel.projectId': 'string',
      'mixpanel.properties': 'map<string>',
    });
    expect(((tenantSchema(group, '_acme').properties as Json).mixpanel as Json).properties).toMatchObject({
      time: { type: 'integer', minimum: -9007199254740991, maximum: 9007199254740991 },
    });
    expect(group).toMatchSnapshot();
  });

  it('should add configured custom fields and leave standard paths to their standard field groups', () => {
    // Prepare
    const config = parseMappingConfig(
      {
        preset: 'default',
        fields: [
          { from: 'properties.plan', to: '_{tenant}.mixpanel.plan', type: 'string' },
          { from: 'properties.seats', to: '_acme.account.seats', type: 'integer' },
          { from: 'properties.Price', to: '_acme.account.price', type: 'number' },
          { from: 'properties.trial', to: '_acme.account.trial', type: 'boolean' },
          { from: 'properties.signed_up', to: '_acme.account.signedUpAt', type: 'date-time' },
          { from: 'event', to: 'web.webPageDetails.name', type: 'string' },
        ],
      },
      'mapping.json',
    );

    // Act
    const types = leafTypes(tenantSchema(fieldGroupForMapping(config, { tenant: '_acme' }), '_acme'));

    // Assess
    expect(types).toMatchObject({
      'mixpanel.plan': 'string',
      'account.seats': 'integer',
      'account.price': 'number',
      'account.trial': 'boolean',
      'account.signedUpAt': 'string/date-time',
    });
    expect(Object.keys(types).some((path) => path.startsWith('web'))).toBe(false);
    expect(standardFieldGroupsForMapping(config, { tenant: 'acme' })).toEqual([
      'https://ns.adobe.com/xdm/context/experienceevent-web',
      'https://ns.adobe.com/xdm/context/experienceevent-environment-details',
      'https://ns.adobe.com/xdm/context/experienceevent-application',
      'https://ns.adobe.com/xdm/context/experienceevent-marketing',
      'https://ns.adobe.com/xdm/context/experienceevent-search',
      'https://ns.adobe.com/xdm/context/experienceevent-commerce',
    ]);
  });

  it('should describe exactly the eleven Adobe fields for adobe-source, with no standard field group', () => {
    // Act
    const group = fieldGroupForMapping(presetConfig('adobe-source'), { tenant: 'acme' });

    // Assess
    expect(leafTypes(tenantSchema(group, '_acme'))).toEqual({
      distinct_id: 'string',
      event_name: 'string',
      import: 'boolean',
      insert_id: 'string',
      item_id: 'string',
      item_name: 'string',
      item_price: 'string',
      mp_api_endpoint: 'string',
      mp_api_timestamp_ms: 'integer',
      mp_processing_time_ms: 'integer',
      time: 'integer',
    });
    expect(standardFieldGroupsForMapping(presetConfig('adobe-source'), { tenant: 'acme' })).toEqual([]);
  });
});
