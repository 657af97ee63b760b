/**
 * Region names → ISO 3166-2 subdivision codes for `placeContext.geo.stateProvince`, which the XDM `geo` data type
 * describes as an ISO 3166-2 code (adobe/xdm components/datatypes/demographic/geo.schema.json, pattern
 * `[A-Z]{2}-[A-Z0-9]{1,3}`). Mixpanel's `$region` is a place name ("California", "Skåne") parsed from the IP
 * (mixpanel/docs docs/data-structure/property-reference/default-properties.mdx), so it is looked up by country.
 *
 * The data is the `country-region-data` package (country → regions with their ISO 3166-2 short codes), indexed per
 * country on first use. A name that does not resolve gives no code (the field is left out; `$region` stays in the
 * properties map).
 */
import { allCountries } from 'country-region-data';

/** ISO 3166-2 code: country, hyphen, one to three letters or digits (geo.schema.json pattern). */
const SUBDIVISION = /^[A-Z]{2}-[A-Z0-9]{1,3}$/;
/** Words geolocation databases add to a region's name that the package's names do not carry. */
const SUFFIXES =
  /(county|province|prefecture|governorate|region|state|oblast|voivodeship|district|teukbyeolsi|gwangyeoksi|do)$/;
const CACHE_LIMIT = 4096;

let countries: Map<string, readonly [string, string][]> | undefined;
const indexes = new Map<string, Map<string, string>>();
/** Country → region as given → its code (null: none). Two levels: no key string is built per event. */
const cache = new Map<string, Map<string, string | null>>();
let cached = 0;

/** Lower-case ASCII letters and digits only: "Tel-Aviv" and "Tel Aviv", "Zürich" and "Zurich" meet. */
function normalise(name: string): string {
  return name
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .toLowerCase()
    .replace(/[^a-z0-9]/g, '');
}

function indexOf(country: string): Map<string, string> | undefined {
  let index = indexes.get(country);
  if (index !== undefined) return index;
  countries ??= new Map(allCountries.map((c) => [c[1], c[2] as unknown as [string, string][]]));
  const regions = countries.get(country);
  if (regions === undefined) return undefined;
  index = new Map();
  for (const [name, short] of regions) {
    const code = `${country}-${short.toUpperCase()}`;
    if (!SUBDIVISION.test(code)) continue;
    const key = normalise(name);
    index.set(key, code);
    const bare = key.replace(SUFFIXES, '');
    if (bare.length > 2 && !index.has(bare)) index.set(bare, code);
    // A region already given as its code ("CA", "US-CA").
    index.set(`#${short.toUpperCase()}`, code);
  }
  indexes.set(country, index);
  return index;
}

/**
 * ISO 3166-2 code of a region of `country` (ISO 3166-1 alpha-2, upper case), or undefined when it does not resolve.
 * Cached: an export repeats the same few places.
 */
export function subdivisionCode(country: string, region: string): string | undefined {
  let regions = cache.get(country);
  const hit = regions?.get(region);
  if (hit !== undefined) return hit ?? undefined;
  const code = resolve(country, region);
  if (cached >= CACHE_LIMIT) {
    cache.clear();
    cached = 0;
    regions = undefined;
  }
  if (regions === undefined) {
    regions = new Map();
    cache.set(country, regions);
  }
  regions.set(region, code ?? null);
  cached++;
  return code;
}

function resolve(country: string, region: string): string | undefined {
  const index = indexOf(country);
  if (index === undefined || region.length === 0) return undefined;
  const upper = region.toUpperCase();
  const short = upper.startsWith(`${country}-`) ? upper.slice(3) : upper;
  const byCode = index.get(`#${short}`);
  const key = normalise(region);
  return index.get(key) ?? index.get(key.replace(SUFFIXES, '')) ?? byCode;
}
