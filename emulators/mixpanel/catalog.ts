/**
 * What the generated events are made of: names, default properties of Mixpanel's JavaScript, iOS, Android and server
 * libraries, places, products… Every value is pre-rendered once as a JSON fragment `,"key":value` (a `Field`), so that
 * writing an event line is mostly appending ready-made text.
 *
 * Unicode is deliberate: emoji, CJK, Hebrew and Arabic (RTL), Cyrillic, astral-plane letters, quotes, backslashes and
 * control characters all appear in values, as they do in real customer data.
 */

import { utf8 } from './line-buffer.ts';
import { Weighted } from './prng.ts';

/** One property with its value and its JSON fragment `,"key":value` (text and UTF-8 bytes). */
export interface Field {
  readonly key: string;
  readonly value: unknown;
  readonly json: string;
  readonly bytes: Uint8Array;
}

/** Consecutive properties written together. */
export interface Group {
  readonly fields: readonly Field[];
  readonly json: string;
  readonly bytes: Uint8Array;
}

export function field(key: string, value: unknown): Field {
  const json = `,"${key}":${JSON.stringify(value)}`;
  return { key, value, json, bytes: utf8(json) };
}

export function group(...fields: Array<Field | undefined>): Group {
  const present = fields.filter((f): f is Field => f !== undefined);
  const json = present.map((f) => f.json).join('');
  return { fields: present, json, bytes: utf8(json) };
}

/** `[false, true]` fields of a boolean property, indexable by `Number(flag)`. */
function flags(key: string): readonly [Field, Field] {
  return [field(key, false), field(key, true)];
}

function fieldsOf(key: string, values: readonly unknown[]): Field[] {
  return values.map((v) => field(key, v));
}

// ---------------------------------------------------------------------------------------------------------------------
// Events.

export type Platform = 'web' | 'ios' | 'android' | 'server';

export const PLATFORMS = new Weighted<Platform>([
  ['web', 55],
  ['ios', 18],
  ['android', 17],
  ['server', 10],
]);

// `$mp_page_view` is what trackScreenView sends; `$ae_*` are the SDKs' automatically tracked events (mixpanel/docs
// docs/tracking-methods/sdks/swift.mdx and ios.mdx).
const MOBILE_EVENTS: ReadonlyArray<readonly [string, number]> = [
  ['Screen View', 15],
  ['$mp_page_view', 15],
  ['$ae_session', 15],
  ['App Open', 11],
  ['$ae_first_open', 2],
  ['$ae_updated', 1],
  ['$ae_iap', 1],
  ['$ae_crashed', 0.5],
  ['Product Viewed', 10],
  ['Search', 8],
  ['Add To Cart', 7],
  ['Log In', 5],
  ['Push Notification Opened', 5],
  ['Order Completed', 3],
  ['Sign Up', 2],
];

export const EVENTS: Readonly<Record<Platform, Weighted<string>>> = {
  web: new Weighted([
    ['$mp_web_page_view', 40],
    ['Product Viewed', 15],
    ['$mp_click', 10],
    // Heatmap events of a recorded session (docs/tracking-methods/sdks/javascript/javascript-replay.mdx).
    ['$mp_page_leave', 4],
    ['$mp_rage_click', 1],
    ['Add To Cart', 8],
    ['Search', 8],
    ['Log In', 5],
    ['Checkout Started', 4],
    ['Sign Up', 3],
    ['Order Completed', 3],
    ['$identify', 2],
    ['Video Played', 2],
  ]),
  ios: new Weighted(MOBILE_EVENTS),
  android: new Weighted(MOBILE_EVENTS),
  server: new Weighted([
    ['Subscription Renewed', 25],
    ['Invoice Paid', 25],
    ['Email Sent', 25],
    ['Order Completed', 20],
    ['Refund Issued', 5],
  ]),
};

/** Every event name the generator can produce. */
export const EVENT_NAMES: readonly string[] = [
  ...new Set((Object.keys(EVENTS) as Platform[]).flatMap((p) => EVENTS[p].items)),
];

/** `{"event":"<name>","properties":{"time":` per event name, as UTF-8. */
export const EVENT_PREFIX: ReadonlyMap<string, Uint8Array> = new Map(
  EVENT_NAMES.map((n) => [n, utf8(`{"event":${JSON.stringify(n)},"properties":{"time":`)]),
);

// ---------------------------------------------------------------------------------------------------------------------
// Common properties.

export const IMPORT_TRUE = field('$import', true);
export const API_ENDPOINT_JS = field('$mp_api_endpoint', 'api-js.mixpanel.com');
export const API_ENDPOINT = field('$mp_api_endpoint', 'api.mixpanel.com');
export const SERVER_LIBS = fieldsOf('mp_lib', ['python', 'node']);

// Mixpanel geolocates with English place names (accents kept).
const GEO: ReadonlyArray<readonly [string, string, string]> = [
  ['US', 'California', 'San Francisco'],
  ['US', 'New York', 'New York'],
  ['US', 'Texas', 'Austin'],
  ['US', 'Illinois', 'Chicago'],
  ['CA', 'Quebec', 'Montréal'],
  ['BR', 'Sao Paulo', 'São Paulo'],
  ['GB', 'England', 'London'],
  ['DE', 'North Rhine-Westphalia', 'Düsseldorf'],
  ['CH', 'Zurich', 'Zürich'],
  ['FR', 'Île-de-France', 'Paris'],
  ['PL', 'Lesser Poland', 'Kraków'],
  ['IL', 'Tel Aviv', 'Tel Aviv'],
  ['EG', 'Cairo Governorate', 'Cairo'],
  ['IN', 'Maharashtra', 'Mumbai'],
  ['JP', 'Tokyo', 'Tokyo'],
  ['KR', 'Seoul', 'Seoul'],
  ['CN', 'Shanghai', 'Shanghai'],
  ['AU', 'New South Wales', 'Sydney'],
];
/** `[$city, $region]` per place, and `[$city]` alone (no region resolved). */
export const GEO_GROUPS: ReadonlyArray<readonly [Group, Group]> = GEO.map(([, region, city]) => [
  group(field('$city', city), field('$region', region)),
  group(field('$city', city)),
]);
export const COUNTRY_FIELDS: readonly Field[] = GEO.map(([country]) => field('mp_country_code', country));

export const FIRST_NAMES = ['ana', 'li.wei', 'yuki', 'noa', 'omar', 'olga', 'joão', 'sam', 'priya', 'min-jun'];

// ---------------------------------------------------------------------------------------------------------------------
// Web (mixpanel-js).

export interface WebAgent {
  readonly browser: Field;
  readonly version: Field;
  readonly os: Field;
  readonly phone: boolean;
}

const BROWSERS: ReadonlyArray<readonly [string, readonly number[], readonly string[]]> = [
  ['Chrome', [118, 120, 121, 122, 123, 124, 125, 126], ['Windows', 'Mac OS X', 'Linux', 'Chrome OS', 'Android']],
  ['Safari', [16.6, 17.1, 17.2, 17.4], ['Mac OS X']],
  ['Mobile Safari', [16.6, 17.4, 17.5], ['iOS']],
  ['Firefox', [121, 123, 125, 127], ['Windows', 'Mac OS X', 'Linux']],
  ['Microsoft Edge', [120, 122, 124, 125], ['Windows', 'Mac OS X']],
  ['Samsung Internet', [23, 24], ['Android']],
];
// Chrome is listed twice in the weights: it is the most common browser.
export const WEB_AGENTS: readonly WebAgent[] = [...BROWSERS, BROWSERS[0] as (typeof BROWSERS)[number]].flatMap(
  ([browser, versions, oses]) =>
    versions.flatMap((v) =>
      oses.map((os) => ({
        browser: field('$browser', browser),
        // mixpanel-js sends the browser version as a number.
        version: field('$browser_version', v),
        os: field('$os', os),
        phone: os === 'iOS' || os === 'Android',
      })),
    ),
);

const screenGroup = (w: number | string, h: number | string): Group =>
  group(field('$screen_height', h), field('$screen_width', w));
export const DESKTOP_SCREENS: readonly Group[] = [
  [1920, 1080],
  [1440, 900],
  [2560, 1440],
  [1366, 768],
  [1536, 864],
  [3840, 2160],
].map(([w, h]) => screenGroup(w as number, h as number));
export const PHONE_SCREENS: readonly Group[] = [
  [390, 844],
  [393, 852],
  [414, 896],
  [430, 932],
  [412, 915],
  [360, 800],
].map(([w, h]) => screenGroup(w as number, h as number));

const REFERRERS: ReadonlyArray<readonly [string, string]> = [
  ['https://www.google.com/', 'www.google.com'],
  ['https://www.bing.com/search?q=wireless+headphones', 'www.bing.com'],
  ['https://t.co/3xAmPl3', 't.co'],
  ['https://news.ycombinator.com/', 'news.ycombinator.com'],
  ['https://l.facebook.com/', 'l.facebook.com'],
  ['https://duckduckgo.com/', 'duckduckgo.com'],
];
/** Index 0 is a direct visit. */
export const INITIAL_REFERRERS: readonly Group[] = [
  group(field('$initial_referrer', '$direct'), field('$initial_referring_domain', '$direct')),
  ...REFERRERS.map(([url, domain]) =>
    group(field('$initial_referrer', url), field('$initial_referring_domain', domain)),
  ),
];
export const REFERRER_GROUPS: readonly Group[] = REFERRERS.map(([url, domain]) =>
  group(field('$referrer', url), field('$referring_domain', domain)),
);
export const WEB_LIB_VERSION = field('$lib_version', '2.55.1');
export const CURRENT_DOMAIN = field('current_domain', 'shop.example.com');
export const WEB_TAIL = group(field('mp_lib', 'web'), field('mp_sent_by_lib_version', '2.55.1'));

export const SEARCHES = [
  'wireless headphones',
  'café',
  '東京 ラーメン',
  'שלום',
  'قهوة',
  'ручка',
  '🎁 gift ideas',
  'monitor 27"',
  '',
  'pão de queijo',
  '한국 차',
  'tab\tand "quotes" \\ backslash',
];

export interface Page {
  readonly url: Field;
  /** `current_url_path`, `current_url_protocol`, `current_url_search`. */
  readonly tail: Group;
}

const page = (path: string, search: string): Page => ({
  url: field('$current_url', `https://shop.example.com${path}${search}`),
  tail: group(
    field('current_url_path', path),
    field('current_url_protocol', 'https:'),
    field('current_url_search', search),
  ),
});
export const PAGES: readonly Page[] = [
  page('/', ''),
  page('/', '?utm_source=newsletter'),
  page('/products/sku-1001', ''),
  page('/products/%E6%9D%B1%E4%BA%AC', ''),
  page('/cart', ''),
  page('/checkout', ''),
  page('/blog/ten-tips', ''),
  page('/he/', ''),
  page('/ja/products/sku-1003', ''),
  ...SEARCHES.map((s) => page('/search', `?q=${encodeURIComponent(s)}`)),
];
export const PAGE_TITLES: readonly Field[] = fieldsOf('current_page_title', [
  'Home — Example Shop',
  '🎧 Wireless Headphones | Example Shop',
  '商品詳細 | Example Shop',
  'חנות לדוגמה',
  'المتجر',
  'Корзина',
  'Checkout',
  'Blog: Ten tips for ☕ lovers',
]);

// ---------------------------------------------------------------------------------------------------------------------
// Mobile (mixpanel-swift, mixpanel-android, React Native and Flutter wrappers).

export interface Device {
  /** `[$brand,] $manufacturer, $model` */
  readonly identity: Group;
  readonly screen: Group;
  /** Wrappers (React Native, Flutter) often send screen sizes as strings. */
  readonly screenAsStrings: Group;
}

const device = (brand: string | undefined, maker: string, model: string, w: number, h: number): Device => ({
  identity: group(
    brand === undefined ? undefined : field('$brand', brand),
    field('$manufacturer', maker),
    field('$model', model),
  ),
  screen: screenGroup(w, h),
  screenAsStrings: screenGroup(String(w), String(h)),
});

export const IOS_DEVICES: readonly Device[] = [
  device(undefined, 'Apple', 'iPhone15,2', 393, 852),
  device(undefined, 'Apple', 'iPhone16,1', 393, 852),
  device(undefined, 'Apple', 'iPhone16,2', 430, 932),
  device(undefined, 'Apple', 'iPhone14,5', 390, 844),
  device(undefined, 'Apple', 'iPhone12,1', 414, 896),
  device(undefined, 'Apple', 'iPad13,18', 820, 1180),
];
export const ANDROID_DEVICES: readonly Device[] = [
  device('samsung', 'samsung', 'SM-S918B', 1080, 2340),
  device('samsung', 'samsung', 'SM-A546B', 1080, 2340),
  device('google', 'Google', 'Pixel 8', 1080, 2400),
  device('google', 'Google', 'Pixel 7a', 1080, 2400),
  device('Redmi', 'Xiaomi', '2201117TG', 1080, 2400),
  device('OnePlus', 'OnePlus', 'CPH2449', 1440, 3216),
];
export const IOS_OS: readonly Group[] = ['16.7.8', '17.4.1', '17.5', '17.6.1', '18.0'].map((v) =>
  group(field('$os', 'iOS'), field('$os_version', v)),
);
export const ANDROID_OS: readonly Group[] = ['12', '13', '14', '14', '15'].map((v) =>
  group(field('$os', 'Android'), field('$os_version', v)),
);
export const APP_VERSIONS: readonly Group[] = [
  ['5112', '5.11.2'],
  ['5120', '5.12.0'],
  ['5121', '5.12.1'],
  ['6000', '6.0.0-beta.3'],
].map(([build, version]) => group(field('$app_build_number', build), field('$app_version_string', version)));
/** The empty carrier is what the SDKs send without a SIM. */
export const CARRIERS: readonly Field[] = fieldsOf('$carrier', [
  'Verizon',
  'T-Mobile',
  'AT&T',
  'Vodafone',
  'NTT DOCOMO',
  'SoftBank',
  'Jio',
  'Orange F',
  'Partner',
  '',
]);
export const IOS_LIB_VERSION = field('$lib_version', '4.2.0');
export const ANDROID_LIB_VERSION = field('$lib_version', '7.3.1');
export const RADIOS: readonly Field[] = fieldsOf('$radio', ['5G', 'LTE', 'Wi-Fi', 'None']);
export const HAD_PERSISTED_DISTINCT_ID = flags('$had_persisted_distinct_id');
export const BLUETOOTH = flags('$bluetooth_enabled');
export const HAS_NFC = flags('$has_nfc');
export const WIFI = flags('$wifi');
export const MOBILE_LIBS = {
  ios: field('mp_lib', 'swift'),
  android: field('mp_lib', 'android'),
  reactNative: field('mp_lib', 'react-native'),
  flutter: field('mp_lib', 'flutter'),
} as const;

// ---------------------------------------------------------------------------------------------------------------------
// Event-specific properties.

const PRODUCTS: ReadonlyArray<readonly [string, string, number, string]> = [
  ['sku-1001', '🎧 Wireless Headphones', 129.99, 'audio'],
  ['sku-1002', 'Café Crème ☕ Beans 1kg', 24.5, 'grocery'],
  ['sku-1003', '東京タワー キーホルダー', 8, 'souvenirs'],
  ['sku-1004', 'מחברת A5 עם שורות', 4.9, 'stationery'],
  ['sku-1005', 'قهوة عربية بالهيل', 15.75, 'grocery'],
  ['sku-1006', 'Набор ручек (12 шт.)', 11.2, 'stationery'],
  ['sku-1007', '𝓢𝓹𝓮𝓬𝓲𝓪𝓵 Edition Hoodie', 59, 'apparel'],
  ['sku-1008', 'Pão de queijo mix', 6.3, 'grocery'],
  ['sku-1009', '4K Monitor 27" (IPS)', 349, 'electronics'],
  ['sku-1010', '한국 전통 차 세트', 42, 'grocery'],
  ['sku-1011', 'Çay bardağı — 6 pcs', 18.4, 'kitchen'],
  ['sku-1012', 'USB-C cable 2m\\fast', 9.99, 'electronics'],
];
/** A nested `product` object, with and without tags. */
export const PRODUCT_FIELDS: readonly Field[] = PRODUCTS.flatMap(([id, name, price, category]) => [
  field('product', { id, name, price, category, tags: ['sale', '🔥'] }),
  field('product', { id, name, price, category, tags: [] }),
]);
/** One order line per product and quantity (1 or 2): the JSON bytes and the price. */
export const ORDER_ITEMS: ReadonlyArray<{
  readonly bytes: Uint8Array;
  readonly value: unknown;
  readonly amount: number;
}> = PRODUCTS.flatMap(([sku, name, price]) =>
  [1, 2].map((quantity) => {
    const value = { sku, name, price, quantity };
    return { bytes: utf8(JSON.stringify(value)), value, amount: price * quantity };
  }),
);
export const CURRENCIES: readonly Field[] = fieldsOf('currency', ['USD', 'USD', 'EUR', 'JPY', 'ILS', 'BRL', 'GBP']);
export const COUPONS: readonly Field[] = [field('coupon', null), field('coupon', 'SPRING24')];
export const SHIPPING: readonly Field[] = ['standard', 'express', 'pickup'].flatMap((method) =>
  [0, 4.99].map((cost) => field('shipping', { method, cost })),
);
export const QUERIES: readonly Field[] = fieldsOf('query', SEARCHES);
export const SEARCH_FILTERS: readonly Field[] = [null, ...new Set(PRODUCTS.map((p) => p[3]))].flatMap((category) =>
  [null, 100].map((priceMax) => field('filters', { category, price_max: priceMax })),
);
export const UTM: readonly Group[] = ['google', 'newsletter', 'twitter'].flatMap((source) =>
  ['', 'spring_sale_🌸'].map((campaign) =>
    group(
      field('utm_source', source),
      field('utm_medium', source === 'google' ? 'cpc' : 'social'),
      field('utm_campaign', campaign),
    ),
  ),
);
export const EL_TAGS: readonly Field[] = fieldsOf('$el_tag_name', ['button', 'a', 'div']);
export const EL_TEXTS: readonly Field[] = fieldsOf('$el_text', [
  'Add to cart',
  'カートに追加',
  'הוסף לסל',
  'Buy now 🛒',
  '',
]);
export const EL_CLASSES: readonly Field[] = ['btn-primary', 'btn-link', 'cta'].map((c) =>
  field('$el_classes', ['btn', c]),
);
export const CLICK = field('$event_type', 'click');
export const PLANS: readonly Field[] = fieldsOf('plan', ['free', 'pro', 'team', 'enterprise']);
export const SIGNUP_METHODS: readonly Field[] = fieldsOf('method', ['email', 'google', 'apple']);
export const LOGIN_METHODS: readonly Field[] = fieldsOf('method', ['password', 'google', 'apple', 'magic_link']);
export const NO_REFERRAL_CODE = field('referral_code', '');
export const MARKETING_OPT_IN = flags('marketing_opt_in');
export const LOGIN_SUCCESS = field('success', true);
export const VIDEO_QUALITIES: readonly Field[] = fieldsOf('quality', ['480p', '720p', '1080p', null]);
export const FIRST_OPEN = flags('first_open');
/** `$ae_iap` product, quantity and price; `$ae_crashed` reasons (docs/tracking-methods/sdks/ios.mdx). */
export const IAP_PRODUCTS: readonly Group[] = [
  ['Pro upgrade', 4.99],
  ['100 coins', 0.99],
  ['プレミアム 1か月', 9.99],
].map(([name, price]) =>
  group(field('$ae_iap_name', name), field('$ae_iap_quantity', 1), field('$ae_iap_price', price)),
);
export const CRASH_REASONS: readonly Field[] = fieldsOf('$ae_crashed_reason', [
  'NSInvalidArgumentException',
  'java.lang.NullPointerException',
  'SIGABRT',
]);
export const FROM_BACKGROUND = flags('from_background');
const SCREEN_NAMES = ['Home', 'Product Detail', '商品詳細', 'Cart', 'Профиль', 'Settings', 'البحث', 'Checkout'];
export const SCREEN_NAME_FIELDS: readonly Field[] = fieldsOf('screen_name', SCREEN_NAMES);
export const PREVIOUS_SCREENS: readonly Field[] = fieldsOf('previous_screen', [null, ...SCREEN_NAMES]);
export const PUSH_TITLES: readonly Field[] = fieldsOf('message_title', [
  'Your cart misses you 🛒',
  '限定セール開始',
  'מבצע מיוחד!',
  'Flash sale ⚡',
  'Line one\nline two',
]);
export const AMOUNTS: readonly Field[] = fieldsOf('amount', [9, 29, 99, 499]);
export const PERIODS: readonly Field[] = fieldsOf('period', ['monthly', 'yearly']);
export const LINE_ITEMS: readonly Field[] = [false, true].map((proration) =>
  field('line_items', [
    { description: 'Pro plan', amount: 29 },
    { description: 'Seats × 3', amount: 27, meta: { proration } },
  ]),
);
export const REFUND_REASONS: readonly Field[] = fieldsOf('reason', [
  '',
  '',
  '',
  'damaged',
  'late delivery',
  'נפגע במשלוח',
]);
export const EMAIL_TEMPLATES: readonly Field[] = fieldsOf('template', ['order_shipped', 'welcome', 'invoice']);
export const LOCALES: readonly Field[] = fieldsOf('locale', [
  'en-US',
  'ja-JP',
  'he-IL',
  'ar-EG',
  'ru-RU',
  'pt-BR',
  'ko-KR',
]);
export const EMAIL_SUBJECTS: readonly Field[] = fieldsOf('subject', [
  'Your order has shipped 📦',
  'ご注文ありがとうございます',
  'ההזמנה שלך בדרך',
  'Welcome!',
  'Счёт оплачен',
]);
/** Experiment exposure: a list and a nested object with a null inside. */
export const EXPERIMENTS: readonly Group[] = [
  ['control', false, 'A'],
  ['treatment', true, 'A'],
  ['treatment', true, 'B'],
].map(([variant, nav, pricing]) =>
  group(
    field('experiments', [`checkout_v2:${String(variant)}`]),
    field('feature_flags', { new_nav: nav, pricing_test: pricing, beta: null }),
  ),
);
export const CUSTOMER_TIERS: readonly Field[] = fieldsOf('customer_tier', ['gold', null]);

/**
 * Large properties (an HTML snapshot of product cards): ASCII, multi-byte and astral characters, quotes, backslashes
 * and newlines. A large value is the first `k` units of this text; its JSON (escaped, UTF-8) is pre-encoded, so large
 * events cost a copy, not a JSON.stringify of tens of KB.
 */
const LARGE_UNIT =
  '<div class="product-card" data-sku="sku-1001">🎧 Wireless Headphones — 東京 — שלום — قهوة — 𝓢𝓹𝓮𝓬𝓲𝓪𝓵 — "quoted" \\ back\\slash\n</div>';
export const LARGE_MAX_UNITS = 900;
export const LARGE = {
  unitChars: LARGE_UNIT.length,
  unitJsonBytes: utf8(JSON.stringify(LARGE_UNIT).slice(1, -1)).length,
  text: LARGE_UNIT.repeat(LARGE_MAX_UNITS),
  /** UTF-8 of the escaped text, without quotes. */
  jsonBytes: utf8(JSON.stringify(LARGE_UNIT.repeat(LARGE_MAX_UNITS)).slice(1, -1)),
} as const;
