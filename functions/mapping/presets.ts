/**
 * The tables behind the two presets and the standard XDM paths a mapping may write to. Data only: the rules that
 * combine them with a user's mapping config live in config.ts.
 */

/** How a source value becomes an output value; every conversion either succeeds cleanly or leaves the field out. */
export type Conversion =
  /** Free text: strings as-is, numbers and booleans as their text, objects and arrays as JSON text. */
  | 'string'
  /** Names and versions of standard fields: strings as-is, finite numbers as text (`120` → `"120"`), nothing else. */
  | 'text'
  /** `format: uri` (RFC 3986): an absolute URI with a scheme and no characters URIs forbid. */
  | 'uri'
  /** ISO 3166-1 alpha-2, `pattern: ^[A-Z]{2}$` (lower case is upper-cased). */
  | 'country'
  /** Safe integers, from numbers or from decimal-digit strings (`"1920"` → 1920). */
  | 'integer'
  /** Finite numbers, from numbers or decimal strings. */
  | 'number'
  /** Booleans, from booleans or the strings `"true"` / `"false"`. */
  | 'boolean'
  /** ISO 8601 UTC with milliseconds, from epoch seconds/ms (same unit rule as `time`) or ISO 8601 strings. */
  | 'date-time'
  /** Integers from any finite number or decimal string, rounded (`12.6` seconds → 13). */
  | 'whole'
  /** Epoch seconds as an integer from seconds or milliseconds (same unit rule as `time`), fraction dropped. */
  | 'epoch-seconds'
  /** ISO 3166-2 code of a region name in the record's `placeContext.geo.countryCode` (geo.ts). */
  | 'region';

/** Types a mapping config may ask for (`fields[].type`). */
export const FIELD_TYPES = ['string', 'integer', 'number', 'boolean', 'date-time'] as const;
export type FieldType = (typeof FIELD_TYPES)[number];

/** The type a conversion produces, as a config `type`. */
export function fieldTypeOf(conversion: Conversion): FieldType {
  switch (conversion) {
    case 'text':
    case 'uri':
    case 'country':
    case 'region':
      return 'string';
    case 'whole':
    case 'epoch-seconds':
      return 'integer';
    default:
      return conversion;
  }
}

/** Where a preset field takes its value from. */
export type PresetSource =
  | { kind: 'event' }
  | { kind: 'property'; key: string }
  /** The Mixpanel project id of the mapper context. */
  | { kind: 'projectId' }
  /** Mixpanel's `time` as epoch milliseconds (project-local for legacy projects; `timestamp` carries the true instant). */
  | { kind: 'timeMs' };

export interface PresetField {
  /** Path below the tenant object, e.g. `mixpanel.eventName` → `_acme.mixpanel.eventName`. */
  path: string;
  source: PresetSource;
  conversion: Conversion;
  /** Written when the source property is absent (only `import`: Mixpanel marks imported events, not tracked ones). */
  whenAbsent?: boolean;
  title: string;
  description: string;
}

/** A standard XDM path the mapper may fill, with the field group that defines it. */
export interface StandardPath {
  conversion: Conversion;
  fieldGroup: string;
}

// Field groups of the XDM ExperienceEvent class (https://github.com/adobe/xdm, components/fieldgroups/experience-event):
// experienceevent-web.schema.json ("Web Details") and experienceevent-environment-details.schema.json ("Environment
// Details", which carries environment, device and placeContext).
export const WEB_DETAILS_FIELD_GROUP = 'https://ns.adobe.com/xdm/context/experienceevent-web';
export const ENVIRONMENT_DETAILS_FIELD_GROUP = 'https://ns.adobe.com/xdm/context/experienceevent-environment-details';
// experienceevent-application.schema.json, experienceevent-marketing.schema.json, experienceevent-search.schema.json,
// experienceevent-commerce.schema.json (commerce and productListItems).
export const APPLICATION_FIELD_GROUP = 'https://ns.adobe.com/xdm/context/experienceevent-application';
export const MARKETING_FIELD_GROUP = 'https://ns.adobe.com/xdm/context/experienceevent-marketing';
export const SEARCH_FIELD_GROUP = 'https://ns.adobe.com/xdm/context/experienceevent-search';
export const COMMERCE_FIELD_GROUP = 'https://ns.adobe.com/xdm/context/experienceevent-commerce';

/**
 * Standard paths a mapping may write to, with their XDM types (adobe/xdm components/datatypes): webinfo
 * (`URL`: string, written as an RFC 3986 URI; names: string), browserdetails (name/version/userAgent: string;
 * viewport sizes: integer), environment (operatingSystem/Version, carrier: string), device (model/manufacturer: string;
 * screenWidth/Height: integer), geo (countryCode: `^[A-Z]{2}$`; stateProvince: ISO 3166-2), application
 * (version: string; sessionLength: integer, minimum 0), marketing/marketing (campaignName, trackingCode: string) and
 * search (searchEngine, keywords: string). Mixpanel properties without a field in these data types (`$screen_dpi`,
 * `$app_build_number`, `$initial_referrer`, `$brand`, `utm_source`, `utm_medium`…) stay in the properties map.
 */
export const STANDARD_PATHS: Readonly<Record<string, StandardPath>> = {
  'web.webPageDetails.URL': { conversion: 'uri', fieldGroup: WEB_DETAILS_FIELD_GROUP },
  'web.webPageDetails.name': { conversion: 'text', fieldGroup: WEB_DETAILS_FIELD_GROUP },
  'web.webReferrer.URL': { conversion: 'uri', fieldGroup: WEB_DETAILS_FIELD_GROUP },
  'environment.browserDetails.name': { conversion: 'text', fieldGroup: ENVIRONMENT_DETAILS_FIELD_GROUP },
  'environment.browserDetails.version': { conversion: 'text', fieldGroup: ENVIRONMENT_DETAILS_FIELD_GROUP },
  'environment.browserDetails.userAgent': { conversion: 'text', fieldGroup: ENVIRONMENT_DETAILS_FIELD_GROUP },
  'environment.browserDetails.viewportWidth': { conversion: 'integer', fieldGroup: ENVIRONMENT_DETAILS_FIELD_GROUP },
  'environment.browserDetails.viewportHeight': { conversion: 'integer', fieldGroup: ENVIRONMENT_DETAILS_FIELD_GROUP },
  'environment.operatingSystem': { conversion: 'text', fieldGroup: ENVIRONMENT_DETAILS_FIELD_GROUP },
  'environment.operatingSystemVersion': { conversion: 'text', fieldGroup: ENVIRONMENT_DETAILS_FIELD_GROUP },
  'device.model': { conversion: 'text', fieldGroup: ENVIRONMENT_DETAILS_FIELD_GROUP },
  'device.manufacturer': { conversion: 'text', fieldGroup: ENVIRONMENT_DETAILS_FIELD_GROUP },
  'device.screenWidth': { conversion: 'integer', fieldGroup: ENVIRONMENT_DETAILS_FIELD_GROUP },
  'device.screenHeight': { conversion: 'integer', fieldGroup: ENVIRONMENT_DETAILS_FIELD_GROUP },
  'placeContext.geo.countryCode': { conversion: 'country', fieldGroup: ENVIRONMENT_DETAILS_FIELD_GROUP },
  'placeContext.geo.city': { conversion: 'text', fieldGroup: ENVIRONMENT_DETAILS_FIELD_GROUP },
  'placeContext.geo.stateProvince': { conversion: 'region', fieldGroup: ENVIRONMENT_DETAILS_FIELD_GROUP },
  'placeContext.geo.postalCode': { conversion: 'text', fieldGroup: ENVIRONMENT_DETAILS_FIELD_GROUP },
  'environment.carrier': { conversion: 'text', fieldGroup: ENVIRONMENT_DETAILS_FIELD_GROUP },
  'web.webInteraction.URL': { conversion: 'uri', fieldGroup: WEB_DETAILS_FIELD_GROUP },
  'web.webInteraction.name': { conversion: 'text', fieldGroup: WEB_DETAILS_FIELD_GROUP },
  'application.version': { conversion: 'text', fieldGroup: APPLICATION_FIELD_GROUP },
  'application.sessionLength': { conversion: 'whole', fieldGroup: APPLICATION_FIELD_GROUP },
  'marketing.campaignName': { conversion: 'text', fieldGroup: MARKETING_FIELD_GROUP },
  'marketing.trackingCode': { conversion: 'text', fieldGroup: MARKETING_FIELD_GROUP },
  'search.searchEngine': { conversion: 'text', fieldGroup: SEARCH_FIELD_GROUP },
  'search.keywords': { conversion: 'text', fieldGroup: SEARCH_FIELD_GROUP },
};

/**
 * Preset `default`: Mixpanel default properties (mixpanel/docs docs/data-structure/property-reference/
 * default-properties.mdx; autocapture: docs/tracking-methods/sdks/javascript.mdx; `$ae_session_length`:
 * docs/tracking-methods/sdks/ios.mdx) → standard XDM fields (docs/xdm-mapping.md). `mp_country_code` comes before
 * `$region`: the region's code is looked up in the country written first.
 */
export const DEFAULT_STANDARD_FIELDS: ReadonlyArray<{ key: string; path: string }> = [
  { key: '$current_url', path: 'web.webPageDetails.URL' },
  { key: '$referrer', path: 'web.webReferrer.URL' },
  { key: '$browser', path: 'environment.browserDetails.name' },
  { key: '$browser_version', path: 'environment.browserDetails.version' },
  { key: '$os', path: 'environment.operatingSystem' },
  { key: '$os_version', path: 'environment.operatingSystemVersion' },
  { key: '$model', path: 'device.model' },
  { key: '$manufacturer', path: 'device.manufacturer' },
  { key: '$screen_width', path: 'device.screenWidth' },
  { key: '$screen_height', path: 'device.screenHeight' },
  { key: 'mp_country_code', path: 'placeContext.geo.countryCode' },
  { key: '$city', path: 'placeContext.geo.city' },
  { key: '$region', path: 'placeContext.geo.stateProvince' },
  { key: 'current_page_title', path: 'web.webPageDetails.name' },
  { key: '$el_attr__href', path: 'web.webInteraction.URL' },
  { key: '$viewportWidth', path: 'environment.browserDetails.viewportWidth' },
  { key: '$viewportHeight', path: 'environment.browserDetails.viewportHeight' },
  { key: '$carrier', path: 'environment.carrier' },
  { key: '$app_version_string', path: 'application.version' },
  { key: '$ae_session_length', path: 'application.sessionLength' },
  { key: 'utm_campaign', path: 'marketing.campaignName' },
  { key: 'utm_id', path: 'marketing.trackingCode' },
  { key: '$search_engine', path: 'search.searchEngine' },
  { key: 'mp_keyword', path: 'search.keywords' },
];

/** Preset `default`: the `_{tenant}.mixpanel` object. */
export const DEFAULT_TENANT_FIELDS: readonly PresetField[] = [
  {
    path: 'mixpanel.eventName',
    source: { kind: 'event' },
    conversion: 'string',
    title: 'Event name',
    description: 'Mixpanel event name (`event`).',
  },
  {
    path: 'mixpanel.distinctId',
    source: { kind: 'property', key: 'distinct_id' },
    conversion: 'string',
    title: 'Distinct ID',
    description: 'Mixpanel `distinct_id`.',
  },
  {
    path: 'mixpanel.insertId',
    source: { kind: 'property', key: '$insert_id' },
    conversion: 'string',
    title: 'Insert ID',
    description: 'Mixpanel `$insert_id` (deduplication key).',
  },
  {
    path: 'mixpanel.time',
    source: { kind: 'timeMs' },
    conversion: 'integer',
    title: 'Mixpanel time (ms)',
    description:
      'Mixpanel `time` as epoch milliseconds, as Mixpanel stores it (project-local for projects created before 2023); `timestamp` holds the true instant.',
  },
  {
    path: 'mixpanel.processingTimeMs',
    source: { kind: 'property', key: 'mp_processing_time_ms' },
    conversion: 'integer',
    title: 'Processing time (ms)',
    description: 'Mixpanel `mp_processing_time_ms`: when Mixpanel processed the event, epoch milliseconds UTC.',
  },
  {
    path: 'mixpanel.apiTimestampMs',
    source: { kind: 'property', key: '$mp_api_timestamp_ms' },
    conversion: 'integer',
    title: 'API timestamp (ms)',
    description: 'Mixpanel `$mp_api_timestamp_ms`: when the ingestion API received the event, epoch milliseconds UTC.',
  },
  {
    path: 'mixpanel.apiEndpoint',
    source: { kind: 'property', key: '$mp_api_endpoint' },
    conversion: 'string',
    title: 'API endpoint',
    description: 'Mixpanel `$mp_api_endpoint`.',
  },
  {
    path: 'mixpanel.import',
    source: { kind: 'property', key: '$import' },
    conversion: 'boolean',
    whenAbsent: false,
    title: 'Imported',
    description: 'Mixpanel `$import`: true when the event came through the /import API (false when absent).',
  },
  {
    path: 'mixpanel.projectId',
    source: { kind: 'projectId' },
    conversion: 'string',
    title: 'Project ID',
    description: 'Mixpanel project id.',
  },
];

/** Preset `default`: where every other property goes, as a map of strings. */
export const DEFAULT_PROPERTIES_MAP_PATH = 'mixpanel.properties';

/**
 * Preset `adobe-source`: exactly the eleven fields of Adobe's own Mixpanel source, under the tenant object
 * (Adobe Experience Platform sources documentation, "Mixpanel": help/sources/tutorials/.../mixpanel.md).
 */
export const ADOBE_SOURCE_FIELDS: readonly PresetField[] = [
  {
    path: 'distinct_id',
    source: { kind: 'property', key: 'distinct_id' },
    conversion: 'string',
    title: 'distinct_id',
    description: 'Mixpanel `distinct_id`.',
  },
  {
    path: 'event_name',
    source: { kind: 'event' },
    conversion: 'string',
    title: 'event_name',
    description: 'Mixpanel event name.',
  },
  {
    path: 'import',
    source: { kind: 'property', key: '$import' },
    conversion: 'boolean',
    whenAbsent: false,
    title: 'import',
    description: 'Mixpanel `$import` (false when absent).',
  },
  {
    path: 'insert_id',
    source: { kind: 'property', key: '$insert_id' },
    conversion: 'string',
    title: 'insert_id',
    description: 'Mixpanel `$insert_id`.',
  },
  {
    path: 'item_id',
    source: { kind: 'property', key: 'item_id' },
    conversion: 'string',
    title: 'item_id',
    description: 'Property `item_id`.',
  },
  {
    path: 'item_name',
    source: { kind: 'property', key: 'item_name' },
    conversion: 'string',
    title: 'item_name',
    description: 'Property `item_name`.',
  },
  {
    path: 'item_price',
    source: { kind: 'property', key: 'item_price' },
    conversion: 'string',
    title: 'item_price',
    description: 'Property `item_price`, as text.',
  },
  {
    path: 'mp_api_endpoint',
    source: { kind: 'property', key: '$mp_api_endpoint' },
    conversion: 'string',
    title: 'mp_api_endpoint',
    description: 'Mixpanel `$mp_api_endpoint`.',
  },
  {
    path: 'mp_api_timestamp_ms',
    source: { kind: 'property', key: '$mp_api_timestamp_ms' },
    conversion: 'whole',
    title: 'mp_api_timestamp_ms',
    description: 'Mixpanel `$mp_api_timestamp_ms`.',
  },
  {
    path: 'mp_processing_time_ms',
    source: { kind: 'property', key: 'mp_processing_time_ms' },
    conversion: 'whole',
    title: 'mp_processing_time_ms',
    description: 'Mixpanel `mp_processing_time_ms`.',
  },
  {
    path: 'time',
    source: { kind: 'property', key: 'time' },
    conversion: 'epoch-seconds',
    title: 'time',
    description:
      'Mixpanel `time` in whole epoch seconds (an export in milliseconds or with a fraction is brought to seconds).',
  },
];

/**
 * `eventType` of every event not in the tables (eventType is an extensible enum, so custom values are allowed:
 * `meta:enum`, not `enum`, in adobe/xdm components/behaviors/time-series.schema.json). `defaultEventType` overrides it.
 */
export const FALLBACK_EVENT_TYPE = 'mixpanel.event';

/** XDM identityMap `authenticatedState` values (identityitem data type; `ambiguous` is the XDM default). */
export const AUTHENTICATED_STATES = ['ambiguous', 'authenticated', 'loggedOut'] as const;
export type AuthenticatedState = (typeof AUTHENTICATED_STATES)[number];

export interface IdentityDefault {
  from: string;
  namespace: string;
  primary?: boolean;
  authenticatedState?: AuthenticatedState;
}

/** Preset `default` identities (docs/xdm-mapping.md); `distinct_id` is the primary one. */
export const DEFAULT_IDENTITIES: readonly IdentityDefault[] = [
  { from: 'properties.distinct_id', namespace: 'MixpanelDistinctId', primary: true },
  { from: 'properties.$device_id', namespace: 'MixpanelDeviceId' },
  { from: 'properties.$user_id', namespace: 'MixpanelUserId', authenticatedState: 'authenticated' },
];
