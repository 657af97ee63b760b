import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { RetryPolicy } from '#common/retry';
import { DEFAULT_PLATFORM_SCOPES, ImsError, ImsTokenProvider, type AepCredentials } from '#aep/ims';
import { platformHeaders } from '#aep/headers';

// ---- a tiny IMS stand-in on loopback -------------------------------------------------------------------------------

interface TokenRequest {
  contentType: string | undefined;
  form: URLSearchParams;
}

type Reply = { status: number; body?: unknown; headers?: Record<string, string> };

const servers: http.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

async function startIms(
  reply: (request: TokenRequest, n: number) => Reply,
): Promise<{ url: string; requests: TokenRequest[] }> {
  const requests: TokenRequest[] = [];
  const server = http.createServer((req, res) => {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (text += c));
    req.on('end', () => {
      const request = { contentType: req.headers['content-type'], form: new URLSearchParams(text) };
      requests.push(request);
      const { status, body, headers } = reply(request, requests.length);
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(body === undefined ? '' : JSON.stringify(body));
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/ims/token/v3`, requests };
}

const CREDS: AepCredentials = { clientId: 'client-abc', clientSecret: 's3cr3t-value-xyz', orgId: 'ORG1@AdobeOrg' };
const FAST: RetryPolicy = { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 1000, maxRetryAfterMs: 60_000 };

const issue = (_r: TokenRequest, n: number): Reply => ({
  status: 200,
  body: { access_token: `tok-${n}`, token_type: 'bearer', expires_in: 86399 },
});

// ---- tests ---------------------------------------------------------------------------------------------------------

describe('ImsTokenProvider', () => {
  it('should post the client_credentials form with the default Platform scopes', async () => {
    // Prepare
    const ims = await startIms(issue);
    const provider = new ImsTokenProvider({ imsUrl: ims.url, credentials: async () => CREDS });

    // Act
    const token = await provider.token();

    // Assess
    expect(token).toBe('tok-1');
    const [request] = ims.requests;
    expect(request?.contentType).toBe('application/x-www-form-urlencoded');
    expect(Object.fromEntries(request!.form)).toEqual({
      grant_type: 'client_credentials',
      client_id: 'client-abc',
      client_secret: 's3cr3t-value-xyz',
      scope: 'openid,AdobeID,read_organizations,additional_info.projectedProductContext,session',
    });
    expect(DEFAULT_PLATFORM_SCOPES.join(',')).toBe(request!.form.get('scope'));
  });

  it('should send the scopes of the credential when it lists some', async () => {
    // Prepare
    const ims = await startIms(issue);
    const provider = new ImsTokenProvider({
      imsUrl: ims.url,
      credentials: async () => ({ ...CREDS, scopes: ['openid', 'AdobeID'] }),
    });

    // Act
    await provider.token();

    // Assess
    expect(ims.requests[0]?.form.get('scope')).toBe('openid,AdobeID');
  });

  it('should cache the token and ask IMS again only shortly before it expires', async () => {
    // Prepare: tokens live one hour, renewed 5 minutes before expiry
    const ims = await startIms((_r, n) => ({ status: 200, body: { access_token: `tok-${n}`, expires_in: 3600 } }));
    let clock = 1_000_000;
    const provider = new ImsTokenProvider({
      imsUrl: ims.url,
      credentials: async () => CREDS,
      now: () => clock,
      refreshMarginMs: 5 * 60_000,
    });

    // Act
    const first = await provider.token();
    clock += 54 * 60_000;
    const stillCached = await provider.token();
    clock += 2 * 60_000; // 56 minutes in: inside the margin
    const renewed = await provider.token();

    // Assess
    expect([first, stillCached, renewed]).toEqual(['tok-1', 'tok-1', 'tok-2']);
    expect(ims.requests).toHaveLength(2);
  });

  it('should keep using the current token when renewing it early fails', async () => {
    // Prepare: the renewal inside the margin meets an IMS outage
    const ims = await startIms((_r, n) =>
      n === 1
        ? { status: 200, body: { access_token: 'tok-1', expires_in: 3600 } }
        : { status: 400, body: { error: 'invalid_client' } },
    );
    let clock = 0;
    const provider = new ImsTokenProvider({
      imsUrl: ims.url,
      credentials: async () => CREDS,
      now: () => clock,
      retry: FAST,
      sleep: async () => {},
    });
    await provider.token();

    // Act
    clock = 58 * 60_000; // inside the 5-minute margin, before expiry
    const early = await provider.token();
    clock = 60 * 60_000; // expired
    const expired = await provider.token().catch((e: unknown) => e);

    // Assess
    expect(early).toBe('tok-1');
    expect(expired).toBeInstanceOf(ImsError);
  });

  it('should read expires_in given in milliseconds (legacy answers) as milliseconds', async () => {
    // Prepare
    const ims = await startIms((_r, n) => ({
      status: 200,
      body: { access_token: `tok-${n}`, expires_in: 86_399_992 },
    }));
    const clock = 0;
    const provider = new ImsTokenProvider({ imsUrl: ims.url, credentials: async () => CREDS, now: () => clock });

    // Act
    const auth = await provider.auth();

    // Assess
    expect(auth.expiresAtMs).toBe(86_399_992);
  });

  it('should share one IMS request among concurrent callers', async () => {
    // Prepare
    const ims = await startIms(issue);
    const provider = new ImsTokenProvider({ imsUrl: ims.url, credentials: async () => CREDS });

    // Act
    const tokens = await Promise.all(Array.from({ length: 10 }, () => provider.token()));

    // Assess
    expect(new Set(tokens)).toEqual(new Set(['tok-1']));
    expect(ims.requests).toHaveLength(1);
  });

  it('should re-read the credentials after invalidate so a rotated secret is used', async () => {
    // Prepare
    const ims = await startIms(issue);
    let secret = 'old-secret-1';
    const provider = new ImsTokenProvider({
      imsUrl: ims.url,
      credentials: async () => ({ ...CREDS, clientSecret: secret }),
    });
    const first = await provider.token();

    // Act
    secret = 'new-secret-2';
    provider.invalidate(first);
    const second = await provider.token();

    // Assess
    expect(second).toBe('tok-2');
    expect(ims.requests.map((r) => r.form.get('client_secret'))).toEqual(['old-secret-1', 'new-secret-2']);
  });

  it('should keep a token renewed meanwhile when an older refused token is invalidated', async () => {
    // Prepare
    const ims = await startIms(issue);
    const provider = new ImsTokenProvider({ imsUrl: ims.url, credentials: async () => CREDS });
    const stale = await provider.token();
    provider.invalidate(stale);
    const fresh = await provider.token();

    // Act: a second request that also used the stale token reports it late
    provider.invalidate(stale);
    const after = await provider.token();

    // Assess
    expect(after).toBe(fresh);
    expect(ims.requests).toHaveLength(2);
  });

  it('should explain a refused credential without revealing the secret', async () => {
    // Prepare: IMS echoes the secret in its description (it should not, but we must not pass it on)
    const ims = await startIms(() => ({
      status: 400,
      body: { error: 'invalid_client', error_description: 'invalid client_secret s3cr3t-value-xyz' },
    }));
    const provider = new ImsTokenProvider({
      imsUrl: ims.url,
      credentials: async () => CREDS,
      retry: FAST,
      sleep: async () => {},
    });

    // Act
    const error = await provider.token().catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(ImsError);
    const message = (error as ImsError).message;
    expect(message).toMatch(/invalid_client/);
    expect(message).toMatch(/client id and client secret/);
    expect(message).not.toContain('s3cr3t-value-xyz');
    expect((error as ImsError).status).toBe(400);
    expect(ims.requests).toHaveLength(1); // not retried
  });

  it('should retry IMS when it is unavailable, honouring Retry-After, then fail with a clear ImsError', async () => {
    // Prepare
    const ims = await startIms(() => ({
      status: 503,
      body: { error: 'server_error' },
      headers: { 'retry-after': '4' },
    }));
    const waits: number[] = [];
    const provider = new ImsTokenProvider({
      imsUrl: ims.url,
      credentials: async () => CREDS,
      retry: FAST,
      sleep: async (ms) => void waits.push(ms),
      random: () => 0,
    });

    // Act
    const error = await provider.token().catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(ImsError);
    expect((error as ImsError).message).toMatch(/HTTP 503/);
    expect((error as ImsError).message).toMatch(/tried 3 times/);
    expect((error as ImsError).message).toMatch(/AEP_IMS_URL/);
    expect(waits).toEqual([4000, 4000]);
    expect(ims.requests).toHaveLength(3);
  });

  it('should fail with an ImsError naming the URL when IMS cannot be reached', async () => {
    // Prepare: a port where nothing listens
    const ims = await startIms(issue);
    await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
    const provider = new ImsTokenProvider({
      imsUrl: ims.url,
      credentials: async () => CREDS,
      retry: FAST,
      sleep: async () => {},
    });

    // Act
    const error = await provider.token().catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(ImsError);
    expect((error as ImsError).message).toContain(ims.url);
    expect((error as ImsError).message).toMatch(/ECONNREFUSED/);
    expect((error as ImsError).message).not.toContain(CREDS.clientSecret);
  });

  it('should fail with an ImsError when the credentials cannot be read', async () => {
    // Prepare
    const provider = new ImsTokenProvider({
      imsUrl: 'http://127.0.0.1:9/ims/token/v3',
      credentials: async () => {
        throw new Error('AccessDeniedException');
      },
    });

    // Act
    const error = await provider.token().catch((e: unknown) => e);

    // Assess
    expect(error).toBeInstanceOf(ImsError);
    expect((error as ImsError).message).toMatch(/AEP_SECRET_ID/);
  });

  it('should try again on the next call after a failure instead of caching it', async () => {
    // Prepare
    const ims = await startIms((r, n) => (n === 1 ? { status: 401, body: { error: 'invalid_client' } } : issue(r, n)));
    const provider = new ImsTokenProvider({ imsUrl: ims.url, credentials: async () => CREDS });

    // Act
    const first = await provider.token().catch((e: unknown) => e);
    const second = await provider.token();

    // Assess
    expect(first).toBeInstanceOf(ImsError);
    expect(second).toBe('tok-2');
  });
});

describe('platformHeaders', () => {
  it('should build the four Platform headers', () => {
    // Prepare / Act
    const headers = platformHeaders('tok', { clientId: 'cid', orgId: 'ORG@AdobeOrg' }, 'prod');

    // Assess
    expect(headers).toEqual({
      authorization: 'Bearer tok',
      'x-api-key': 'cid',
      'x-gw-ims-org-id': 'ORG@AdobeOrg',
      'x-sandbox-name': 'prod',
    });
  });
});
