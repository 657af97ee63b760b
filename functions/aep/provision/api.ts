/**
 * One client for the Platform APIs the provisioner calls (Schema Registry, Identity Service, Catalog, Flow Service):
 * the same token rule, retries and error reading as the ingestion clients (transport.ts, errors.ts, retry.ts), and a
 * dry-run mode in which reads go through and every write is recorded instead of sent.
 */
import { DEFAULT_RETRY_POLICY, type RetryPolicy, withRetry } from '#common/retry';
import type { Log } from '#common/log';
import { classifyAepFailure, httpErrorFrom, type AepService } from '../errors.ts';
import { authorizedFetch, type TokenSource } from '../transport.ts';

/** The product-profile permission each service needs to be written to (help/access-control/home.md, permissions). */
export const PERMISSION_OF: Readonly<Partial<Record<AepService, string>>> = {
  'schema-registry': 'Manage Schemas',
  identity: 'Manage Identity Namespaces',
  catalog: 'Manage Datasets',
  'flow-service': 'Manage Sources',
};

export interface PlatformCall {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH';
  /** Path under the Platform host, with its query. */
  readonly path: string;
  readonly service: AepService;
  /** What the call does, for messages and the dry-run listing ("create field group Mixpanel events"). */
  readonly what: string;
  readonly body?: unknown;
  readonly accept?: string;
  /** Statuses that are answers, not failures (a lookup's 404). */
  readonly okStatuses?: readonly number[];
}

export interface PlatformAnswer {
  readonly status: number;
  readonly body: unknown;
}

export interface PlatformApiOptions {
  readonly platformUrl: string;
  readonly sandbox: string;
  readonly tokens: TokenSource;
  readonly fetch?: typeof fetch;
  readonly retry?: RetryPolicy;
  readonly timeoutMs?: number;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  readonly log?: Log;
  /** Record writes instead of sending them. */
  readonly dryRun?: boolean;
}

const DEFAULT_TIMEOUT_MS = 60_000;

/** Sends (or, in a dry run, records) Platform API calls. */
export class PlatformApi {
  readonly #o: PlatformApiOptions;
  readonly #base: string;
  /** Every write, in order: sent ones, or the ones a dry run would have sent. */
  readonly writes: PlatformCall[] = [];

  constructor(o: PlatformApiOptions) {
    this.#o = o;
    this.#base = o.platformUrl.replace(/\/+$/, '');
  }

  get dryRun(): boolean {
    return this.#o.dryRun === true;
  }

  /** A read: always sent, also in a dry run. */
  async read(call: Omit<PlatformCall, 'method' | 'body'>): Promise<PlatformAnswer> {
    return this.#send({ ...call, method: 'GET' });
  }

  /** A write: recorded, then sent unless this is a dry run (then `undefined`). */
  async write(call: PlatformCall): Promise<PlatformAnswer | undefined> {
    this.writes.push(call);
    if (this.dryRun) return undefined;
    return this.#send(call);
  }

  async #send(call: PlatformCall): Promise<PlatformAnswer> {
    const url = `${this.#base}${call.path}`;
    const what = `${call.what} (${call.method} ${call.path.split('?')[0]})`;
    const o = this.#o;
    return withRetry(
      what,
      async () => {
        const response = await authorizedFetch(
          {
            tokens: o.tokens,
            sandbox: o.sandbox,
            fetch: o.fetch ?? globalThis.fetch,
            timeoutMs: o.timeoutMs ?? DEFAULT_TIMEOUT_MS,
            onTokenRefused: (status) =>
              o.log?.warn('Platform refused the access token; renewing it once', { status, what }),
          },
          what,
          url,
          (headers) => ({
            method: call.method,
            headers: {
              ...headers,
              accept: call.accept ?? 'application/json',
              ...(call.body === undefined ? {} : { 'content-type': 'application/json' }),
            },
            ...(call.body === undefined ? {} : { body: JSON.stringify(call.body) }),
          }),
        );
        if (!response.ok && !(call.okStatuses ?? []).includes(response.status)) {
          const hint = hintFor(response.status, call.service, o.sandbox);
          const nowMs = o.now ? { nowMs: o.now() } : {};
          throw await httpErrorFrom(response, { what, service: call.service, hint, ...nowMs });
        }
        const text = await response.text();
        let body: unknown = {};
        if (text.trim() !== '') {
          try {
            body = JSON.parse(text) as unknown;
          } catch {
            body = text;
          }
        }
        return { status: response.status, body };
      },
      {
        classify: classifyAepFailure,
        policy: o.retry ?? DEFAULT_RETRY_POLICY,
        ...(o.now ? { now: o.now } : {}),
        ...(o.sleep ? { sleep: o.sleep } : {}),
        onRetry: ({ attempt, delayMs, error }) =>
          o.log?.warn('retrying Platform API call', { what, attempt, delayMs, reason: (error as Error).message }),
      },
    );
  }
}

/** What to check after a refusal, per status; a 403 names the permission the credential's role lacks. */
function hintFor(status: number, service: AepService, sandbox: string): string {
  const permission = PERMISSION_OF[service];
  switch (status) {
    case 401:
    case 403:
      return (
        `The credential may not do this in sandbox "${sandbox}": give the Developer Console project's API ` +
        `credential a role (product profile) with the permission "${permission ?? 'for this service'}" on sandbox ` +
        `"${sandbox}" (Adobe Admin Console → Experience Platform → the profile → Permissions), or create the ` +
        'objects by hand as docs/deploy.md describes ("Provision the Platform side", "By hand").'
      );
    case 400:
    case 422:
      return 'Platform refused the request body; the message above says which field.';
    case 404:
      return `Not found in sandbox "${sandbox}": check AEP_SANDBOX and AEP_PLATFORM_URL.`;
    case 409:
      return 'An object with this name already exists; run provision again so it is found and reused.';
    default:
      return 'Platform is throttling or unavailable; run provision again later (it reuses what it already created).';
  }
}
