/**
 * Types of the standard ExperienceEvent fields the connector writes, as Adobe's XDM schemas define them (adobe/xdm
 * components/datatypes: webinfo, browserdetails, environment, device, demographic/geo, application, data/measure,
 * marketing/marketing, search, marketing/commerce, data/order, productlistitem). Checked by xdm-checks.ts: the JSON
 * type (integer vs number), closed enums (`enum`; `meta:enum` lists such as `device.type` or `eventType` are open
 * and not checked) and anchored patterns. `geo.stateProvince` is only a string here: its official pattern
 * `([A-Z]{2}-[A-Z0-9]{1,3}|)` is unanchored, so Platform accepts any string.
 */

export interface FieldType {
  readonly type: 'string' | 'integer' | 'number' | 'boolean';
  readonly enum?: readonly string[];
  readonly pattern?: RegExp;
  readonly minimum?: number;
}

const STRING: FieldType = { type: 'string' };
const INTEGER: FieldType = { type: 'integer' };
const COUNT: FieldType = { type: 'integer', minimum: 0 };
const NUMBER: FieldType = { type: 'number' };
const BOOLEAN: FieldType = { type: 'boolean' };
const CURRENCY: FieldType = { type: 'string', pattern: /^[A-Z]{3}$/ };

/** measure.schema.json: `value` is a number. */
const measures = (prefix: string, names: readonly string[]): Array<[string, FieldType]> =>
  names.map((n) => [`${prefix}.${n}.value`, NUMBER]);

/** Dotted path from the record root → type. */
export const STANDARD_FIELD_TYPES: ReadonlyMap<string, FieldType> = new Map<string, FieldType>([
  ['web.webPageDetails.URL', STRING],
  ['web.webPageDetails.name', STRING],
  ['web.webReferrer.URL', STRING],
  [
    'web.webReferrer.type',
    {
      type: 'string',
      enum: [
        'internal',
        'external',
        'search_engine',
        'typed_bookmarked',
        'email',
        'social',
        'usenet',
        'hard_drive',
        'nojs',
        'conversational_ai',
        'unknown',
      ],
    },
  ],
  ['web.webInteraction.URL', STRING],
  ['web.webInteraction.name', STRING],
  ['web.webInteraction.type', { type: 'string', enum: ['download', 'exit', 'other'] }],
  ...measures('web', ['webPageDetails.pageViews', 'webInteraction.linkClicks']),
  ['environment.type', { type: 'string', enum: ['browser', 'application', 'iot', 'external', 'widget'] }],
  ['environment.browserDetails.name', STRING],
  ['environment.browserDetails.version', STRING],
  ['environment.browserDetails.userAgent', STRING],
  ['environment.browserDetails.viewportWidth', INTEGER],
  ['environment.browserDetails.viewportHeight', INTEGER],
  ['environment.operatingSystem', STRING],
  ['environment.operatingSystemVersion', STRING],
  ['environment.carrier', STRING],
  [
    'environment.connectionType',
    {
      type: 'string',
      enum: [
        'dialup',
        'isdn',
        'bisdn',
        'dsl',
        'cable',
        'wireless_wifi',
        'mobile',
        'mobile_edge',
        'mobile_gprs',
        'mobile_2g',
        'mobile_3g',
        'mobile_lte',
        't1',
        't3',
        'oc3',
        'lan',
        'modem',
      ],
    },
  ],
  ['device.type', STRING],
  ['device.model', STRING],
  ['device.manufacturer', STRING],
  ['device.screenWidth', INTEGER],
  ['device.screenHeight', INTEGER],
  ['placeContext.geo.countryCode', { type: 'string', pattern: /^[A-Z]{2}$/ }],
  ['placeContext.geo.stateProvince', STRING],
  ['placeContext.geo.city', STRING],
  ['placeContext.geo.postalCode', STRING],
  ['application.name', STRING],
  ['application.version', STRING],
  ['application.sessionLength', COUNT],
  ['application.isLaunch', BOOLEAN],
  ['application.isInstall', BOOLEAN],
  ['application.isUpgrade', BOOLEAN],
  ['application.isClose', BOOLEAN],
  ['application.closeType', { type: 'string', enum: ['close', 'unknown'] }],
  ...measures('application', ['launches', 'firstLaunches', 'installs', 'upgrades', 'applicationCloses', 'crashes']),
  ['marketing.campaignName', STRING],
  ['marketing.campaignGroup', STRING],
  ['marketing.trackingCode', STRING],
  ['search.searchEngine', STRING],
  ['search.keywords', STRING],
  ...measures('commerce', ['purchases', 'productListAdds', 'checkouts', 'productViews', 'productListViews']),
  ...measures('commerce', ['cartAbandons']),
  ['commerce.order.purchaseID', STRING],
  ['commerce.order.priceTotal', NUMBER],
  ['commerce.order.currencyCode', CURRENCY],
]);

/** productlistitem.schema.json, for each entry of `productListItems`. */
export const PRODUCT_LIST_ITEM_TYPES: ReadonlyMap<string, FieldType> = new Map<string, FieldType>([
  ['SKU', STRING],
  ['name', STRING],
  ['quantity', INTEGER],
  ['priceTotal', NUMBER],
  ['currencyCode', CURRENCY],
]);

export interface TypeViolation {
  keyword: 'type' | 'enum' | 'pattern' | 'minimum';
  message: string;
}

/** Why a value does not fit its type, or undefined when it does. */
export function typeViolation(value: unknown, t: FieldType): TypeViolation | undefined {
  const ok =
    t.type === 'integer'
      ? Number.isInteger(value)
      : t.type === 'number'
        ? typeof value === 'number' && Number.isFinite(value)
        : typeof value === t.type;
  if (!ok) return { keyword: 'type', message: `expected type: ${TYPE_NAMES[t.type]}, found: ${describe(value)}` };
  if (t.enum !== undefined && !t.enum.includes(value as string)) {
    return { keyword: 'enum', message: `${JSON.stringify(value)} is not a valid enum value (${t.enum.join(', ')})` };
  }
  if (t.pattern !== undefined && !t.pattern.test(value as string)) {
    return { keyword: 'pattern', message: `string [${String(value)}] does not match pattern ${t.pattern.source}` };
  }
  if (t.minimum !== undefined && (value as number) < t.minimum) {
    return { keyword: 'minimum', message: `${String(value)} is not greater or equal to ${t.minimum}` };
  }
  return undefined;
}

const TYPE_NAMES = { string: 'String', integer: 'Integer', number: 'Number', boolean: 'Boolean' } as const;

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'JSONArray';
  if (typeof value === 'number') return Number.isInteger(value) ? 'Integer' : 'BigDecimal';
  return typeof value === 'object' ? 'JSONObject' : typeof value === 'string' ? 'String' : typeof value;
}
