/**
 * URLs for XDM `format: uri` fields (webPageDetails.URL, webReferrer.URL, webInteraction.URL; adobe/xdm
 * components/datatypes/webinfo.schema.json): an RFC 3986 absolute URI. Browsers report URLs with spaces or non-ASCII
 * characters as typed (`$current_url`, mixpanel/docs docs/data-structure/property-reference/default-properties.mdx);
 * such characters are percent-encoded (UTF-8, RFC 3986 section 2.1) instead of the URL being dropped.
 */

/** ASCII codes RFC 3986 never allows in a URI: controls, space, DEL and `"<>\\^`{|}`. */
const URI_FORBIDDEN = new Uint8Array(128);
for (let c = 0; c <= 32; c++) URI_FORBIDDEN[c] = 1;
for (const c of '"<>\\^`{|}\u007f') URI_FORBIDDEN[c.charCodeAt(0)] = 1;
const HEX = '0123456789ABCDEF';

/** `scheme ":"` with RFC 3986 scheme characters and something after it; the index of the colon, or -1. */
function schemeEnd(value: string): number {
  const first = value.charCodeAt(0);
  if (!((first >= 65 && first <= 90) || (first >= 97 && first <= 122))) return -1;
  for (let i = 1; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c === 58) return i < value.length - 1 ? i : -1; // ':'
    const schemeChar =
      (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 43 || c === 45 || c === 46;
    if (!schemeChar) return -1;
  }
  return -1;
}

function isHex(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 70) || (c >= 97 && c <= 102);
}

/**
 * The value as an absolute URI: unchanged when it already is one, otherwise with every character a URI cannot hold
 * percent-encoded (a `%` not starting an escape becomes `%25`, a lone surrogate U+FFFD). Undefined when the value has
 * no scheme (a relative URL or Mixpanel's `$direct`): it cannot become an absolute URI.
 */
export function toUri(value: string): string | undefined {
  const colon = schemeEnd(value);
  if (colon < 0) return undefined;
  let i = colon + 1;
  for (; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c >= 128 || URI_FORBIDDEN[c] === 1 || (c === 37 && !validEscape(value, i))) break;
  }
  if (i === value.length) return value;
  let out = value.slice(0, i);
  for (; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 128) {
      out +=
        URI_FORBIDDEN[c] === 1 || (c === 37 && !validEscape(value, i)) ? `%${HEX[c >> 4]}${HEX[c & 15]}` : value[i];
      continue;
    }
    // One code point (a surrogate pair when it is one) as its UTF-8 bytes.
    const cp = value.codePointAt(i) as number;
    if (cp > 0xffff) i++;
    const lone = cp >= 0xd800 && cp <= 0xdfff;
    for (const byte of Buffer.from(lone ? '\ufffd' : String.fromCodePoint(cp), 'utf8')) {
      out += `%${HEX[byte >> 4]}${HEX[byte & 15]}`;
    }
  }
  return out;
}

function validEscape(value: string, at: number): boolean {
  return at + 2 < value.length && isHex(value.charCodeAt(at + 1)) && isHex(value.charCodeAt(at + 2));
}
