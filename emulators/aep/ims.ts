/**
 * Adobe IMS OAuth Server-to-Server token endpoint and the Adobe I/O gateway checks every Platform API call goes
 * through (bearer token, API key, organisation, sandbox).
 */
import { randomBytes } from 'node:crypto';
import { type Exchange, bearerToken, header, readBody, sendJson } from './http.ts';

/** `POST https://ims-na1.adobelogin.com/ims/token/v3` (form fields grant_type, client_id, client_secret, scope).
 * https://github.com/AdobeDocs/experience-platform.en/blob/main/help/landing/api-authentication.md */
export const IMS_TOKEN_PATH = '/ims/token/v3';

/** A token request is a handful of form fields; anything bigger is not one. Emulator's own bound. */
const MAX_TOKEN_REQUEST_BYTES = 64 * 1024;

export interface ClientCredentials {
  readonly clientId: string;
  readonly clientSecret: string;
  /** `XXXX@AdobeOrg` */
  readonly orgId: string;
}

export interface IssuedToken {
  readonly clientId: string;
  readonly orgId: string;
  readonly expiresAtMs: number;
}

/** Access tokens issued by the emulated IMS. Tokens are opaque to clients, as IMS's are meant to be treated. */
export class TokenStore {
  readonly #tokens = new Map<string, IssuedToken>();
  #issued = 0;

  get issued(): number {
    return this.#issued;
  }

  issue(client: ClientCredentials, ttlSeconds: number, nowMs: number): string {
    const token = `eyJ${randomBytes(36).toString('base64url')}`;
    this.#tokens.set(token, { clientId: client.clientId, orgId: client.orgId, expiresAtMs: nowMs + ttlSeconds * 1000 });
    this.#issued += 1;
    return token;
  }

  /** The token's grant when it is known and not expired. */
  resolve(token: string, nowMs: number): IssuedToken | undefined {
    const grant = this.#tokens.get(token);
    return grant !== undefined && nowMs < grant.expiresAtMs ? grant : undefined;
  }

  /** Every token issued so far becomes invalid; tokens issued afterwards work. */
  expireAll(): void {
    this.#tokens.clear();
  }
}

/**
 * Serves the token endpoint. Error bodies follow IMS's OAuth shape `{"error","error_description"}`: an unknown
 * client id is a 400, a wrong secret a 401 (IMS's behaviour; the descriptions are the emulator's wording).
 */
export async function serveImsToken(
  ex: Exchange,
  clients: ReadonlyMap<string, ClientCredentials>,
  tokens: TokenStore,
  ttlSeconds: number,
  nowMs: number,
): Promise<void> {
  const oauthError = (status: number, error: string, description: string): void =>
    sendJson(ex, status, { error, error_description: description });
  const read = await readBody(ex, MAX_TOKEN_REQUEST_BYTES);
  if (read.tooLarge) return oauthError(413, 'invalid_request', 'request body too large');
  const contentType = header(ex, 'content-type') ?? '';
  if (!contentType.toLowerCase().startsWith('application/x-www-form-urlencoded')) {
    return oauthError(400, 'invalid_request', 'Content-Type must be application/x-www-form-urlencoded');
  }
  const form = new URLSearchParams(ex.query);
  for (const [key, value] of new URLSearchParams(read.body.toString('utf8'))) form.set(key, value);

  const grantType = form.get('grant_type');
  if (grantType === null || grantType === '') return oauthError(400, 'invalid_request', 'missing grant_type parameter');
  if (grantType !== 'client_credentials')
    return oauthError(400, 'unsupported_grant_type', `unsupported grant_type ${grantType}`);
  const clientId = form.get('client_id');
  if (clientId === null || clientId === '') return oauthError(400, 'invalid_request', 'missing client_id parameter');
  const client = clients.get(clientId);
  if (client === undefined) return oauthError(400, 'invalid_client', 'invalid client_id parameter');
  const secret = form.get('client_secret');
  if (secret === null || secret === '') return oauthError(401, 'invalid_client', 'missing client_secret parameter');
  if (secret !== client.clientSecret) return oauthError(401, 'invalid_client', 'invalid client_secret parameter');

  // The OAuth Server-to-Server token request names the credential's scopes (`scope=openid,AdobeID,…`, Developer
  // Console "OAuth Server-to-Server credential implementation guide"); Adobe does not document the answer to a request
  // without one: the emulator refuses it with OAuth's `invalid_scope` (RFC 6749 §5.2), the stricter reading.
  const scope = form.get('scope');
  if (scope === null || scope.trim() === '') return oauthError(400, 'invalid_scope', 'missing scope parameter');

  const accessToken = tokens.issue(client, ttlSeconds, nowMs);
  sendJson(ex, 200, { access_token: accessToken, token_type: 'bearer', expires_in: ttlSeconds });
}

export type GatewayCheck =
  | { readonly ok: true; readonly grant: IssuedToken }
  | { readonly ok: false; readonly status: number; readonly body: unknown };

/**
 * The Adobe I/O gateway's header checks on a Platform API call. Codes and messages:
 * https://github.com/AdobeDocs/experience-platform.en/blob/main/help/landing/troubleshooting.md#request-header-errors
 * The sandbox answers (missing header, unknown sandbox) are the emulator's: Adobe does not document them.
 */
export function checkPlatformHeaders(
  ex: Exchange,
  clients: ReadonlyMap<string, ClientCredentials>,
  tokens: TokenStore,
  sandbox: string,
  nowMs: number,
): GatewayCheck {
  const fail = (status: number, code: string, message: string): GatewayCheck => ({
    ok: false,
    status,
    body: { error_code: code, message },
  });
  const token = bearerToken(ex);
  if (token === undefined) return fail(403, '403010', 'Oauth token is missing.');
  // An expired token is a token that is "not valid": 401 `401013` (troubleshooting.md lists no other answer for it;
  // 403 is only documented for a missing token, `403010`).
  const grant = tokens.resolve(token, nowMs);
  if (grant === undefined) return fail(401, '401013', 'Oauth token is not valid');
  const apiKey = header(ex, 'x-api-key');
  if (apiKey === undefined) return fail(403, '403000', 'Api Key is required');
  if (!clients.has(apiKey) || apiKey !== grant.clientId) return fail(403, '403003', 'Api Key is invalid');
  const org = header(ex, 'x-gw-ims-org-id');
  if (org === undefined) return fail(400, '400003', 'Missing header');
  if (org !== grant.orgId) return fail(403, '403025', 'Profile is not valid');
  const sandboxName = header(ex, 'x-sandbox-name');
  if (sandboxName === undefined) return fail(400, '400003', 'Missing header: x-sandbox-name');
  if (sandboxName !== sandbox) {
    return {
      ok: false,
      status: 403,
      body: {
        type: 'https://ns.adobe.com/aep/errors/sandbox-not-found',
        status: 403,
        title: 'Forbidden',
        detail: `Sandbox '${sandboxName}' is not available to organization ${grant.orgId}`,
      },
    };
  }
  return { ok: true, grant };
}
