/**
 * The standard-XDM rules of the mapper (docs/xdm-mapping.md): event types and counters of Mixpanel's own events,
 * default properties into standard fields, commerce, geo codes, URLs, adobe-source time, identity for Profile.
 * The lines are written after Mixpanel's lists of default properties per library (mixpanel/docs
 * docs/data-structure/property-reference/default-properties.mdx) and of automatically tracked events.
 */
import { describe, expect, it } from 'vitest';
import {
  compileMapper,
  identityNamespaces,
  type MapOutcome,
  type MapperContext,
  MappingConfigError,
  parseMappingConfig,
  presetConfig,
  requiredFieldGroups,
  type XdmRecord,
} from '#mapping/index';
import { MAX_RECORD_BYTES, PROFILE_MAX_EVENT_BYTES } from '#mapping/mapper';

const CTX: MapperContext = { projectId: '3141592', tenant: 'acme', projectTimezone: 'UTC', legacyLocalTime: false };
type Json = Record<string, unknown>;

const defaultMapper = compileMapper(presetConfig('default'), CTX);

function record(outcome: MapOutcome): XdmRecord {
  if (!outcome.ok) throw new Error(`expected a record, got ${outcome.reason}: ${outcome.detail}`);
  return outcome.record;
}

function map(event: string, properties: Json, mapper = defaultMapper): XdmRecord {
  return record(mapper({ event, properties }));
}

function propertiesMap(r: XdmRecord): Json {
  return ((r._acme as Json).mixpanel as Json).properties as Json;
}

/** mixpanel-js 2.55 on desktop Chrome. */
function web(extra: Json = {}): Json {
  return {
    time: 1733220000,
    distinct_id: '$device:19390c2f1d5a1f-0a8d1c7e2b3f44-1e525636-1fa400-19390c2f1d5a1f',
    $device_id: '19390c2f1d5a1f-0a8d1c7e2b3f44-1e525636-1fa400-19390c2f1d5a1f',
    $browser: 'Chrome',
    $browser_version: 131,
    $current_url: 'https://shop.example.com/',
    $initial_referrer: '$direct',
    $initial_referring_domain: '$direct',
    $insert_id: 'u5s1l8o0b6k2r9aq',
    $lib_version: '2.55.1',
    $os: 'Windows',
    $screen_height: 1080,
    $screen_width: 1920,
    $mp_api_endpoint: 'api-js.mixpanel.com',
    $mp_api_timestamp_ms: 1733220000412,
    mp_lib: 'web',
    $city: 'San Francisco',
    $region: 'California',
    mp_country_code: 'US',
    mp_processing_time_ms: 1733220000530,
    ...extra,
  };
}

/** mixpanel-swift on an iPhone. */
function ios(extra: Json = {}): Json {
  return {
    time: 1733220100,
    distinct_id: '$device:8B0E4C1A-6F3D-4E52-9A7B-1C2D3E4F5A6B',
    $device_id: '8B0E4C1A-6F3D-4E52-9A7B-1C2D3E4F5A6B',
    $app_build_number: '5120',
    $app_version_string: '5.12.0',
    $carrier: 'Verizon',
    $had_persisted_distinct_id: true,
    $insert_id: '1F9C0D2E-3B4A-4C5D-8E6F-7A8B9C0D1E2F',
    $lib_version: '4.2.0',
    $manufacturer: 'Apple',
    $model: 'iPhone16,1',
    $os: 'iOS',
    $os_version: '17.5',
    $radio: 'LTE',
    $screen_height: 852,
    $screen_width: 393,
    $wifi: false,
    mp_lib: 'swift',
    $mp_api_endpoint: 'api.mixpanel.com',
    $mp_api_timestamp_ms: 1733220101020,
    mp_country_code: 'SE',
    $region: 'Skåne',
    $city: 'Malmö',
    mp_processing_time_ms: 1733220101100,
    ...extra,
  };
}

/** mixpanel-android on a Pixel. */
function android(extra: Json = {}): Json {
  return {
    time: 1733220200,
    distinct_id: 'user-7781',
    $user_id: 'user-7781',
    $device_id: '0c5e1f6a-8d3b-4f2e-9a1c-7b6d5e4f3a2b',
    $app_build_number: '5121',
    $app_version_string: '5.12.1',
    $bluetooth_enabled: true,
    $brand: 'google',
    $carrier: 'T-Mobile',
    $has_nfc: true,
    $insert_id: '6f0e1d2c-3b4a-4958-8776-a5b4c3d2e1f0',
    $lib_version: '7.3.1',
    $manufacturer: 'Google',
    $model: 'Pixel 8',
    $os: 'Android',
    $os_version: '14',
    $screen_dpi: 420,
    $screen_height: 2400,
    $screen_width: 1080,
    $wifi: true,
    mp_lib: 'android',
    $mp_api_endpoint: 'api.mixpanel.com',
    mp_country_code: 'DE',
    $region: 'Bayern',
    mp_processing_time_ms: 1733220201000,
    ...extra,
  };
}

/** A server-side line (mixpanel-python): no device, no SDK defaults. */
function server(extra: Json = {}): Json {
  return {
    time: 1733220300,
    distinct_id: 'cus_Q2x8Lm1',
    $insert_id: '5d41402abc4b2a76b9719d911017c592',
    $mp_api_endpoint: 'api.mixpanel.com',
    $mp_api_timestamp_ms: 1733220300200,
    mp_lib: 'python',
    mp_processing_time_ms: 1733220300300,
    ...extra,
  };
}

describe('standard Mixpanel events → eventType and counters', () => {
  it('should count a web page view and take the page title as the page name', () => {
    const r = map('$mp_web_page_view', web({ current_page_title: 'Example Shop — Home' }));

    expect(r.eventType).toBe('web.webpagedetails.pageViews');
    expect((r.web as Json).webPageDetails).toEqual({
      URL: 'https://shop.example.com/',
      name: 'Example Shop — Home',
      pageViews: { value: 1 },
    });
  });

  it('should count an autocaptured click as a link click with the link URL and the viewport', () => {
    const r = map(
      '$mp_click',
      web({
        $event_type: 'click',
        $el_tag_name: 'a',
        $el_attr__href: 'https://shop.example.com/cart',
        $viewportWidth: 1280,
        $viewportHeight: 720,
      }),
    );

    expect(r.eventType).toBe('web.webinteraction.linkClicks');
    expect((r.web as Json).webInteraction).toEqual({
      URL: 'https://shop.example.com/cart',
      linkClicks: { value: 1 },
      type: 'other',
    });
    expect((r.environment as Json).browserDetails).toMatchObject({ viewportWidth: 1280, viewportHeight: 720 });
  });

  it('should count a mobile screen view as a page view', () => {
    expect(map('$mp_page_view', ios()).web).toEqual({ webPageDetails: { pageViews: { value: 1 } } });
  });

  it('should record a first app open as a launch, first launch and install', () => {
    const r = map('$ae_first_open', ios());

    expect(r.eventType).toBe('application.launch');
    expect(r.application).toEqual({
      version: '5.12.0',
      launches: { value: 1 },
      firstLaunches: { value: 1 },
      installs: { value: 1 },
      isLaunch: true,
      isInstall: true,
    });
  });

  it('should record an app session as a close with its length in whole seconds, a crash as a close of unknown type', () => {
    const session = map('$ae_session', android({ $ae_session_length: 42.7 }));
    const crash = map('$ae_crashed', android({ $ae_crashed_reason: 'java.lang.NullPointerException' }));
    const update = map('$ae_updated', android({ $ae_updated_version: '5.12.1' }));

    expect(session.eventType).toBe('application.close');
    expect(session.application).toMatchObject({
      sessionLength: 43,
      applicationCloses: { value: 1 },
      closeType: 'close',
    });
    expect(crash.eventType).toBe('application.close');
    expect(crash.application).toMatchObject({ crashes: { value: 1 }, isClose: true, closeType: 'unknown' });
    expect(propertiesMap(crash).$ae_crashed_reason).toBe('java.lang.NullPointerException');
    expect(update.application).toMatchObject({ upgrades: { value: 1 }, isUpgrade: true });
  });

  it('should give identity-management events and page leaves their own mixpanel.* types', () => {
    expect(map('$identify', web({ $anon_distinct_id: '$device:abc', $identified_id: 'user-1' })).eventType).toBe(
      'mixpanel.identify',
    );
    expect(map('$create_alias', server({ alias: 'user-1' })).eventType).toBe('mixpanel.createAlias');
    expect(map('$merge', server()).eventType).toBe('mixpanel.merge');
    expect(map('$mp_page_leave', web()).eventType).toBe('mixpanel.pageLeave');
  });

  it('should give other events the generic type, or the configured default', () => {
    const custom = compileMapper(parseMappingConfig({ defaultEventType: 'acme.productEvent' }, 'mapping.json'), CTX);

    expect(map('Invoice Paid', server()).eventType).toBe('mixpanel.event');
    expect(map('Invoice Paid', server(), custom).eventType).toBe('acme.productEvent');
  });

  it('should drop the counters of an event whose type the config overrides', () => {
    const mapper = compileMapper(
      parseMappingConfig({ eventTypes: { $mp_web_page_view: 'acme.landing' } }, 'm.json'),
      CTX,
    );

    const r = map('$mp_web_page_view', web(), mapper);

    expect(r.eventType).toBe('acme.landing');
    expect((r.web as Json).webPageDetails).toEqual({ URL: 'https://shop.example.com/' });
  });
});

describe('default properties → standard fields', () => {
  it('should describe a desktop browser, a phone browser and a tablet app', () => {
    const desktop = map('$mp_web_page_view', web());
    const phone = map('$mp_web_page_view', web({ $os: 'iOS', $browser: 'Mobile Safari', $device: 'iPhone' }));
    const tablet = map('Screen View', ios({ $model: 'iPad13,18' }));

    expect([desktop.environment, desktop.device]).toMatchObject([{ type: 'browser' }, { type: 'desktop' }]);
    expect(phone.device).toMatchObject({ type: 'mobile' });
    expect([tablet.environment, tablet.device]).toMatchObject([{ type: 'application' }, { type: 'tablet' }]);
  });

  it('should write carrier and connection type; properties without an XDM field stay in the map', () => {
    const cellular = map('Screen View', ios());
    const wifi = map('Screen View', android());

    expect(cellular.environment).toMatchObject({ carrier: 'Verizon', connectionType: 'mobile_lte' });
    expect(wifi.environment).toMatchObject({ carrier: 'T-Mobile', connectionType: 'wireless_wifi' });
    expect(propertiesMap(wifi)).toMatchObject({
      $screen_dpi: '420',
      $app_build_number: '5121',
      $brand: 'google',
      $wifi: 'true',
    });
    expect(propertiesMap(cellular)).toMatchObject({ $radio: 'LTE' });
  });

  it('should write UTM campaign, search engine and keyword; the initial referrer stays in the map', () => {
    const r = map(
      '$mp_web_page_view',
      web({
        utm_source: 'google',
        utm_medium: 'cpc',
        utm_campaign: 'spring_sale',
        utm_id: 'cmp-2024-04',
        $search_engine: 'google',
        mp_keyword: 'wireless headphones',
      }),
    );

    expect(r.marketing).toEqual({ campaignName: 'spring_sale', trackingCode: 'cmp-2024-04' });
    expect(r.search).toEqual({ searchEngine: 'google', keywords: 'wireless headphones' });
    expect(propertiesMap(r)).toMatchObject({ utm_source: 'google', utm_medium: 'cpc', $initial_referrer: '$direct' });
  });

  it('should describe a server-side event by neither environment nor device type', () => {
    const r = map('Subscription Renewed', server());

    expect(r.environment).toBeUndefined();
    expect(r.device).toBeUndefined();
  });
});

describe('geo codes', () => {
  it('should write ISO 3166-2 codes for region names that resolve in their country', () => {
    expect((map('x', web()).placeContext as Json).geo).toMatchObject({ countryCode: 'US', stateProvince: 'US-CA' });
    expect((map('x', ios()).placeContext as Json).geo).toMatchObject({ countryCode: 'SE', stateProvince: 'SE-M' });
    expect((map('x', android()).placeContext as Json).geo).toMatchObject({ stateProvince: 'DE-BY' });
    expect((map('x', web({ $region: 'Skåne County', mp_country_code: 'SE' })).placeContext as Json).geo).toMatchObject({
      stateProvince: 'SE-M',
    });
    expect((map('x', web({ $region: 'QC', mp_country_code: 'CA' })).placeContext as Json).geo).toMatchObject({
      stateProvince: 'CA-QC',
    });
  });

  it('should leave stateProvince out when the name does not resolve, keeping $region in the map', () => {
    const r = map('x', web({ $region: 'Atlantis', mp_country_code: 'US' }));

    expect((r.placeContext as Json).geo).toEqual({ countryCode: 'US', city: 'San Francisco' });
    expect(propertiesMap(r).$region).toBe('Atlantis');
  });
});

describe('URLs', () => {
  it('should percent-encode spaces, non-ASCII and stray percent signs and keep valid escapes', () => {
    const r = map(
      '$mp_web_page_view',
      web({
        $current_url: 'https://shop.example.com/search?q=café au lait&x=%E2%9C%93&y=100%',
        $referrer: 'https://www.google.com/search?q=東京',
      }),
    );

    expect((r.web as Json).webPageDetails).toMatchObject({
      URL: 'https://shop.example.com/search?q=caf%C3%A9%20au%20lait&x=%E2%9C%93&y=100%25',
    });
    expect((r.web as Json).webReferrer).toEqual({ URL: 'https://www.google.com/search?q=%E6%9D%B1%E4%BA%AC' });
  });
});

describe('commerce', () => {
  it('should write a web order: purchase counter, order total and currency, one product line per item', () => {
    const r = map(
      'Order Completed',
      web({
        order_id: 'ORD-7Q2K9X1M0A',
        revenue: 284.48,
        currency: 'eur',
        items: [
          { sku: 'sku-1001', name: 'Wireless Headphones', price: 129.99, quantity: 2 },
          { sku: 'sku-1002', price: 24.5 },
        ],
      }),
    );

    expect(r.eventType).toBe('commerce.purchases');
    expect(r.commerce).toEqual({
      purchases: { value: 1 },
      order: { purchaseID: 'ORD-7Q2K9X1M0A', priceTotal: 284.48, currencyCode: 'EUR' },
    });
    expect(r.productListItems).toEqual([
      { SKU: 'sku-1001', name: 'Wireless Headphones', quantity: 2, priceTotal: 259.98, currencyCode: 'EUR' },
      { SKU: 'sku-1002', priceTotal: 24.5, currencyCode: 'EUR' },
    ]);
  });

  it('should count a cart add with its product object and quantity, and a checkout', () => {
    const add = map('Add To Cart', ios({ product: { id: 'sku-1003', name: 'Keyholder', price: 8 }, quantity: 3 }));
    const checkout = map('Checkout Started', web({ cart_value: 42 }));

    expect(add.eventType).toBe('commerce.productListAdds');
    expect(add.commerce).toEqual({ productListAdds: { value: 1 } });
    expect(add.productListItems).toEqual([{ SKU: 'sku-1003', name: 'Keyholder', quantity: 3, priceTotal: 24 }]);
    expect(checkout.eventType).toBe('commerce.checkouts');
    expect(checkout.commerce).toEqual({ checkouts: { value: 1 } });
    expect(checkout.productListItems).toBeUndefined();
  });

  it('should read an in-app purchase from its $ae_iap_* properties', () => {
    const r = map('$ae_iap', ios({ $ae_iap_name: 'Pro upgrade', $ae_iap_quantity: 1, $ae_iap_price: 4.99 }));

    expect(r.eventType).toBe('commerce.purchases');
    expect(r.commerce).toEqual({ purchases: { value: 1 }, order: { priceTotal: 4.99 } });
    expect(r.productListItems).toEqual([{ name: 'Pro upgrade', quantity: 1, priceTotal: 4.99 }]);
  });

  it('should follow configured event names and property names', () => {
    const config = parseMappingConfig(
      {
        commerce: {
          events: { purchases: ['Invoice Paid'] },
          properties: { orderId: 'invoice_id', priceTotal: 'amount' },
        },
      },
      'mapping.json',
    );
    const mapper = compileMapper(config, CTX);

    const invoice = map('Invoice Paid', server({ invoice_id: 'in_1Q2w3E', amount: 99, currency: 'USD' }), mapper);
    const order = map('Order Completed', server({ order_id: 'ORD-1' }), mapper);

    expect(invoice.commerce).toEqual({
      purchases: { value: 1 },
      order: { purchaseID: 'in_1Q2w3E', priceTotal: 99, currencyCode: 'USD' },
    });
    expect(order.eventType).toBe('mixpanel.event');
  });

  it('should refuse a commerce block with a bad shape, naming the path', () => {
    const action = () =>
      parseMappingConfig({ commerce: { events: { purchases: 'Order Completed' }, colour: 1 } }, 'm.json');

    expect(action).toThrow(MappingConfigError);
    expect(action).toThrow(/commerce\.events\.purchases/);
    expect(action).toThrow(/commerce\.colour: unknown key/);
  });
});

describe('adobe-source time fields', () => {
  const adobe = compileMapper(presetConfig('adobe-source'), CTX);
  const fields = (properties: Json): Json => map('Items purchased', properties, adobe)._acme as Json;

  it('should write time in whole seconds whatever the export precision', () => {
    expect(fields({ distinct_id: 'a', time: 1652825148.731 }).time).toBe(1652825148);
    expect(fields({ distinct_id: 'a', time: 1652825148731 }).time).toBe(1652825148);
    expect(fields({ distinct_id: 'a', time: 1652825148 }).time).toBe(1652825148);
  });

  it('should write the API and processing timestamps as integers', () => {
    const f = fields({
      time: 1652825148,
      $mp_api_timestamp_ms: 1652850348643.4,
      mp_processing_time_ms: '1652850348702',
    });

    expect(f.mp_api_timestamp_ms).toBe(1652850348643);
    expect(f.mp_processing_time_ms).toBe(1652850348702);
  });
});

describe('identity for Profile', () => {
  const anonymous = server({ distinct_id: undefined });

  it('should reject a record without identity as no-identity when the dataset is Profile-enabled', () => {
    const strict = compileMapper(parseMappingConfig({ requireIdentity: true }, 'm.json'), CTX);

    const outcome = strict({ event: 'Invoice Paid', properties: anonymous });

    expect(outcome).toMatchObject({ ok: false, reason: 'no-identity' });
    expect(strict({ event: 'Invoice Paid', properties: server() })).toMatchObject({ ok: true, identified: true });
  });

  it('should reject a record without identity when the dataset is Profile-enabled by configuration', () => {
    const profile = compileMapper(presetConfig('default'), { ...CTX, profile: true });

    const outcome = profile({ event: 'Invoice Paid', properties: anonymous });

    expect(outcome).toMatchObject({ ok: false, reason: 'no-identity' });
    expect(outcome.ok ? '' : outcome.detail).toMatch(/AEP_PROFILE_ENABLED=true/);
    expect(profile({ event: 'Invoice Paid', properties: server() })).toMatchObject({ ok: true, identified: true });
  });

  it("should reject a record over Profile's 10 KB event limit as too-large-for-profile, with its size", () => {
    const profile = compileMapper(presetConfig('default'), { ...CTX, profile: true });
    const note = { note: 'n'.repeat(PROFILE_MAX_EVENT_BYTES) };

    const outcome = profile({ event: 'Invoice Paid', properties: server(note) });
    const elsewhere = defaultMapper({ event: 'Invoice Paid', properties: server(note) });
    const huge = profile({ event: 'Invoice Paid', properties: server({ note: 'n'.repeat(MAX_RECORD_BYTES) }) });

    expect(outcome).toMatchObject({ ok: false, reason: 'too-large-for-profile' });
    expect(outcome.ok ? '' : outcome.detail).toMatch(
      new RegExp(`^the record is \\d+ bytes, over the ${PROFILE_MAX_EVENT_BYTES}-byte ExperienceEvent limit`),
    );
    expect(elsewhere).toMatchObject({ ok: true });
    expect(huge).toMatchObject({ ok: false, reason: 'record-too-large' });
  });

  it('should send it otherwise, flagged as without identity', () => {
    expect(defaultMapper({ event: 'Invoice Paid', properties: anonymous })).toMatchObject({
      ok: true,
      identified: false,
    });
  });

  it('should refuse requireIdentity on a mapping without identities', () => {
    expect(() => parseMappingConfig({ preset: 'adobe-source', requireIdentity: true }, 'm.json')).toThrow(
      /requireIdentity/,
    );
  });

  it('should list the namespaces to create with the primary one, and the standard field groups', () => {
    expect(identityNamespaces(presetConfig('default'))).toEqual([
      { code: 'MixpanelDistinctId', from: 'properties.distinct_id', primary: true, authenticatedState: 'ambiguous' },
      { code: 'MixpanelDeviceId', from: 'properties.$device_id', primary: false, authenticatedState: 'ambiguous' },
      { code: 'MixpanelUserId', from: 'properties.$user_id', primary: false, authenticatedState: 'authenticated' },
    ]);
    expect(requiredFieldGroups(presetConfig('default'))).toEqual(
      expect.arrayContaining([
        'https://ns.adobe.com/xdm/context/experienceevent-web',
        'https://ns.adobe.com/xdm/context/experienceevent-environment-details',
        'https://ns.adobe.com/xdm/context/experienceevent-application',
        'https://ns.adobe.com/xdm/context/experienceevent-commerce',
        'https://ns.adobe.com/xdm/context/experienceevent-marketing',
        'https://ns.adobe.com/xdm/context/experienceevent-search',
      ]),
    );
    expect(requiredFieldGroups(presetConfig('adobe-source'))).toEqual([]);
    expect(identityNamespaces(presetConfig('adobe-source'))).toEqual([]);
  });
});
