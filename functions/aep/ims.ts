/**
 * OAuth Server-to-Server access tokens from Adobe IMS for the Platform APIs and authenticated streaming connections.
 *
 * Adobe: "OAuth Server-to-Server credential API Reference"
 * (https://developer.adobe.com/developer-console/docs/guides/authentication/ServerToServerAuthentication/ims):
 * `POST /ims/token/v3`, form-encoded `grant_type=client_credentials`, `client_id`, `client_secret`, `scope`
 * (comma-separated) → `{"access_token","token_type":"bearer","expires_in": 86399}` (seconds). There is no refresh
 * token: a new token is simply requested before the old one expires (AdobeDocs/experience-platform.en
 * help/landing/api-authentication.md: "a new token must be generated every 24 hours").
 */
import { DEFAULT_RETRY_POLICY, RetriesExhaustedError, withRetry, type RetryPolicy } from '#common/retry';
import type { Log } from '#common/log';
import { ConnectorError, kindFromCause } from '#common/errors';
import {
  AepHttpError,
  AepNetworkError,
  classifyAepFailure,
  fetchOrNetworkError,
  httpErrorFrom,
  scrub,
} from './errors.ts';

/**
 * Scopes Adobe Developer Console attaches to an Experience Platform API OAuth Server-to-Server credential; the same
 * list appears in Adobe's Data Distiller notebook guide (`scopes=openid, AdobeID, read_organizations,
 * additional_info.projectedProductContext, session`). Override with `scopes` in the secret when the console shows others.
 */
export const DEFAULT_PLATFORM_SCOPES: readonly string[] = [
  'openid',
  'AdobeID',
  'read_organizations',
  'additional_info.projectedProductContext',
  'session',
];

/** Renew this long before expiry so a token never expires in the middle of a run. */
export const DEFAULT_REFRESH_MARGIN_MS = 5 * 60_000;

/** Server-to-Server tokens live 24 h (86,399 s); anything above ten days must be milliseconds (the legacy JWT exchange answered `expires_in` in ms, api-authentication.md). */
const MAX_PLAUSIBLE_EXPIRES_IN_SECONDS = 10 * 86_400;

const DEFAULT_TIMEOUT_MS = 15_000;

/** The OAuth Server-to-Server credential of the Developer Console project (the content of `AEP_SECRET_ID`). */
export interface AepCredentials {
  readonly clientId: string;
  readonly clientSecret: string;
  /** `...@AdobeOrg`. */
  readonly orgId: string;
  /** Defaults to {@link DEFAULT_PLATFORM_SCOPES}. */
  readonly scopes?: readonly string[];
}

/** A valid token together with the credential it was issued to (the Platform headers must name the same client). */
export interface ImsAuth {
  readonly accessToken: string;
  readonly clientId: string;
  readonly orgId: string;
  /** Epoch ms at which IMS said the token expires. */
  readonly expiresAtMs: number;
}

export interface ImsTokenProviderOptions {
  /** Token endpoint (`AEP_IMS_URL`). */
  readonly imsUrl: string;
  /** Read on every token request, so a rotated secret is picked up after {@link ImsTokenProvider.invalidate}. */
  readonly credentials: () => Promise<AepCredentials>;
  readonly fetch?: typeof fetch;
  readonly now?: () => number;
  /** @default 5 minutes (capped at half the token's lifetime). */
  readonly refreshMarginMs?: number;
  /** @default DEFAULT_RETRY_POLICY */
  readonly retry?: RetryPolicy;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly random?: () => number;
  /** @default 15 s per IMS request. */
  readonly timeoutMs?: number;
  readonly log?: Log;
}

/** IMS would not give us a token. The message says what to check; it never contains the secret. */
export class ImsError extends ConnectorError {
  /** HTTP status from IMS, when it answered. */
  readonly status: number | undefined;
  constructor(message: string, options: { cause?: unknown; status?: number | undefined } = {}) {
    super(kindFromCause(options.cause), message, { cause: options.cause });
    this.name = 'ImsError';
    this.status = options.status;
  }
}

/**
 * Caches one token and renews it shortly before it expires. Concurrent callers share a single IMS request.
 * After a 401/403 from Platform, callers {@link invalidate} the token they used and try once more.
 */
export class ImsTokenProvider {
  readonly #opts: ImsTokenProviderOptions;
  readonly #fetch: typeof fetch;
  readonly #now: () => number;
  #cached: (ImsAuth & { readonly renewAtMs: number }) | undefined;
  #inFlight: Promise<ImsAuth> | undefined;
  #generation = 0;

  constructor(opts: ImsTokenProviderOptions) {
    this.#opts = opts;
    this.#fetch = opts.fetch ?? globalThis.fetch;
    this.#now = opts.now ?? Date.now;
  }

  /** A bearer token, renewed once it is within the refresh margin of its expiry. */
  async token(): Promise<string> {
    return (await this.auth()).accessToken;
  }

  /** The current token with the client id and org it belongs to. */
  async auth(): Promise<ImsAuth> {
    const cached = this.#cached;
    if (cached !== undefined && this.#now() < cached.renewAtMs) return cached;
    if (this.#inFlight === undefined) {
      const generation = this.#generation;
      const request = this.#request().then((auth) => {
        if (generation === this.#generation) this.#cached = auth;
        return auth;
      });
      this.#inFlight = request;
      const clear = (): void => {
        if (this.#inFlight === request) this.#inFlight = undefined;
      };
      request.then(clear, clear);
    }
    if (cached === undefined || this.#now() >= cached.expiresAtMs) return this.#inFlight;
    // Renewing early: if IMS fails now, the current token still works until it expires, so keep using it.
    try {
      return await this.#inFlight;
    } catch (error) {
      if (this.#cached !== cached || this.#now() >= cached.expiresAtMs) throw error;
      this.#opts.log?.warn('could not renew the IMS access token early; using the current one until it expires', {
        reason: (error as Error).message,
      });
      return cached;
    }
  }

  /**
   * Forgets the cached token so the next call asks IMS again (and re-reads the credentials).
   * @param rejectedToken the token Platform refused; when given and a newer token is already cached (another request
   *   renewed it meanwhile), nothing is dropped.
   */
  invalidate(rejectedToken?: string): void {
    if (rejectedToken !== undefined) {
      const renewedMeanwhile =
        this.#cached !== undefined ? this.#cached.accessToken !== rejectedToken : this.#inFlight !== undefined;
      if (renewedMeanwhile) return;
    }
    this.#cached = undefined;
    this.#inFlight = undefined;
    this.#generation++;
  }

  async #request(): Promise<ImsAuth & { renewAtMs: number }> {
    const { imsUrl } = this.#opts;
    let credentials: AepCredentials;
    try {
      credentials = await this.#opts.credentials();
    } catch (error) {
      throw new ImsError(
        'Could not read the AEP credentials (AEP_SECRET_ID, or AEP_CLIENT_ID/AEP_CLIENT_SECRET/AEP_ORG_ID locally). Check the secret exists and this function may read it.',
        { cause: error },
      );
    }
    const secrets = [credentials.clientSecret];
    const scopes =
      credentials.scopes !== undefined && credentials.scopes.length > 0 ? credentials.scopes : DEFAULT_PLATFORM_SCOPES;
    const form = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: credentials.clientId,
      client_secret: credentials.clientSecret,
      scope: scopes.join(','),
    }).toString();
    const what = `IMS token request to ${imsUrl}`;
    const hint =
      'Check the client id and client secret of the OAuth Server-to-Server credential, that its scopes match the Developer Console project, and AEP_IMS_URL.';
    const startedAt = this.#now();
    let body: unknown;
    try {
      body = await withRetry(
        what,
        async () => {
          const response = await fetchOrNetworkError(
            this.#fetch,
            what,
            imsUrl,
            {
              method: 'POST',
              headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
              body: form,
            },
            this.#opts.timeoutMs ?? DEFAULT_TIMEOUT_MS,
          );
          if (!response.ok) {
            throw await httpErrorFrom(response, { what, service: 'ims', hint, secrets, nowMs: this.#now() });
          }
          return (await response.json()) as unknown;
        },
        {
          classify: classifyAepFailure,
          policy: this.#opts.retry ?? DEFAULT_RETRY_POLICY,
          now: this.#now,
          ...(this.#opts.sleep === undefined ? {} : { sleep: this.#opts.sleep }),
          ...(this.#opts.random === undefined ? {} : { random: this.#opts.random }),
          onRetry: ({ attempt, delayMs, error }) =>
            this.#opts.log?.warn('retrying IMS token request', {
              attempt,
              delayMs,
              reason: scrub(String((error as Error).message), secrets),
            }),
        },
      );
    } catch (error) {
      throw toImsError(error, imsUrl, secrets);
    }
    const parsed = body as { access_token?: unknown; expires_in?: unknown };
    if (typeof parsed.access_token !== 'string' || parsed.access_token === '') {
      throw new ImsError(
        `IMS at ${imsUrl} answered without an access_token. Check AEP_IMS_URL points at the /ims/token/v3 endpoint.`,
      );
    }
    const lifetimeMs = expiresInMs(parsed.expires_in);
    const expiresAtMs = startedAt + lifetimeMs;
    const margin = Math.min(this.#opts.refreshMarginMs ?? DEFAULT_REFRESH_MARGIN_MS, lifetimeMs / 2);
    this.#opts.log?.debug('got an IMS access token', { expiresInSeconds: Math.round(lifetimeMs / 1000) });
    return {
      accessToken: parsed.access_token,
      clientId: credentials.clientId,
      orgId: credentials.orgId,
      expiresAtMs,
      renewAtMs: expiresAtMs - margin,
    };
  }
}

function expiresInMs(value: unknown): number {
  const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : Number.NaN;
  // No usable expiry: assume the documented 24 h lifetime minus a safety hour.
  if (!Number.isFinite(n) || n <= 0) return 23 * 3_600_000;
  return n > MAX_PLAUSIBLE_EXPIRES_IN_SECONDS ? n : n * 1000;
}

function toImsError(error: unknown, imsUrl: string, secrets: string[]): ImsError {
  const last = error instanceof RetriesExhaustedError ? error.cause : error;
  if (last instanceof AepHttpError) {
    const retried = error instanceof RetriesExhaustedError ? ` (tried ${error.attempts} times)` : '';
    const check =
      last.status === 400 || last.status === 401 || last.status === 403
        ? 'Check the client id and client secret of the OAuth Server-to-Server credential (was the secret rotated?), and that the requested scopes are the ones the Developer Console project lists.'
        : `IMS is failing or throttling; try again later and check AEP_IMS_URL (${imsUrl}).`;
    const code = last.adobeCode === undefined ? '' : ` ${last.adobeCode}`;
    const said = last.adobeMessage === '' ? '' : `: ${last.adobeMessage}`;
    return new ImsError(
      scrub(`IMS refused the token request with HTTP ${last.status}${code}${said}${retried}. ${check}`, secrets),
      { cause: error, status: last.status },
    );
  }
  if (last instanceof AepNetworkError) {
    return new ImsError(
      scrub(
        `Could not reach IMS at ${imsUrl}: ${last.message} Check AEP_IMS_URL and outbound network access.`,
        secrets,
      ),
      { cause: error },
    );
  }
  return new ImsError(
    scrub(`IMS token request to ${imsUrl} failed: ${String((error as Error)?.message ?? error)}`, secrets),
    {
      cause: error,
    },
  );
}
