import { describe, expect, it } from 'vitest';
import {
  compileMapper,
  MappingConfigError,
  type MapperContext,
  parseMappingConfig,
  presetConfig,
} from '#mapping/index';
import { DEFAULT_COMMERCE } from '#mapping/commerce';

const CTX: MapperContext = { projectId: '2195193', tenant: 'acme', projectTimezone: 'UTC', legacyLocalTime: false };

function issuesOf(action: () => unknown): string[] {
  try {
    action();
  } catch (error) {
    if (error instanceof MappingConfigError) return error.issues;
    throw error;
  }
  throw new Error('expected a MappingConfigError');
}

describe('parseMappingConfig', () => {
  it('should accept both presets as written out by presetConfig', () => {
    // Act
    const configs = (['default', 'adobe-source'] as const).map((name) => parseMappingConfig(presetConfig(name), name));

    // Assess
    expect(configs[0]).toEqual(presetConfig('default'));
    expect(configs[0]?.identities).toHaveLength(3);
    expect(configs[0]?.commerce).toEqual(DEFAULT_COMMERCE);
    expect(configs[1]).toEqual(presetConfig('adobe-source'));
  });

  it('should default the preset and accept the documented example', () => {
    // Act
    const config = parseMappingConfig(
      {
        tenant: 'acme',
        eventTypes: { 'Order Completed': 'commerce.purchases' },
        identities: [{ from: 'properties.distinct_id', namespace: 'MixpanelDistinctId', primary: true }],
        fields: [{ from: 'properties.plan', to: '_acme.mixpanel.plan', type: 'string' }],
        drop: ['properties.$email'],
        hash: ['properties.email'],
      },
      'mapping.json',
    );

    // Assess
    expect(config.preset).toBe('default');
    expect(config.fields).toEqual([{ from: 'properties.plan', to: '_acme.mixpanel.plan', type: 'string' }]);
  });

  it('should name every structurally bad path in one error', () => {
    // Act
    const issues = issuesOf(() =>
      parseMappingConfig(
        {
          preset: 'minimal',
          colour: 'blue',
          fields: [
            { from: 'properties.plan', to: '_acme.plan', type: 'text' },
            { from: 5, to: '_acme.x', type: 'string' },
          ],
          identities: [{ from: 'properties.id', namespace: '' }],
          eventTypes: { 'Order Completed': '' },
        },
        'mapping.json',
      ),
    );

    // Assess
    expect(issues).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^preset: Invalid option: expected one of "default"\|"adobe-source"/),
        expect.stringMatching(
          /^colour: unknown key \(allowed: preset, tenant, eventTypes, identities, fields, drop, hash, defaultEventType, commerce, requireIdentity\)/,
        ),
        expect.stringMatching(/^fields\[0\]\.type: /),
        expect.stringMatching(/^fields\[1\]\.from: /),
        'identities[0].namespace: must be a non-empty string',
        'eventTypes["Order Completed"]: must be a non-empty string',
      ]),
    );
    expect(issues).toHaveLength(6);
  });

  it('should name every bad path of the rules across entries and say what to do', () => {
    // Act
    const action = () =>
      parseMappingConfig(
        {
          tenant: 'acme',
          identities: [
            { from: 'properties.distinct_id', namespace: 'A', primary: true },
            { from: 'distinct_id', namespace: 'B' },
            { from: 'properties.$device_id', namespace: 'C', primary: true },
            { from: 'properties.$email', namespace: 'D' },
          ],
          fields: [
            { from: 'properties.plan', to: '_other.plan', type: 'string' },
            { from: 'properties.plan', to: '_acme.Mixpanel.EventName', type: 'string' },
            { from: 'properties.plan', to: '_acme.mixpanel.properties.plan', type: 'string' },
            { from: 'properties.email', to: '_acme.emailHash', type: 'integer' },
            { from: 'properties.w', to: 'device.screenWidth', type: 'string' },
            { from: 'properties.x', to: '_acme.bad-name', type: 'string' },
            { from: 'time', to: '_acme.t', type: 'integer' },
          ],
          drop: ['properties.$email', '$os'],
          hash: ['properties.email', 'properties.$email'],
        },
        'mapping.json',
      );
    const issues = issuesOf(action);

    // Assess
    expect(issues).toEqual([
      'drop[1]: must be "properties.<name>", got "$os"',
      'hash[1]: properties.$email is also dropped; remove it from drop or from hash',
      'identities[1].from: must be "properties.<name>", got "distinct_id"',
      'identities[2].primary: only one identity can be primary (identities[0] is)',
      'identities[3].from: properties.$email is dropped; remove it from drop or from identities',
      expect.stringMatching(
        /^fields\[0\]\.to: must start with _acme\. \(custom fields live under the tenant object\) or be a standard path: web\.webPageDetails\.URL, /,
      ),
      'fields[1].to: _acme.Mixpanel.EventName collides with mixpanel.eventName (taken by preset default); XDM field names are case-insensitive',
      'fields[2].to: _acme.mixpanel.properties.plan collides with mixpanel.properties (taken by preset default (properties map)); XDM field names are case-insensitive',
      'fields[3].type: properties.email is hashed (a hex string), so the type must be "string", not "integer"',
      'fields[4].type: device.screenWidth is a standard XDM integer field, not string',
      'fields[5].to: "bad-name" is not a valid XDM field name (letters, digits and underscores, not starting with an underscore)',
      'fields[6].from: must be "event" or "properties.<name>", got "time"',
    ]);
    expect(action).toThrow(/^Invalid mapping config \(mapping\.json\):\n {2}- drop\[1\]/);
    expect(action).toThrow(/Fix these entries in mapping\.json/);
  });

  it('should reject two fields writing the same path', () => {
    // Act
    const issues = issuesOf(() =>
      parseMappingConfig(
        {
          fields: [
            { from: 'properties.a', to: '_{tenant}.plan', type: 'string' },
            { from: 'properties.b', to: '_{tenant}.PLAN', type: 'string' },
            { from: 'properties.c', to: 'web.webPageDetails.name', type: 'string' },
            { from: 'properties.d', to: 'web.webPageDetails.name', type: 'string' },
          ],
        },
        'mapping.json',
      ),
    );

    // Assess
    expect(issues).toEqual([
      'fields[1].to: _{tenant}.PLAN collides with plan (taken by fields[0]); XDM field names are case-insensitive',
      'fields[3].to: web.webPageDetails.name is already mapped by fields[2]',
    ]);
  });
});

describe('compileMapper config checks', () => {
  it('should check tenant paths against the target tenant when the config has none', () => {
    // Prepare
    const config = parseMappingConfig(
      { fields: [{ from: 'properties.plan', to: '_acme.plan', type: 'string' }] },
      'mapping.json',
    );

    // Act
    const forAcme = () => compileMapper(config, { ...CTX, tenant: '_acme' });
    const forOther = issuesOf(() => compileMapper(config, { ...CTX, tenant: 'other' }));

    // Assess
    expect(forAcme).not.toThrow();
    expect(forOther).toEqual([expect.stringMatching(/^fields\[0\]\.to: must start with _other\. /)]);
  });

  it('should refuse a mapping written for another tenant than AEP_TENANT_ID', () => {
    // Act
    const issues = issuesOf(() =>
      compileMapper(parseMappingConfig({ tenant: 'acme' }, 'mapping.json'), { ...CTX, tenant: 'globex' }),
    );

    // Assess
    expect(issues).toEqual([
      'tenant: the mapping is written for "acme" but the target tenant (AEP_TENANT_ID) is "globex"',
    ]);
  });

  it('should name bad context values', () => {
    // Act
    const issues = issuesOf(() =>
      compileMapper(presetConfig('default'), { ...CTX, projectId: '', maxRecordBytes: -1 }),
    );

    // Assess
    expect(issues).toEqual([
      'MIXPANEL_PROJECT_ID: must be a non-empty project id',
      'maxRecordBytes: must be a positive integer, got -1',
    ]);
  });
});
