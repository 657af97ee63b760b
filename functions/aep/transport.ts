/**
 * One authenticated call to an AEP endpoint: Platform headers from the token source, a per-request timeout, and the
 * "token refused → renew once → try again" rule (a 401, or DCS's 403 "token is invalid or expired",
 * AdobeDocs/experience-platform.en help/ingestion/tutorials/streaming-multiple-messages.md, response codes).
 */
import { fetchOrNetworkError } from './errors.ts';
import { headersFor } from './headers.ts';
import type { ImsAuth } from './ims.ts';

/** What the sinks need from {@link ImsTokenProvider}; a plain interface so tests can pass a stub. */
export interface TokenSource {
  auth(): Promise<ImsAuth>;
  invalidate(rejectedToken?: string): void;
}

export interface AuthorizedCall {
  readonly tokens: TokenSource;
  readonly sandbox: string;
  readonly fetch: typeof fetch;
  readonly timeoutMs: number;
  /** Told when a refused token was renewed, so the caller can log it. */
  readonly onTokenRefused?: (status: number) => void;
}

/**
 * Sends the request built by `init` (called again for the second try, so a streamed body can be re-opened).
 * Returns whatever the server answered; a second 401/403 is returned too, for the caller to explain.
 */
export async function authorizedFetch(
  call: AuthorizedCall,
  what: string,
  url: string,
  init: (headers: Record<string, string>) => RequestInit,
): Promise<Response> {
  for (let attempt = 1; ; attempt++) {
    const auth = await call.tokens.auth();
    const response = await fetchOrNetworkError(
      call.fetch,
      what,
      url,
      init(headersFor(auth, call.sandbox)),
      call.timeoutMs,
    );
    if ((response.status === 401 || response.status === 403) && attempt === 1) {
      // Drain the refusal so the connection can be reused, then renew the token and try exactly once more.
      await response.arrayBuffer().catch(() => undefined);
      call.tokens.invalidate(auth.accessToken);
      call.onTokenRefused?.(response.status);
      continue;
    }
    return response;
  }
}
