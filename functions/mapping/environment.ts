/**
 * Fields derived from several Mixpanel default properties (mixpanel/docs
 * docs/data-structure/property-reference/default-properties.mdx): `environment.type`, `device.type` and
 * `environment.connectionType`. Their sources stay in the properties map (nothing is copied from them as is).
 */

/** `mp_lib` of the mobile SDKs and their React Native, Flutter and Unity wrappers. */
const MOBILE_LIBS: ReadonlySet<string> = new Set(['android', 'iphone', 'swift', 'react-native', 'flutter', 'unity']);

/**
 * `environment.type` (adobe/xdm components/datatypes/environment.schema.json, closed enum browser, application, iot,
 * external, widget): `browser` for the JavaScript library, `application` for the mobile SDKs; none for server
 * libraries (the event does not describe the user's environment).
 */
export function environmentType(lib: unknown): 'browser' | 'application' | undefined {
  if (lib === 'web') return 'browser';
  return typeof lib === 'string' && MOBILE_LIBS.has(lib) ? 'application' : undefined;
}

/**
 * `device.type` (adobe/xdm components/datatypes/device.schema.json, `meta:enum` mobile, tablet, desktop…). mixpanel-js
 * sets `$device` only on mobile browsers ("iPhone", "iPad", "Android"), so a browser event without it is a desktop;
 * on the mobile SDKs an iPad `$model` is a tablet, anything else a phone.
 */
export function deviceType(lib: unknown, device: unknown, model: unknown): 'mobile' | 'tablet' | 'desktop' | undefined {
  const env = environmentType(lib);
  if (env === 'browser') {
    if (typeof device !== 'string' || device.length === 0) return 'desktop';
    return device === 'iPad' ? 'tablet' : 'mobile';
  }
  if (env === 'application') return typeof model === 'string' && model.startsWith('iPad') ? 'tablet' : 'mobile';
  return undefined;
}

/** `$radio` (cellular standard) → environment.connectionType's closed enum; 5G and unknown standards are `mobile`. */
const RADIO_TYPES: Readonly<Record<string, string>> = {
  'wi-fi': 'wireless_wifi',
  wifi: 'wireless_wifi',
  lte: 'mobile_lte',
  '4g': 'mobile_lte',
  '3g': 'mobile_3g',
  '2g': 'mobile_2g',
  edge: 'mobile_edge',
  gprs: 'mobile_gprs',
};

/**
 * `environment.connectionType` (environment.schema.json: closed enum dialup … wireless_wifi, mobile, mobile_lte…)
 * from `$wifi` (true when Wi-Fi is connected) and `$radio`; undefined when neither tells ("None", absent).
 */
export function connectionType(wifi: unknown, radio: unknown): string | undefined {
  if (wifi === true || wifi === 'true') return 'wireless_wifi';
  if (typeof radio !== 'string' || radio.length === 0) return undefined;
  const lower = radio.toLowerCase();
  if (lower === 'none' || lower === 'unknown') return undefined;
  return RADIO_TYPES[lower] ?? 'mobile';
}
