import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  compileMapper,
  type MapOutcome,
  type MapperContext,
  MAX_RECORD_BYTES,
  parseMappingConfig,
  presetConfig,
  type XdmRecord,
} from '#mapping/index';

/**
 * The ten sample events of Adobe's Mixpanel source API tutorial, as raw export lines (shared fixture
 * adobe-doc-sample.jsonl). `$insert_id` repeats across different events; events 6 and 10 carry `"$import": true`.
 */
const ADOBE_DOC_SAMPLE = `
{"event":"Items purchased","properties":{"time":1652825148,"distinct_id":"test@test.com","$insert_id":"935d87b1-00cd-41b7-be34-b9d98dd08b70","$mp_api_endpoint":"api.mixpanel.com","$mp_api_timestamp_ms":1652850348643,"item_id":"29066","item_name":"charger","item_price":"800.00","mp_processing_time_ms":1652850348702}}
{"event":"Items sold","properties":{"time":1652423938,"distinct_id":"test@test.com","$insert_id":"935d87b1-00cd-41b7-be34-b9d98dd08b70","$mp_api_endpoint":"api.mixpanel.com","$mp_api_timestamp_ms":1652449138115,"item_id":"29036","item_name":"chair","item_price":"5000.00","mp_processing_time_ms":1652449138173}}
{"event":"Items sold","properties":{"time":1652854256,"distinct_id":"test@test.com","$insert_id":"935d87b1-00cd-41b7-be34-b9d98dd08b70","$mp_api_endpoint":"api.mixpanel.com","$mp_api_timestamp_ms":1652879456538,"item_id":"29066","item_name":"mobile","item_price":"7000.00","mp_processing_time_ms":1652879456604}}
{"event":"Sign off","properties":{"time":1648140611,"distinct_id":"test@test.com","$insert_id":"935d87b1-00cd-41b7-be34-b9d98dd08b75","$mp_api_endpoint":"api.mixpanel.com","$mp_api_timestamp_ms":1648555709515,"item_id":"29073","item_name":"Watch","item_price":"50000.00","mp_processing_time_ms":1648555710375}}
{"event":"Items sold","properties":{"time":1648140612,"distinct_id":"test@test.com","$insert_id":"935d87b1-00cd-41b7-be34-b9d98dd08b75","$mp_api_endpoint":"api.mixpanel.com","$mp_api_timestamp_ms":1648556481708,"item_id":"29073","item_name":"Pen","item_price":"1000.00","mp_processing_time_ms":1648556481880}}
{"event":"Sign in","properties":{"time":1648140614,"distinct_id":"test1@test.com","$import":true,"$insert_id":"935d87b1-00cd-41b7-be34-b9d98dd08b75","$mp_api_endpoint":"api.mixpanel.com","$mp_api_timestamp_ms":1648556032401,"item_id":"29073","item_name":"Watch","item_price":"50000.00","mp_processing_time_ms":1648556032462}}
{"event":"Item Purchased","properties":{"time":1648165814,"distinct_id":"test1@test.com","$insert_id":"935d87b1-00cd-41b7-be34-b9d98dd08b74","$mp_api_endpoint":"api.mixpanel.com","$mp_api_timestamp_ms":1648480684785,"item_id":"29073","item_name":"Watch","item_price":"50000.00","mp_processing_time_ms":1648480685058}}
{"event":"Item Purchased","properties":{"time":1648165814,"distinct_id":"test1@test.com","$insert_id":"935d87b1-00cd-41b7-be34-b9d98dd08b75","$mp_api_endpoint":"api.mixpanel.com","$mp_api_timestamp_ms":1648551687866,"item_id":"29073","item_name":"Watch","item_price":"50000.00","mp_processing_time_ms":1648551687922}}
{"event":"Sign off","properties":{"time":1648530419,"distinct_id":"test1@test.com","$insert_id":"935d87b1-00cd-41b7-be34-b9d98dd08b75","$mp_api_endpoint":"api.mixpanel.com","$mp_api_timestamp_ms":1648555619274,"item_id":"29073","item_name":"Watch","item_price":"50000.00","mp_processing_time_ms":1648555619326}}
{"event":"Items sold","properties":{"time":1648566534,"distinct_id":"test1@test.com","$import":true,"$insert_id":"935d87b1-00cd-41b7-be34-b9d98dd08b75","$mp_api_endpoint":"api.mixpanel.com","$mp_api_timestamp_ms":1648635830114,"item_id":"29073","item_name":"Pen","item_price":"1000.00","mp_processing_time_ms":1648635831010}}
`
  .trim()
  .split('\n');

const CTX: MapperContext = { projectId: '2195193', tenant: 'acme', projectTimezone: 'UTC', legacyLocalTime: false };
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

type Json = Record<string, unknown>;

function mapped(outcome: MapOutcome): { id: string; record: XdmRecord; json: string } {
  if (!outcome.ok) throw new Error(`expected a record, got ${outcome.reason}: ${outcome.detail}`);
  return outcome;
}

function mixpanelOf(record: XdmRecord): Json {
  return (record._acme as Json).mixpanel as Json;
}

function propertiesMapOf(record: XdmRecord): Json | undefined {
  return mixpanelOf(record).properties as Json | undefined;
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

/** Every place in a value where XDM would see null or an empty value. */
function emptyPaths(value: unknown, path = '$'): string[] {
  if (value === null || value === '' || value === undefined) return [path];
  if (Array.isArray(value)) {
    return value.length === 0 ? [path] : value.flatMap((v, i) => emptyPaths(v, `${path}[${i}]`));
  }
  if (typeof value === 'object') {
    const entries = Object.entries(value as Json);
    return entries.length === 0 ? [path] : entries.flatMap(([k, v]) => emptyPaths(v, `${path}.${k}`));
  }
  return [];
}

/** Seeded PRNG (mulberry32) so generated events are the same on every run. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A web event with every default property the default preset maps, plus custom ones. */
function webEvent(overrides: Json = {}, event = '$mp_web_page_view'): Json {
  return {
    event,
    properties: {
      time: 1717243200,
      distinct_id: 'user-42',
      $device_id: '18f3a2b4-device',
      $user_id: 'user-42',
      $insert_id: 'a1b2c3d4e5f6',
      $current_url: 'https://shop.example.com/products/42?utm_source=google',
      $referrer: 'https://www.google.com/',
      $browser: 'Chrome',
      $browser_version: 125,
      $os: 'Mac OS X',
      $os_version: '14.5',
      $model: 'MacBookPro18,3',
      $manufacturer: 'Apple',
      $screen_width: 1920,
      $screen_height: '1080',
      mp_country_code: 'FR',
      $city: 'Paris',
      $region: 'Ile-de-France',
      mp_processing_time_ms: 1717243201234,
      $mp_api_endpoint: 'api-js.mixpanel.com',
      $mp_api_timestamp_ms: 1717243200987,
      mp_lib: 'web',
      'Product ID': 'sku-42',
      Price: 19.99,
      Items: [{ sku: 'a', qty: 2 }],
      ...overrides,
    },
  };
}

const defaultMapper = compileMapper(presetConfig('default'), CTX);
const adobeMapper = compileMapper(presetConfig('adobe-source'), CTX);

describe('mapper on the Adobe doc sample', () => {
  it('should give the ten events ten distinct, stable _ids although $insert_id repeats', () => {
    // Prepare
    const events = ADOBE_DOC_SAMPLE.map((line) => JSON.parse(line) as unknown);

    // Act
    const ids = events.map((e) => mapped(defaultMapper(e)).id);
    const again = events.map((e) => mapped(compileMapper(presetConfig('default'), CTX)(structuredClone(e))).id);

    // Assess
    expect(new Set(ids).size).toBe(10);
    expect(again).toEqual(ids);
    for (const id of ids) expect(id).toMatch(UUID);
    expect(ids.slice(0, 2)).toMatchInlineSnapshot(`
      [
        "86c1188b-b5e6-8fda-b5de-c3471a38858d",
        "72f13967-e2fe-8c6c-b8fb-012ce75015d0",
      ]
    `);
  });

  it('should give the same _id whatever the preset, and a different one for another project', () => {
    // Prepare
    const event = JSON.parse(ADOBE_DOC_SAMPLE[0] as string) as unknown;

    // Act
    const viaDefault = mapped(defaultMapper(event)).id;
    const viaAdobe = mapped(adobeMapper(event)).id;
    const otherProject = mapped(compileMapper(presetConfig('default'), { ...CTX, projectId: '999' })(event)).id;

    // Assess
    expect(viaAdobe).toBe(viaDefault);
    expect(otherProject).not.toBe(viaDefault);
  });

  it('should set timestamp to the event time in ISO 8601 UTC with milliseconds', () => {
    // Act
    const timestamps = ADOBE_DOC_SAMPLE.map((line) => mapped(defaultMapper(JSON.parse(line))).record.timestamp);

    // Assess
    expect(timestamps).toEqual([
      '2022-05-17T22:05:48.000Z',
      '2022-05-13T06:38:58.000Z',
      '2022-05-18T06:10:56.000Z',
      '2022-03-24T16:50:11.000Z',
      '2022-03-24T16:50:12.000Z',
      '2022-03-24T16:50:14.000Z',
      '2022-03-24T23:50:14.000Z',
      '2022-03-24T23:50:14.000Z',
      '2022-03-29T05:06:59.000Z',
      '2022-03-29T15:08:54.000Z',
    ]);
  });

  it('should give adobe-source exactly the eleven Adobe fields with their types', () => {
    // Act
    const records = ADOBE_DOC_SAMPLE.map((line) => mapped(adobeMapper(JSON.parse(line))).record);

    // Assess
    for (const record of records) {
      expect(Object.keys(record)).toEqual(['_id', 'timestamp', '_acme']);
      const fields = record._acme as Json;
      expect(Object.keys(fields).sort()).toEqual([
        'distinct_id',
        'event_name',
        'import',
        'insert_id',
        'item_id',
        'item_name',
        'item_price',
        'mp_api_endpoint',
        'mp_api_timestamp_ms',
        'mp_processing_time_ms',
        'time',
      ]);
      for (const key of [
        'distinct_id',
        'event_name',
        'insert_id',
        'item_id',
        'item_name',
        'item_price',
        'mp_api_endpoint',
      ]) {
        expect(typeof fields[key]).toBe('string');
      }
      for (const key of ['mp_api_timestamp_ms', 'mp_processing_time_ms', 'time']) {
        expect(Number.isSafeInteger(fields[key])).toBe(true);
      }
      expect(typeof fields.import).toBe('boolean');
    }
    expect(records.map((r) => (r._acme as Json).import)).toEqual([
      false,
      false,
      false,
      false,
      false,
      true,
      false,
      false,
      false,
      true,
    ]);
    expect(records[0]?._acme).toEqual({
      distinct_id: 'test@test.com',
      event_name: 'Items purchased',
      import: false,
      insert_id: '935d87b1-00cd-41b7-be34-b9d98dd08b70',
      item_id: '29066',
      item_name: 'charger',
      item_price: '800.00',
      mp_api_endpoint: 'api.mixpanel.com',
      mp_api_timestamp_ms: 1652850348643,
      mp_processing_time_ms: 1652850348702,
      time: 1652825148,
    });
  });

  it('should map a sample event with the default preset', () => {
    // Act
    const { record, json } = mapped(defaultMapper(JSON.parse(ADOBE_DOC_SAMPLE[5] as string)));

    // Assess
    expect(json).toBe(JSON.stringify(record));
    expect(record.eventType).toBe('mixpanel.event');
    expect(record.identityMap).toEqual({ MixpanelDistinctId: [{ id: 'test1@test.com', primary: true }] });
    expect(mixpanelOf(record)).toEqual({
      eventName: 'Sign in',
      distinctId: 'test1@test.com',
      insertId: '935d87b1-00cd-41b7-be34-b9d98dd08b75',
      time: 1648140614000,
      processingTimeMs: 1648556032462,
      apiTimestampMs: 1648556032401,
      apiEndpoint: 'api.mixpanel.com',
      import: true,
      projectId: '2195193',
      properties: { item_id: '29073', item_name: 'Watch', item_price: '50000.00' },
    });
  });
});

describe('mapper _id', () => {
  it('should not depend on the time unit, on numeric vs text ids, nor on properties outside the dedupe key', () => {
    // Prepare
    const base = {
      event: 'Sign Up',
      properties: { time: 1717243200, distinct_id: 42, $insert_id: 'abc', plan: 'pro' },
    };

    // Act
    const id = mapped(defaultMapper(base)).id;
    const variants = [
      { event: 'Sign Up', properties: { time: 1717243200000, distinct_id: '42', $insert_id: 'abc', plan: 'free' } },
      { event: 'Sign Up', properties: { $insert_id: 'abc', distinct_id: 42, time: 1717243200 } },
    ].map((e) => mapped(defaultMapper(e)).id);
    const different = [
      { event: 'Sign Up ', properties: { time: 1717243200, distinct_id: 42, $insert_id: 'abc' } },
      { event: 'Sign Up', properties: { time: 1717243201, distinct_id: 42, $insert_id: 'abc' } },
      { event: 'Sign Up', properties: { time: 1717243200, distinct_id: 43, $insert_id: 'abc' } },
      { event: 'Sign Up', properties: { time: 1717243200, $insert_id: 'abc' } },
      { event: 'Sign Up', properties: { time: 1717243200, distinct_id: 42, $insert_id: 'abd' } },
    ].map((e) => mapped(defaultMapper(e)).id);

    // Assess
    expect(variants).toEqual([id, id]);
    expect(new Set([id, ...different]).size).toBe(6);
  });

  it('should derive the _id from the whole event, key order aside, when $insert_id is missing', () => {
    // Prepare
    const event = {
      event: 'Sign Up',
      properties: { time: 1717243200, distinct_id: 'u', plan: 'pro', nested: { b: 1, a: 2 } },
    };
    const reordered = {
      properties: { nested: { a: 2, b: 1 }, plan: 'pro', distinct_id: 'u', time: 1717243200 },
      event: 'Sign Up',
    };
    const changed = {
      event: 'Sign Up',
      properties: { time: 1717243200, distinct_id: 'u', plan: 'free', nested: { b: 1, a: 2 } },
    };

    // Act
    const ids = [event, reordered, changed, { ...event, properties: { ...event.properties, $insert_id: '' } }].map(
      (e) => mapped(defaultMapper(e)).id,
    );

    // Assess
    expect(ids[1]).toBe(ids[0]);
    expect(ids[2]).not.toBe(ids[0]);
    expect(ids[3]).not.toBe(ids[0]);
  });
});

describe('mapper, default preset', () => {
  it('should write every default-preset field with its XDM type', () => {
    // Act
    const { record, json } = mapped(defaultMapper(webEvent()));

    // Assess
    expect(record.eventType).toBe('web.webpagedetails.pageViews');
    expect(record.web).toEqual({
      webPageDetails: { URL: 'https://shop.example.com/products/42?utm_source=google', pageViews: { value: 1 } },
      webReferrer: { URL: 'https://www.google.com/' },
    });
    expect(record.environment).toEqual({
      browserDetails: { name: 'Chrome', version: '125' },
      operatingSystem: 'Mac OS X',
      operatingSystemVersion: '14.5',
      type: 'browser',
    });
    expect(record.device).toEqual({
      model: 'MacBookPro18,3',
      manufacturer: 'Apple',
      screenWidth: 1920,
      screenHeight: 1080,
      type: 'desktop',
    });
    expect(record.placeContext).toEqual({ geo: { countryCode: 'FR', city: 'Paris', stateProvince: 'FR-IDF' } });
    expect(record.identityMap).toEqual({
      MixpanelDistinctId: [{ id: 'user-42', primary: true }],
      MixpanelDeviceId: [{ id: '18f3a2b4-device' }],
      MixpanelUserId: [{ id: 'user-42', authenticatedState: 'authenticated' }],
    });
    expect(mixpanelOf(record)).toMatchObject({
      eventName: '$mp_web_page_view',
      distinctId: 'user-42',
      insertId: 'a1b2c3d4e5f6',
      time: 1717243200000,
      processingTimeMs: 1717243201234,
      apiTimestampMs: 1717243200987,
      apiEndpoint: 'api-js.mixpanel.com',
      import: false,
      projectId: '2195193',
    });
    expect(propertiesMapOf(record)).toEqual({
      mp_lib: 'web',
      'Product ID': 'sku-42',
      Price: '19.99',
      Items: '[{"sku":"a","qty":2}]',
    });
    expect(JSON.parse(json)).toMatchSnapshot();
  });

  it('should never write null, "", [] or {} at any depth', () => {
    // Prepare: generated events with empty values sprinkled over mapped and unmapped properties
    const random = prng(7);
    const empties: unknown[] = [null, '', [], {}, { a: null }, [null]];
    const keys = [
      'distinct_id',
      '$device_id',
      '$user_id',
      '$browser',
      '$browser_version',
      '$screen_width',
      'mp_country_code',
      '$city',
      '$current_url',
      '$import',
      'mp_processing_time_ms',
      'plan',
      'Items',
      'Product ID',
      'nested',
    ];
    const events = Array.from({ length: 300 }, (_, n) => {
      const overrides: Json = { time: 1717243200 + n, $insert_id: `insert-${n}` };
      for (const key of keys) if (random() < 0.5) overrides[key] = empties[Math.floor(random() * empties.length)];
      return webEvent(overrides, random() < 0.5 ? '$mp_web_page_view' : 'Sign Up');
    });

    // Act
    const records = events.map((e) => mapped(defaultMapper(e)));

    // Assess: nothing empty except inside JSON text, and json is the record's serialisation
    for (const { record, json } of records) {
      expect(emptyPaths(record)).toEqual([]);
      expect(json).toBe(JSON.stringify(record));
    }
    expect(new Set(records.map((r) => r.id)).size).toBe(300);
  });

  it('should drop empty values and keep { a: null } as JSON text in the properties map', () => {
    // Act
    const { record } = mapped(
      defaultMapper(webEvent({ $city: '', $os: null, plan: [], extra: {}, nested: { a: null } })),
    );

    // Assess
    expect(record.placeContext).toEqual({ geo: { countryCode: 'FR', stateProvince: 'FR-IDF' } });
    expect(record.environment).toEqual({
      browserDetails: { name: 'Chrome', version: '125' },
      operatingSystemVersion: '14.5',
      type: 'browser',
    });
    expect(propertiesMapOf(record)).not.toHaveProperty('plan');
    expect(propertiesMapOf(record)).not.toHaveProperty('extra');
    expect(propertiesMapOf(record)?.nested).toBe('{"a":null}');
  });

  it('should write names and versions as strings and leave non-text values in the properties map', () => {
    // Act
    const numeric = mapped(defaultMapper(webEvent({ $browser_version: 119.5, $os_version: 17 }))).record;
    const text = mapped(defaultMapper(webEvent({ $browser_version: '17.1' }))).record;
    const object = mapped(defaultMapper(webEvent({ $browser_version: { major: 1 }, $os: true }))).record;

    // Assess
    expect(numeric.environment).toMatchObject({ browserDetails: { version: '119.5' }, operatingSystemVersion: '17' });
    expect(text.environment).toMatchObject({ browserDetails: { version: '17.1' } });
    expect(object.environment).toEqual({
      browserDetails: { name: 'Chrome' },
      operatingSystemVersion: '14.5',
      type: 'browser',
    });
    expect(propertiesMapOf(object)).toMatchObject({ $browser_version: '{"major":1}', $os: 'true' });
  });

  it('should convert "1920" to the integer 1920 and leave "abc" out of the standard field', () => {
    // Act
    const { record } = mapped(defaultMapper(webEvent({ $screen_width: '1920', $screen_height: 'abc' })));

    // Assess
    expect(record.device).toEqual({
      model: 'MacBookPro18,3',
      manufacturer: 'Apple',
      screenWidth: 1920,
      type: 'desktop',
    });
    expect(propertiesMapOf(record)?.$screen_height).toBe('abc');
    expect(propertiesMapOf(record)).not.toHaveProperty('$screen_width');
  });

  it('should leave integers out when they are fractional, unsafe or padded', () => {
    // Act
    const { record } = mapped(
      defaultMapper(webEvent({ $screen_width: 1920.5, $screen_height: ' 1080', mp_processing_time_ms: 2 ** 60 })),
    );

    // Assess
    expect(record.device).toEqual({ model: 'MacBookPro18,3', manufacturer: 'Apple', type: 'desktop' });
    expect(mixpanelOf(record)).not.toHaveProperty('processingTimeMs');
    expect(propertiesMapOf(record)).toMatchObject({
      $screen_width: '1920.5',
      $screen_height: ' 1080',
      mp_processing_time_ms: String(2 ** 60),
    });
  });

  it('should keep only absolute URIs in URL fields, percent-encoding what a URI cannot hold ("$direct" stays in the map)', () => {
    // Act
    const direct = mapped(defaultMapper(webEvent({ $referrer: '$direct' }))).record;
    const spaced = mapped(defaultMapper(webEvent({ $current_url: 'https://example.com/a b' }))).record;
    const unicode = mapped(defaultMapper(webEvent({ $current_url: 'https://example.com/café' }))).record;

    // Assess
    expect(direct.web).toEqual({
      webPageDetails: { URL: 'https://shop.example.com/products/42?utm_source=google', pageViews: { value: 1 } },
    });
    expect(propertiesMapOf(direct)?.$referrer).toBe('$direct');
    expect(spaced.web).toEqual({
      webPageDetails: { URL: 'https://example.com/a%20b', pageViews: { value: 1 } },
      webReferrer: { URL: 'https://www.google.com/' },
    });
    expect(propertiesMapOf(spaced)).not.toHaveProperty('$current_url');
    expect((unicode.web as Json).webPageDetails).toEqual({
      URL: 'https://example.com/caf%C3%A9',
      pageViews: { value: 1 },
    });
  });

  it('should upper-case two-letter country codes and leave other values out', () => {
    // Act
    const lower = mapped(defaultMapper(webEvent({ mp_country_code: 'us' }))).record;
    const long = mapped(defaultMapper(webEvent({ mp_country_code: 'USA' }))).record;

    // Assess
    expect(lower.placeContext).toMatchObject({ geo: { countryCode: 'US' } });
    // Without a country the region cannot be resolved to its ISO 3166-2 code: it stays in the properties map.
    expect(long.placeContext).toEqual({ geo: { city: 'Paris' } });
    expect(propertiesMapOf(long)?.mp_country_code).toBe('USA');
    expect(propertiesMapOf(long)?.$region).toBe('Ile-de-France');
  });

  it('should write objects and arrays as JSON text and keep map keys that are not XDM field names', () => {
    // Act
    const { record } = mapped(
      defaultMapper(webEvent({ 'Cart Items': [1, 'two'], 'a.b': { c: [true] }, $flag: false, '': 'no key' })),
    );

    // Assess
    expect(propertiesMapOf(record)).toMatchObject({ 'Cart Items': '[1,"two"]', 'a.b': '{"c":[true]}', $flag: 'false' });
    expect(Object.keys(propertiesMapOf(record) ?? {})).not.toContain('');
    expect(propertiesMapOf(record)).not.toHaveProperty('time');
  });

  it('should keep a property named __proto__ as an ordinary map key', () => {
    // Prepare: JSON.parse makes "__proto__" an own property, as it would for an exported line
    const parsed = JSON.parse(JSON.stringify(webEvent()).replace('"mp_lib"', '"__proto__":"odd","mp_lib"')) as Json;

    // Act
    const { record, json } = mapped(defaultMapper(parsed));

    // Assess
    expect(Object.getOwnPropertyDescriptor(propertiesMapOf(record), '__proto__')?.value).toBe('odd');
    expect(json).toContain('"__proto__":"odd"');
  });

  it('should map $import true, "false" and absent to booleans, and keep unconvertible values in the map', () => {
    // Act
    const imported = mixpanelOf(mapped(defaultMapper(webEvent({ $import: true }))).record);
    const text = mixpanelOf(mapped(defaultMapper(webEvent({ $import: 'false' }))).record);
    const odd = mapped(defaultMapper(webEvent({ $import: 'yes' }))).record;

    // Assess
    expect(imported.import).toBe(true);
    expect(text.import).toBe(false);
    expect(mixpanelOf(odd)).not.toHaveProperty('import');
    expect(propertiesMapOf(odd)?.$import).toBe('yes');
  });

  it('should read time in seconds or milliseconds (values from 1e11 up are milliseconds)', () => {
    // Act
    const seconds = mapped(defaultMapper(webEvent({ time: 1717243200 }))).record;
    const millis = mapped(defaultMapper(webEvent({ time: 1717243200123 }))).record;
    const fractional = mapped(defaultMapper(webEvent({ time: 1717243200.5 }))).record;

    // Assess
    expect(seconds.timestamp).toBe('2024-06-01T12:00:00.000Z');
    expect(millis.timestamp).toBe('2024-06-01T12:00:00.123Z');
    expect(fractional.timestamp).toBe('2024-06-01T12:00:00.500Z');
    expect(mixpanelOf(millis).time).toBe(1717243200123);
  });

  it('should correct legacy project-local time and keep Mixpanel time as sent', () => {
    // Prepare: 2024-06-01 12:00 wall clock in New York (EDT, UTC−4)
    const mapper = compileMapper(presetConfig('default'), {
      ...CTX,
      projectTimezone: 'America/New_York',
      legacyLocalTime: true,
    });

    // Act
    const { record } = mapped(mapper(webEvent({ time: 1717243200 })));

    // Assess
    expect(record.timestamp).toBe('2024-06-01T16:00:00.000Z');
    expect(mixpanelOf(record).time).toBe(1717243200000);
  });
});

describe('mapper, eventType and identities', () => {
  it('should use the eventType table, config overrides and mixpanel.event otherwise', () => {
    // Prepare
    const config = parseMappingConfig(
      { preset: 'default', eventTypes: { 'Order Completed': 'commerce.purchases' } },
      'mapping.json',
    );
    const mapper = compileMapper(config, CTX);

    // Act
    const types = ['$mp_web_page_view', 'Order Completed', 'Sign Up'].map(
      (e) => mapped(mapper(webEvent({}, e))).record.eventType,
    );

    // Assess
    expect(types).toEqual(['web.webpagedetails.pageViews', 'commerce.purchases', 'mixpanel.event']);
  });

  it('should write ids as strings, skip empty ones and mark the configured primary', () => {
    // Act
    const { record } = mapped(defaultMapper(webEvent({ distinct_id: 12345, $device_id: '', $user_id: null })));

    // Assess
    expect(record.identityMap).toEqual({ MixpanelDistinctId: [{ id: '12345', primary: true }] });
    expect(mixpanelOf(record).distinctId).toBe('12345');
  });

  it('should make the first present identity primary when the configured primary is missing', () => {
    // Act
    const { record } = mapped(defaultMapper(webEvent({ distinct_id: undefined })));

    // Assess
    expect(record.identityMap).toEqual({
      MixpanelDeviceId: [{ id: '18f3a2b4-device', primary: true }],
      MixpanelUserId: [{ id: 'user-42', authenticatedState: 'authenticated' }],
    });
  });

  it('should write no identityMap when no identity is present', () => {
    // Act
    const { record } = mapped(defaultMapper(webEvent({ distinct_id: '', $device_id: undefined, $user_id: undefined })));

    // Assess
    expect(record).not.toHaveProperty('identityMap');
  });

  it('should use configured identities in order, with one primary and de-duplicated ids', () => {
    // Prepare
    const config = parseMappingConfig(
      {
        preset: 'default',
        identities: [
          { from: 'properties.email', namespace: 'Email', authenticatedState: 'authenticated' },
          { from: 'properties.$device_id', namespace: 'ECID', primary: true },
          { from: 'properties.legacy_device', namespace: 'ECID' },
        ],
      },
      'mapping.json',
    );
    const mapper = compileMapper(config, CTX);

    // Act
    const { record } = mapped(mapper(webEvent({ email: 'a@example.com', legacy_device: '18f3a2b4-device' })));

    // Assess
    expect(record.identityMap).toEqual({
      Email: [{ id: 'a@example.com', authenticatedState: 'authenticated' }],
      ECID: [{ id: '18f3a2b4-device', primary: true }],
    });
    expect(propertiesMapOf(record)).not.toHaveProperty('email');
    expect(propertiesMapOf(record)?.distinct_id).toBeUndefined();
  });
});

describe('mapper, hash, drop and custom fields', () => {
  const config = parseMappingConfig(
    {
      preset: 'default',
      identities: [
        { from: 'properties.distinct_id', namespace: 'MixpanelDistinctId', primary: true },
        { from: 'properties.email', namespace: 'Email_LC_SHA256' },
      ],
      fields: [
        { from: 'properties.email', to: '_acme.mixpanel.emailHash', type: 'string' },
        { from: 'properties.plan', to: '_acme.account.plan', type: 'string' },
        { from: 'properties.seats', to: '_acme.account.seats', type: 'integer' },
        { from: 'properties.Price', to: '_{tenant}.price', type: 'number' },
        { from: 'properties.trial', to: '_acme.account.trial', type: 'boolean' },
        { from: 'properties.signed_up', to: '_acme.account.signedUpAt', type: 'date-time' },
        { from: 'event', to: 'web.webPageDetails.name', type: 'string' },
      ],
      drop: ['properties.$email', 'properties.$user_id', 'properties.$city'],
      hash: ['properties.email', 'properties.phone', 'properties.distinct_id'],
    },
    'mapping.json',
  );
  const mapper = compileMapper(config, CTX);
  const event = webEvent({
    email: 'alice@example.com',
    phone: '+33 6 12 34 56 78',
    $email: 'alice@example.com',
    plan: 'pro',
    seats: '12',
    Price: '19.99',
    trial: 'true',
    signed_up: '2024-05-31T10:00:00',
  });

  it('should hash a value everywhere it appears: identity, field and properties map', () => {
    // Act
    const { record } = mapped(mapper(event));

    // Assess
    expect(record.identityMap).toEqual({
      MixpanelDistinctId: [{ id: sha256('user-42'), primary: true }],
      Email_LC_SHA256: [{ id: sha256('alice@example.com') }],
    });
    expect(mixpanelOf(record).distinctId).toBe(sha256('user-42'));
    expect(mixpanelOf(record).emailHash).toBe(sha256('alice@example.com'));
    expect(propertiesMapOf(record)?.phone).toBe(sha256('+33 6 12 34 56 78'));
    expect(JSON.stringify(record)).not.toContain('alice@example.com');
    expect(JSON.stringify(record)).not.toContain('+33 6');
  });

  it('should drop a value everywhere: identity, standard field and properties map', () => {
    // Act
    const { record } = mapped(mapper(event));

    // Assess
    expect(propertiesMapOf(record)).not.toHaveProperty('$email');
    expect(record.identityMap).not.toHaveProperty('MixpanelUserId');
    expect(record.placeContext).toEqual({ geo: { countryCode: 'FR', stateProvince: 'FR-IDF' } });
    expect(propertiesMapOf(record)).not.toHaveProperty('$city');
  });

  it('should write custom fields with their types and standard paths from config', () => {
    // Act
    const { record } = mapped(mapper(event));

    // Assess
    expect((record._acme as Json).account).toEqual({
      plan: 'pro',
      seats: 12,
      trial: true,
      signedUpAt: '2024-05-31T10:00:00.000Z',
    });
    expect((record._acme as Json).price).toBe(19.99);
    expect(record.web).toMatchObject({ webPageDetails: { name: '$mp_web_page_view' } });
    expect(propertiesMapOf(record)).not.toHaveProperty('plan');
    expect(propertiesMapOf(record)).not.toHaveProperty('Price');
  });

  it('should leave custom fields out when their value does not convert, keeping it in the map', () => {
    // Act
    const { record } = mapped(
      mapper(webEvent({ seats: 'twelve', trial: 'maybe', signed_up: 'yesterday', Price: 'free' })),
    );

    // Assess
    expect(record._acme).not.toHaveProperty('account');
    expect(record._acme).not.toHaveProperty('price');
    expect(propertiesMapOf(record)).toMatchObject({
      seats: 'twelve',
      trial: 'maybe',
      signed_up: 'yesterday',
      Price: 'free',
    });
  });

  it('should read date-time fields from epoch seconds, milliseconds and zoned ISO strings', () => {
    // Act
    const values = [1717243200, 1717243200123, '2024-06-01', '2024-06-01T14:00:00+02:00', '2024-06-01 12:00:00.5Z'].map(
      (signedUp) =>
        ((mapped(mapper(webEvent({ signed_up: signedUp }))).record._acme as Json).account as Json).signedUpAt,
    );

    // Assess
    expect(values).toEqual([
      '2024-06-01T12:00:00.000Z',
      '2024-06-01T12:00:00.123Z',
      '2024-06-01T00:00:00.000Z',
      '2024-06-01T12:00:00.000Z',
      '2024-06-01T12:00:00.500Z',
    ]);
  });
});

describe('mapper rejections', () => {
  it('should reject what is not an object', () => {
    // Act
    const outcomes = [null, [], 'text', 42, undefined].map((input) => defaultMapper(input));

    // Assess
    for (const outcome of outcomes) expect(outcome).toMatchObject({ ok: false, reason: 'not-an-object' });
  });

  it('should reject an event without a non-empty event name', () => {
    // Act
    const outcomes = [
      { properties: { time: 1 } },
      { event: '', properties: { time: 1 } },
      { event: 5, properties: { time: 1 } },
    ].map((input) => defaultMapper(input));

    // Assess
    for (const outcome of outcomes) expect(outcome).toMatchObject({ ok: false, reason: 'missing-event' });
  });

  it('should reject an event without a properties object', () => {
    // Act
    const outcomes = [{ event: 'a' }, { event: 'a', properties: [] }, { event: 'a', properties: 'x' }].map((input) =>
      defaultMapper(input),
    );

    // Assess
    for (const outcome of outcomes) expect(outcome).toMatchObject({ ok: false, reason: 'missing-properties' });
  });

  it('should reject a missing time and an invalid one, saying what was found', () => {
    // Act
    const missing = [{}, { time: null }].map((properties) => defaultMapper({ event: 'a', properties }));
    const invalid = ['1652825148', Number.NaN, Number.POSITIVE_INFINITY, 0, -5, 1e20, true].map((time) =>
      defaultMapper({ event: 'a', properties: { time } }),
    );

    // Assess
    for (const outcome of missing) expect(outcome).toMatchObject({ ok: false, reason: 'missing-time' });
    for (const outcome of invalid) expect(outcome).toMatchObject({ ok: false, reason: 'invalid-time' });
    expect(invalid[0]).toMatchObject({ detail: expect.stringContaining('"1652825148" (string)') });
  });

  it('should reject a time beyond the date range in a legacy local-time project instead of throwing', () => {
    // Prepare: local time needs a zone offset, which cannot be computed for such a time
    const legacy = compileMapper(presetConfig('default'), {
      projectId: '1',
      tenant: 'acme',
      projectTimezone: 'America/New_York',
      legacyLocalTime: true,
    });
    // Act
    const outcomes = [1e20, 8.64e15 - 1].map((time) => legacy({ event: 'a', properties: { time, $insert_id: 'x' } }));
    // Assess: one bad line must not fail the whole part (the forwarder would retry it forever)
    for (const outcome of outcomes)
      expect(outcome).toMatchObject({
        ok: false,
        reason: 'invalid-time',
        detail: expect.stringContaining('outside the representable date range'),
      });
    expect(legacy({ event: 'a', properties: { time: 1_700_000_000, $insert_id: 'x' } }).ok).toBe(true);
  });

  it('should reject a record over the 1 MB limit, counting UTF-8 bytes', () => {
    // Prepare: 400,000 "€" are 400,000 UTF-16 units but 1,200,000 UTF-8 bytes
    const ascii = webEvent({ big: 'x'.repeat(MAX_RECORD_BYTES) });
    const multibyte = webEvent({ big: '€'.repeat(400_000) });
    const underLimit = webEvent({ big: 'x'.repeat(MAX_RECORD_BYTES - 2_000) });

    // Act
    const outcomes = [ascii, multibyte, underLimit].map((e) => defaultMapper(e));

    // Assess
    expect(outcomes[0]).toMatchObject({ ok: false, reason: 'record-too-large' });
    expect(outcomes[1]).toMatchObject({
      ok: false,
      reason: 'record-too-large',
      detail: expect.stringMatching(/^the record is 12\d{5} bytes, over the 1000000-byte limit/),
    });
    expect(outcomes[2]?.ok).toBe(true);
  });

  it('should apply a smaller record limit from the context', () => {
    // Prepare
    const mapper = compileMapper(presetConfig('default'), { ...CTX, maxRecordBytes: 10_240 });

    // Act
    const outcome = mapper(webEvent({ notes: 'x'.repeat(10_240) }));

    // Assess
    expect(outcome).toMatchObject({ ok: false, reason: 'record-too-large' });
  });

  it('should reject what cannot be serialised as unmappable instead of throwing', () => {
    // Prepare
    const cyclic: Json = {};
    cyclic.self = cyclic;

    // Act
    const outcome = defaultMapper(webEvent({ cyclic }));

    // Assess
    expect(outcome).toMatchObject({ ok: false, reason: 'unmappable' });
  });

  it('should never throw, whatever the input', () => {
    // Prepare
    const random = prng(11);
    const atoms: unknown[] = [null, undefined, 0, -1, 1e300, '', 'x', true, [], {}, [1], { a: 1 }, Number.NaN];
    const pick = () => atoms[Math.floor(random() * atoms.length)];
    const inputs = Array.from({ length: 500 }, () => ({
      event: random() < 0.7 ? 'e' : pick(),
      properties:
        random() < 0.8
          ? {
              time: random() < 0.7 ? 1717243200 : pick(),
              distinct_id: pick(),
              $device_id: pick(),
              $screen_width: pick(),
              $current_url: pick(),
              x: pick(),
            }
          : pick(),
    }));

    // Act
    const outcomes = inputs.map((input) => defaultMapper(input));

    // Assess
    for (const outcome of outcomes) {
      if (outcome.ok) expect(emptyPaths(outcome.record)).toEqual([]);
      else expect(['missing-event', 'missing-properties', 'missing-time', 'invalid-time']).toContain(outcome.reason);
    }
  });
});
