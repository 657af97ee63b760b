/**
 * The headers every Experience Platform API call carries (AdobeDocs/experience-platform.en
 * help/landing/api-authentication.md; batch-ingestion.yaml "Required headers"): `Authorization: Bearer`, `x-api-key`
 * (the client id), `x-gw-ims-org-id`, and `x-sandbox-name` (the all-lowercase sandbox name). Authenticated streaming
 * connections take the same headers.
 */
import type { AepCredentials, ImsAuth } from './ims.ts';

/** Builds the Platform headers. The token must belong to `creds.clientId` (see {@link ImsTokenProvider.auth}). */
export function platformHeaders(
  token: string,
  creds: Pick<AepCredentials, 'clientId' | 'orgId'>,
  sandbox: string,
): Record<string, string> {
  return {
    authorization: `Bearer ${token}`,
    'x-api-key': creds.clientId,
    'x-gw-ims-org-id': creds.orgId,
    'x-sandbox-name': sandbox,
  };
}

/** {@link platformHeaders} from an {@link ImsAuth}. */
export function headersFor(auth: ImsAuth, sandbox: string): Record<string, string> {
  return platformHeaders(auth.accessToken, auth, sandbox);
}
