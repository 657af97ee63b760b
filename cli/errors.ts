/**
 * Turns a failure into what an operator needs: which setting is wrong or which service is down, and how to fix it.
 * The product's errors already say what to do (ConfigError names every variable); this adds the one thing only the
 * CLI knows — which configuration variable a URL that could not be reached came from.
 */
import { DEFAULT_IMS_URL, DEFAULT_PLATFORM_URL, MIXPANEL_EXPORT_HOSTS, type MixpanelRegion } from '#common/config';
import { type ErrorKind, errorKind } from '#common/errors';
import { redact } from '#common/log';
import type { Env } from './env.ts';
import { EXIT_FAILED, EXIT_USAGE } from './io.ts';

/** Kinds that mean "fix the command line or the configuration" (exit 2) rather than "the run failed" (exit 1). */
const USAGE_KINDS: ReadonlySet<ErrorKind> = new Set(['config', 'input']);

/** Advice by kind, for a product error whose message cannot know it runs under the CLI. */
const KIND_HINTS: Partial<Record<ErrorKind, string>> = {
  transient:
    'The cause looks temporary (throttling, a busy or unreachable service): trying again later should get past it.',
};

const NETWORK_CODES: Record<string, string> = {
  ECONNREFUSED: 'connection refused: nothing is listening there',
  ENOTFOUND: 'host not found (DNS)',
  EAI_AGAIN: 'DNS lookup failed (temporary)',
  ETIMEDOUT: 'connection timed out',
  UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
  ECONNRESET: 'connection reset',
  EHOSTUNREACH: 'host unreachable',
  ENETUNREACH: 'network unreachable',
};

export interface Endpoint {
  readonly service: string;
  readonly url: string;
  /** The variable that set the URL, or the one that chose a default. */
  readonly variable: string;
  readonly isDefault: boolean;
}

/** Every remote endpoint the configuration in `env` points at. */
export function configuredEndpoints(env: Env): Endpoint[] {
  const out: Endpoint[] = [];
  const add = (
    service: string,
    variable: string,
    url: string | undefined,
    fallback?: { url: string; variable: string },
  ): void => {
    if (url !== undefined && url !== '') out.push({ service, url, variable, isDefault: false });
    else if (fallback !== undefined)
      out.push({ service, url: fallback.url, variable: fallback.variable, isDefault: true });
  };
  const region = (env.MIXPANEL_REGION ?? 'us') as MixpanelRegion;
  add('Mixpanel (Raw Event Export API)', 'MIXPANEL_API_BASE_URL', env.MIXPANEL_API_BASE_URL, {
    url: MIXPANEL_EXPORT_HOSTS[region] ?? MIXPANEL_EXPORT_HOSTS.us,
    variable: 'MIXPANEL_REGION',
  });
  add('Adobe IMS (token endpoint)', 'AEP_IMS_URL', env.AEP_IMS_URL, { url: DEFAULT_IMS_URL, variable: 'AEP_IMS_URL' });
  add('AEP streaming connection', 'AEP_INLET_URL', env.AEP_INLET_URL);
  add('AEP Platform API', 'AEP_PLATFORM_URL', env.AEP_PLATFORM_URL, {
    url: DEFAULT_PLATFORM_URL,
    variable: 'AEP_PLATFORM_URL',
  });
  const awsRegion = env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1';
  add(
    'S3',
    env.AWS_ENDPOINT_URL_S3 !== undefined ? 'AWS_ENDPOINT_URL_S3' : 'AWS_ENDPOINT_URL',
    env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL,
    {
      url: `https://s3.${awsRegion}.amazonaws.com`,
      variable: 'AWS_REGION',
    },
  );
  add(
    'Secrets Manager',
    env.AWS_ENDPOINT_URL_SECRETS_MANAGER !== undefined ? 'AWS_ENDPOINT_URL_SECRETS_MANAGER' : 'AWS_ENDPOINT_URL',
    env.AWS_ENDPOINT_URL_SECRETS_MANAGER ?? env.AWS_ENDPOINT_URL,
  );
  return out;
}

interface NetworkFailure {
  readonly code: string;
  readonly address?: string;
  readonly port?: number;
  readonly hostname?: string;
  /** Every message along the cause chain (URLs may be named there). */
  readonly text: string;
}

/** Finds a connection-level failure anywhere in the cause chain (and inside AggregateErrors). */
export function findNetworkFailure(error: unknown): NetworkFailure | undefined {
  const messages: string[] = [];
  let found: NetworkFailure | undefined;
  const seen = new Set<unknown>();
  const visit = (e: unknown): void => {
    if (e === null || typeof e !== 'object' || seen.has(e)) return;
    seen.add(e);
    const x = e as {
      code?: unknown;
      address?: unknown;
      port?: unknown;
      hostname?: unknown;
      message?: unknown;
      cause?: unknown;
      errors?: unknown;
    };
    if (typeof x.message === 'string') messages.push(x.message);
    if (found === undefined && typeof x.code === 'string' && x.code in NETWORK_CODES) {
      found = {
        code: x.code,
        ...(typeof x.address === 'string' ? { address: x.address } : {}),
        ...(typeof x.port === 'number' ? { port: x.port } : {}),
        ...(typeof x.hostname === 'string' ? { hostname: x.hostname } : {}),
        text: '',
      };
    }
    visit(x.cause);
    if (Array.isArray(x.errors)) x.errors.forEach(visit);
  };
  visit(error);
  return found === undefined ? undefined : { ...found, text: messages.join('\n') };
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost', '::ffff:127.0.0.1']);

function matches(f: NetworkFailure, e: Endpoint): boolean {
  let u: URL;
  try {
    u = new URL(e.url);
  } catch {
    return false;
  }
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
  // S3 addresses buckets virtual-hosted style: my-bucket.s3.eu-west-1.amazonaws.com.
  if (f.hostname !== undefined && (f.hostname === host || f.hostname.endsWith(`.${host}`))) return true;
  if (f.address !== undefined && f.port !== undefined) {
    const sameHost = f.address === host || (LOOPBACK.has(f.address) && LOOPBACK.has(host));
    if (sameHost && f.port === port) return true;
  }
  // No address on the error: the URL's origin may be named in one of the messages ("cannot reach http://…").
  return f.address === undefined && f.hostname === undefined && f.text.includes(u.origin);
}

/** "cannot reach X at URL (reason). URL comes from VAR …", or undefined when the error is not a connection failure. */
export function explainUnreachable(error: unknown, env: Env): string | undefined {
  const f = findNetworkFailure(error);
  if (f === undefined) return undefined;
  const reason = NETWORK_CODES[f.code] ?? f.code;
  const hits = configuredEndpoints(env).filter((e) => matches(f, e));
  if (hits.length === 0) {
    const where =
      f.hostname ?? (f.address !== undefined ? `${f.address}${f.port !== undefined ? `:${f.port}` : ''}` : 'a service');
    return `cannot reach ${where} (${f.code}: ${reason}). Check the service URLs in your configuration (MIXPANEL_API_BASE_URL, AEP_IMS_URL, AEP_INLET_URL, AEP_PLATFORM_URL, AWS_ENDPOINT_URL_S3).`;
  }
  const first = hits[0]!;
  const u = new URL(first.url);
  const at =
    f.hostname !== undefined && f.hostname !== u.hostname
      ? `${u.protocol}//${f.hostname}`
      : first.url === `${u.origin}/`
        ? u.origin
        : first.url;
  const services = [...new Set(hits.map((h) => h.service))].join(' / ');
  const explicit = [...new Set(hits.filter((h) => !h.isDefault).map((h) => h.variable))];
  let source: string;
  if (explicit.length > 0) {
    source = `That URL is set by ${explicit.join(', ')}: check the value and that the service is running.`;
  } else {
    const v = first.variable;
    const value =
      v === 'MIXPANEL_REGION'
        ? (env.MIXPANEL_REGION ?? 'us')
        : v === 'AWS_REGION'
          ? (env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1')
          : undefined;
    source = `That is the default for ${v}${value !== undefined ? ` (${v}=${value})` : ''}: check your network, proxy and firewall, ${DEFAULT_ADVICE[v] ?? `or set ${v}`}.`;
  }
  return `cannot reach ${services} at ${at} (${f.code}: ${reason}).\n  ${source}`;
}

/** What else to check when a default endpoint cannot be reached. */
const DEFAULT_ADVICE: Record<string, string> = {
  MIXPANEL_REGION: "that MIXPANEL_REGION is the project's data residency, or set MIXPANEL_API_BASE_URL",
  AWS_REGION: "that AWS_REGION is the bucket's region, or set AWS_ENDPOINT_URL_S3 for another S3",
};

/** The AWS SDK's own words for a machine without AWS settings, and what to do about them. */
const AWS_HINTS: ReadonlyArray<readonly [RegExp, string]> = [
  [/Region is missing/i, 'Set AWS_REGION to the region of the staging bucket (or a region in your AWS profile).'],
  [
    /Could not load credentials from any providers/i,
    'Configure AWS credentials: AWS_PROFILE (aws configure / aws sso login), or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.',
  ],
];

const ENV = Symbol('cli.env');

/**
 * Runs `fn`; a failure leaves with the environment the command used (`.env` included), so the message can name the
 * variable behind an unreachable URL.
 */
export async function withEnv<T>(env: Env, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (error) {
    if (error !== null && typeof error === 'object' && !(ENV in error))
      Object.defineProperty(error, ENV, { value: env });
    throw error;
  }
}

/** The text and exit code for a failure that ends a command. */
export function describeFailure(error: unknown, fallbackEnv: Env): { text: string; code: number } {
  const env =
    (error !== null && typeof error === 'object' && ENV in error ? (error as { [ENV]: Env })[ENV] : undefined) ??
    fallbackEnv;
  const unreachable = explainUnreachable(error, env);
  if (unreachable !== undefined) return { text: `error: ${redact(unreachable)}`, code: EXIT_FAILED };
  const e = error instanceof Error ? error : new Error(String(error));
  const kind = errorKind(e);
  const code = kind !== undefined && USAGE_KINDS.has(kind) ? EXIT_USAGE : EXIT_FAILED;
  const hint = AWS_HINTS.find(([pattern]) => pattern.test(e.message))?.[1] ?? (kind && KIND_HINTS[kind]);
  return { text: `error: ${redact(e.message)}${hint ? `\n  ${hint}` : ''}`, code };
}
