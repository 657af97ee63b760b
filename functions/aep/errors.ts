/**
 * Errors and failure classification shared by the AEP clients (IMS, streaming DCS, batch ingestion, catalog, data
 * access).
 *
 * Every error says what to check. None carries a token or a client secret: messages are built from status codes and
 * from what Adobe answered, and the answer is scrubbed of the secrets we know before it is quoted.
 */
import { parseRetryAfter, type Verdict } from '#common/retry';
import { ConnectorError } from '#common/errors';

/** Which Adobe service answered: used to phrase what the operator should check. */
export type AepService =
  | 'ims'
  | 'dcs'
  | 'batch'
  | 'catalog'
  | 'data-access'
  | 'schema-registry'
  | 'identity'
  | 'flow-service';

/** Statuses Adobe documents as "try again later" (429 too many requests, 500/503 retry, 502/504 gateway). */
const RETRYABLE_STATUSES = new Set([408, 429, 500, 502, 503, 504]);

/**
 * Statuses after which the request may or may not have been processed (a gateway gave up while the backend worked).
 * Re-sending is still the right call, but the ids involved are reported as possibly duplicated.
 */
const AMBIGUOUS_STATUSES = new Set([502, 504]);

/** Longest slice of an error body we quote in a message (bodies can be HTML pages from a gateway). */
const MAX_QUOTED_BODY_CHARS = 500;

/** An HTTP answer from AEP that is not a success. `retryable` tells whether waiting and re-sending can help. */
export class AepHttpError extends ConnectorError {
  readonly status: number;
  readonly service: AepService;
  /** Adobe's error code (`error_code`, `code`, `error`) when the body had one. */
  readonly adobeCode: string | undefined;
  /** Adobe's message (scrubbed, shortened). */
  readonly adobeMessage: string;
  /** Milliseconds from the `Retry-After` header, if any. */
  readonly retryAfterMs: number | undefined;

  constructor(opts: {
    what: string;
    service: AepService;
    status: number;
    adobeCode?: string | undefined;
    adobeMessage: string;
    retryAfterMs?: number | undefined;
    hint: string;
  }) {
    const code = opts.adobeCode === undefined ? '' : ` ${opts.adobeCode}`;
    const said = opts.adobeMessage === '' ? '' : `: ${opts.adobeMessage}`;
    const kind = RETRYABLE_STATUSES.has(opts.status) ? 'transient' : 'permanent';
    super(kind, `${opts.what} got HTTP ${opts.status}${code}${said}. ${opts.hint}`, { hint: opts.hint });
    this.name = 'AepHttpError';
    this.status = opts.status;
    this.service = opts.service;
    this.adobeCode = opts.adobeCode;
    this.adobeMessage = opts.adobeMessage;
    this.retryAfterMs = opts.retryAfterMs;
  }

  get retryable(): boolean {
    return this.kind === 'transient';
  }

  /** True when the request may have been processed although the answer was an error. */
  get ambiguous(): boolean {
    return AMBIGUOUS_STATUSES.has(this.status);
  }
}

/** The part of a streaming envelope (or of the request around it) that Platform refused as a whole. */
export type EnvelopeFault = 'flow' | 'sandbox' | 'org' | 'auth' | 'schema' | 'dataset' | 'connection';

/** Setting to check for each envelope fault (the connector builds every message's envelope from these). */
const FAULT_SETTINGS: Record<EnvelopeFault, string> = {
  flow:
    'AEP_FLOW_ID (the HTTP API dataflow from the streaming connection to the dataset: Platform UI, Sources > ' +
    'Dataflows; GET /flows of the Flow Service API; `npm run cli -- provision` prints it)',
  sandbox: 'AEP_SANDBOX (the sandbox of the connection and the dataset)',
  org: "the credential's org (AEP_ORG_ID or the AEP secret's orgId)",
  auth: 'the AEP credential, its org and its permission to write to the sandbox (AEP_SANDBOX)',
  schema: 'AEP_SCHEMA_ID and AEP_SCHEMA_VERSION (the schema of the dataset)',
  dataset: 'AEP_DATASET_ID (a dataset of this sandbox, written by the dataflow)',
  connection: 'the connection id in AEP_INLET_URL',
};

/**
 * Platform refused a whole request, or every message of it, for the same envelope or configuration reason (dataflow,
 * schema, dataset, org, sandbox, credential): no record is at fault, so none is rejected. The window fails loudly and
 * is delivered in full once the setting is fixed.
 */
export class PlatformConfigurationError extends ConnectorError {
  readonly fault: EnvelopeFault;
  readonly status: number | undefined;
  /** Platform's own words (scrubbed, shortened), for the log. */
  readonly adobeMessage: string;
  constructor(opts: { what: string; fault: EnvelopeFault; status?: number; adobeMessage: string; cause?: unknown }) {
    const hint =
      `Check ${FAULT_SETTINGS[opts.fault]}. No record was marked rejected: the window is sent again in full once ` +
      'the setting is fixed (redelivery, or the dead-letter queue redriven).';
    const status = opts.status === undefined ? '' : ` ${opts.status}`;
    super(
      'config',
      `${opts.what}: Platform refused it for a configuration reason (${opts.fault}; HTTP${status}: ` +
        `${opts.adobeMessage.slice(0, MAX_QUOTED_BODY_CHARS)}). ${hint}`,
      { hint, ...(opts.cause === undefined ? {} : { cause: opts.cause }) },
    );
    this.name = 'PlatformConfigurationError';
    this.fault = opts.fault;
    this.status = opts.status;
    this.adobeMessage = opts.adobeMessage;
  }
}

/**
 * Envelope reasons in DCS's words. Adobe documents the per-message refusal "Message has unknown xdm format"
 * (help/ingestion/streaming-ingestion/troubleshooting.md) and "Message is invalid" with schema violations for a
 * record (help/ingestion/quality/streaming-validation.md); the other wordings are not published, so each reason is
 * recognised by the setting it names. Record-level answers are excluded first: they stay rejections.
 */
const RECORD_LEVEL = /message is invalid|schema violation|xdmentity|source name|record/i;
const ENVELOPE_REASONS: ReadonlyArray<readonly [EnvelopeFault, RegExp]> = [
  ['flow', /flow ?id|dataflow/i],
  ['sandbox', /sandbox/i],
  ['org', /ims ?org|org id/i],
  ['auth', /unauthori[sz]ed|forbidden|token|permission/i],
  ['schema', /schemaref|schema ?id|schema of|unknown xdm format|contenttype/i],
  ['dataset', /dataset/i],
  ['connection', /inlet not found|no such (streaming )?connection/i],
];

/**
 * The envelope fault a DCS refusal names, or undefined for a record-level refusal. DCS prefixes its messages with
 * `inletId: [...] imsOrgId: [...]` (troubleshooting.md example), which is not part of the reason.
 */
export function envelopeFault(message: string): EnvelopeFault | undefined {
  const reason = message.replace(/^\s*inletId:\s*\[[^\]]*\]\s*(imsOrgId:\s*\[[^\]]*\]\s*)?/i, '');
  if (RECORD_LEVEL.test(reason)) return undefined;
  return ENVELOPE_REASONS.find(([, pattern]) => pattern.test(reason))?.[0];
}

/** The {@link PlatformConfigurationError} in an error's cause chain, if any (the forward handler counts them). */
export function platformConfigurationFault(error: unknown): PlatformConfigurationError | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 6 && current instanceof Error; depth++) {
    if (current instanceof PlatformConfigurationError) return current;
    current = current.cause;
  }
  return undefined;
}

/** A request that failed below HTTP (DNS, refused or reset connection, timeout). */
export class AepNetworkError extends ConnectorError {
  /** False when the request certainly never reached the server (refused, DNS failure, connect timeout). */
  readonly mayHaveArrived: boolean;
  constructor(what: string, cause: unknown) {
    const code = networkErrorCode(cause);
    const mayHaveArrived = code === undefined || !NEVER_ARRIVED_CODES.has(code);
    super(
      'transient',
      `${what} failed before an HTTP answer (${code ?? describe(cause)}). Check the URL and that the host is reachable from here.`,
      { cause },
    );
    this.name = 'AepNetworkError';
    this.mayHaveArrived = mayHaveArrived;
  }
}

/** Connection failures that happen before any byte of the request left: re-sending cannot duplicate anything. */
const NEVER_ARRIVED_CODES = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_CONNECT_TIMEOUT',
]);

function networkErrorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current instanceof Error; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    if (current.name === 'TimeoutError' || current.name === 'AbortError') return current.name;
    current = current.cause;
  }
  return undefined;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** Retry classification for every AEP call: retry 408/429/5xx and network failures, honouring `Retry-After`. */
export function classifyAepFailure(error: unknown): Verdict {
  if (error instanceof AepHttpError) {
    if (!error.retryable) return { retry: false };
    return error.retryAfterMs === undefined ? { retry: true } : { retry: true, retryAfterMs: error.retryAfterMs };
  }
  if (error instanceof AepNetworkError) return { retry: true };
  return { retry: false };
}

/** Removes every known secret value from `text` (a net: messages are built without secrets in the first place). */
export function scrub(text: string, secrets: ReadonlyArray<string | undefined>): string {
  let out = text;
  for (const secret of secrets) {
    if (secret !== undefined && secret.length >= 4 && out.includes(secret)) out = out.split(secret).join('***');
  }
  return out;
}

/**
 * Reads an error response into an {@link AepHttpError}: Adobe's code and message from the JSON shapes its gateways
 * use (`{"error_code","message"}`, `{"title","detail","report":{"message"}}`, IMS `{"error","error_description"}`),
 * or the first characters of a non-JSON body.
 */
export async function httpErrorFrom(
  response: Response,
  opts: {
    what: string;
    service: AepService;
    hint: string;
    secrets?: ReadonlyArray<string | undefined>;
    nowMs?: number;
  },
): Promise<AepHttpError> {
  let text = '';
  try {
    text = await response.text();
  } catch {
    // The body is only used to explain the failure; the status alone still says what happened.
  }
  const { code, message } = adobeErrorParts(text);
  return new AepHttpError({
    what: opts.what,
    service: opts.service,
    status: response.status,
    adobeCode: code,
    adobeMessage: scrub(message, opts.secrets ?? []).slice(0, MAX_QUOTED_BODY_CHARS),
    retryAfterMs: parseRetryAfter(response.headers.get('retry-after'), opts.nowMs),
    hint: opts.hint,
  });
}

function adobeErrorParts(text: string): { code: string | undefined; message: string } {
  const trimmed = text.trim();
  if (trimmed === '') return { code: undefined, message: '' };
  let parsed: unknown;
  try {
    parsed = JSON.parse(trimmed);
  } catch {
    return { code: undefined, message: trimmed.replace(/\s+/g, ' ') };
  }
  if (parsed === null || typeof parsed !== 'object') return { code: undefined, message: trimmed };
  const body = parsed as Record<string, unknown>;
  const report =
    body.report !== null && typeof body.report === 'object' ? (body.report as Record<string, unknown>) : {};
  const code = firstString(body.error_code, body.code, body.errorCode, body.error);
  const message = firstString(body.message, body.error_description, body.detail, report.message, body.title) ?? trimmed;
  return { code, message };
}

function firstString(...values: unknown[]): string | undefined {
  for (const value of values) {
    if (typeof value === 'string' && value !== '') return value;
    if (typeof value === 'number') return String(value);
  }
  return undefined;
}

/** Performs a fetch and turns transport failures into {@link AepNetworkError}; a timeout aborts the request. */
export async function fetchOrNetworkError(
  fetchImpl: typeof fetch,
  what: string,
  url: string,
  init: RequestInit,
  timeoutMs: number,
): Promise<Response> {
  try {
    return await fetchImpl(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    throw new AepNetworkError(what, error);
  }
}
