/**
 * Data Collection Service (DCS) streaming ingestion: `POST /collection/{connectionId}` (one message) and
 * `POST /collection/batch/{connectionId}` (`{"messages": [...]}`, always answered 207 with one response per message).
 * https://github.com/AdobeDocs/experience-platform.en/blob/main/help/ingestion/tutorials/streaming-multiple-messages.md
 */
import { STATUS_CODES } from 'node:http';
import { type EmulatorContext, applyFault, reply } from './context.ts';
import { type Exchange, bearerToken, header, parseJson, readBody, sendJson } from './http.ts';
import type { IssuedToken } from './ims.ts';
import {
  checkStreamingMessage,
  type EnvelopeContext,
  type EnvelopeResult,
  type RecordCheckOptions,
} from './xdm-checks.ts';

/** "413 Payload too large - thrown when the total payload request is greater than 1MB" (same page as above).
 * Adobe does not say whether 1 MB is 10^6 or 2^20 bytes: the stricter 10^6 is enforced, so a request the connector
 * sizes to pass here passes there too. */
export const MAX_DCS_REQUEST_BYTES = 1_000_000;

const INLET_PROBLEM = 'http://ns.adobe.com/adobecloud/problem/data-collection-service/inlet';
/** 401 body of an authenticated inlet without a valid token ("Sending messages to an authenticated streaming connection").
 * https://github.com/AdobeDocs/experience-platform.en/blob/main/help/sources/tutorials/api/create/streaming/http.md */
const AUTH_PROBLEM = 'https://ns.adobe.com/adobecloud/problem/data-collection-service-authorization';
const NODE = process.pid % 10_000;

/**
 * "Maximum ExperienceEvent size | 10KB | System-enforced guardrail … any events larger than 10KB will be dropped",
 * measured "as uncompressed data in JSON at time of ingestion" (experience-platform.en help/profile/guardrails.md).
 * Adobe says Profile drops them while ingestion goes on; the stricter reading is emulated: on a Profile-enabled
 * dataset such a record is accepted by DCS and then lands in a failed batch (10^3-byte KB, the smaller reading).
 */
export const PROFILE_MAX_EVENT_BYTES = 10_000;

/** Serves one DCS request. `batch` selects the multi-message endpoint. */
export async function serveDcs(
  ex: Exchange,
  ctx: EmulatorContext,
  inletId: string,
  batch: boolean,
  nowMs: number,
): Promise<void> {
  const connection = ctx.connections.get(inletId);
  const prefix = (org: string): string => `inletId: [${inletId}] imsOrgId: [${org}]`;
  const problem = (status: number, title: string, message: string, cause?: unknown): unknown => ({
    type: INLET_PROBLEM,
    status,
    title,
    report: cause === undefined ? { message } : { message, cause },
  });
  if (connection === undefined) {
    return reply(ex, 404, problem(404, 'Not Found', `${prefix(ctx.defaultOrgId)} Inlet not found`));
  }
  const fault = await applyFault(ex, ctx, batch ? 'dcs-batch' : 'dcs', (status) =>
    problem(status, STATUS_CODES[status] ?? 'Error', `${prefix(ctx.defaultOrgId)} ${STATUS_CODES[status] ?? 'Error'}`),
  );
  if (fault.answered) return;

  // Authenticated inlets need a token; any inlet refuses a token that is sent but not valid (401: "Your request is
  // unauthorized", help/ingestion/quality/streaming-validation.md, status codes; expired tokens included).
  const token = bearerToken(ex);
  let grant: IssuedToken | undefined;
  if (token !== undefined) {
    grant = ctx.tokens.resolve(token, nowMs);
    if (grant === undefined) {
      return reply(ex, 401, {
        type: AUTH_PROBLEM,
        status: '401',
        title: 'Authorization',
        report: { message: `[${inletId}] Ims service token is not valid` },
      });
    }
  } else if (connection.authenticated) {
    return reply(ex, 401, {
      type: AUTH_PROBLEM,
      status: '401',
      title: 'Authorization',
      report: { message: `[${inletId}] Ims service token is empty` },
    });
  }
  const org = grant?.orgId ?? ctx.defaultOrgId;
  const refused = (status: number, title: string, message: string): Promise<void> =>
    reply(ex, status, problem(status, title, `${prefix(org)} ${message}`));

  // "All calls require `Content-Type` and `x-sandbox-name`" (streaming-ingestion.yaml, Required headers; both
  // parameters `required: true` on both endpoints). The answers' wording is the emulator's, the content-type one
  // follows help/landing/troubleshooting.md ("A valid content-type must be specified").
  const sandbox = header(ex, 'x-sandbox-name');
  if (sandbox === undefined) return refused(400, 'Bad Request', 'Missing header: x-sandbox-name');
  if (sandbox !== ctx.sandbox)
    return refused(403, 'Forbidden', `Sandbox '${sandbox}' is not the sandbox of this connection`);
  const contentType = (header(ex, 'content-type') ?? '').toLowerCase();
  if (contentType.startsWith('application/x-jackson-smile')) {
    const why = 'Smile-encoded payloads are valid on Platform but not emulated; send application/json';
    return refused(501, 'Not Implemented', why);
  }
  if (!/^application\/json\s*(;|$)/.test(contentType))
    return refused(400, 'Bad Request', 'A valid content-type must be specified');
  // "The `syncValidation` query parameter is only available for the single message endpoint and cannot be used for
  // the batch endpoint" (help/ingestion/quality/streaming-validation.md); a boolean (streaming-ingestion.yaml).
  const syncParam = ex.query.get('syncValidation');
  if (syncParam !== null && syncParam !== 'true' && syncParam !== 'false') {
    return refused(400, 'Bad Request', `syncValidation must be true or false, got ${syncParam}`);
  }
  if (batch && syncParam !== null) {
    return refused(400, 'Bad Request', 'syncValidation is only available for the single message endpoint');
  }
  const syncValidation = syncParam === 'true' || ctx.syncValidationForTests;

  const read = await readBody(ex, MAX_DCS_REQUEST_BYTES);
  if (read.tooLarge) {
    return sendJson(
      ex,
      413,
      problem(
        413,
        'Payload Too Large',
        `${prefix(org)} Request body of ${ex.bytes} bytes is over the ${MAX_DCS_REQUEST_BYTES}-byte limit`,
      ),
    );
  }
  const parsed = parseJson(read.body);
  if (!parsed.ok) {
    return sendJson(
      ex,
      400,
      problem(400, 'Invalid XDM Message Format', `${prefix(org)} Request body is not valid JSON: ${parsed.error}`),
    );
  }
  const envelope: EnvelopeContext = {
    datasets: ctx.datasets,
    schemaVersions: ctx.schemaVersions,
    orgIds: grant === undefined ? ctx.orgIds : new Set([grant.orgId]),
    flows: ctx.flows,
    connectionId: inletId,
  };
  const schemaCheck = ctx.schemaCheck ? { schemaCheck: ctx.schemaCheck } : {};
  const record: RecordCheckOptions = { tenant: ctx.tenant, nowMs, ...schemaCheck };
  const receivedTimeMs = nowMs;
  /** One message through the checks: accepted (valid, or invalid and left to asynchronous validation) or refused. */
  const handle = (
    message: unknown,
  ): { accepted: true } | { accepted: false; result: Extract<EnvelopeResult, { ok: false }> } => {
    const result = checkStreamingMessage(message, envelope, record);
    if (result.ok && ctx.profileDatasets.has(result.datasetId)) {
      const bytes = Buffer.byteLength(JSON.stringify(result.entity), 'utf8');
      if (bytes > PROFILE_MAX_EVENT_BYTES) {
        const why = `ExperienceEvent of ${bytes} bytes is over the ${PROFILE_MAX_EVENT_BYTES}-byte Profile limit`;
        const errors = { _errors: { _profile: [{ code: 'PROFILE-EVENT-SIZE', message: why }] } };
        ctx.streaming.failed(result.datasetId, org, { entity: result.entity, errors }, nowMs);
        ctx.counters.messagesAccepted += 1;
        ctx.counters.recordsFailedValidation += 1;
        return { accepted: true };
      }
    }
    if (result.ok) {
      ctx.accepted.add(result.datasetId, result.entity._id as string, result.entity);
      ctx.streaming.accepted(result.datasetId, org, nowMs);
      ctx.counters.messagesAccepted += 1;
      return { accepted: true };
    }
    if (result.invalid !== undefined && !syncValidation) {
      // Asynchronous validation: DCS takes the message; the record lands in a failed batch of its dataset.
      ctx.streaming.failed(result.invalid.datasetId, org, result.invalid, nowMs);
      ctx.counters.messagesAccepted += 1;
      ctx.counters.recordsFailedValidation += 1;
      return { accepted: true };
    }
    ctx.counters.messagesRejected += 1;
    return { accepted: false, result };
  };

  /** The `asynchronous` partial fault: DCS takes the message, then Platform's asynchronous validation refuses it (a
   * message that fails the envelope checks is answered as usual). */
  const refuseLater = (message: unknown, text: string | undefined, xactionId: string): unknown => {
    const result = checkStreamingMessage(message, envelope, record);
    if (!result.ok && result.invalid === undefined) {
      ctx.counters.messagesRejected += 1;
      return { statusCode: 400, message: `${prefix(org)} ${result.message}` };
    }
    const { datasetId, entity } = result.ok ? result : result.invalid!;
    const violation = {
      pointerToViolation: '#',
      keyword: 'type',
      message: text ?? 'the record does not match the schema',
    };
    const errors = { _validationErrors: [violation] };
    ctx.streaming.failed(datasetId, org, { entity, errors }, nowMs);
    ctx.counters.messagesAccepted += 1;
    ctx.counters.recordsFailedValidation += 1;
    return { xactionId };
  };

  if (!batch) {
    const outcome = handle(parsed.value);
    if (!outcome.accepted) {
      const { problems, message } = outcome.result;
      const cause =
        problems === undefined
          ? undefined
          : {
              _streamingValidation: [
                {
                  schemaLocation: '#',
                  pointerToViolation: '#',
                  causingExceptions: problems.map((p) => ({ ...p, schemaLocation: '#', causingExceptions: [] })),
                  message: `${problems.length} schema violations found`,
                },
              ],
            };
      return sendJson(ex, 400, problem(400, 'Invalid XDM Message Format', `${prefix(org)} ${message}`, cause));
    }
    const xactionId = `${receivedTimeMs}:${NODE}:${ctx.nextSequence()}`;
    // Without syncValidation the answer says it was skipped (streaming-validation.md, asynchronous validation).
    const skipped = syncParam === 'true' ? {} : { syncValidation: { skipped: true } };
    return sendJson(ex, 200, { inletId, xactionId, receivedTimeMs, ...skipped });
  }

  const messages = (parsed.value as { messages?: unknown } | null)?.messages;
  if (!Array.isArray(messages) || messages.length === 0) {
    return sendJson(
      ex,
      400,
      problem(
        400,
        'Invalid XDM Message Format',
        `${prefix(org)} Request body must be {"messages": [...]} with at least one message`,
      ),
    );
  }
  const batchId = `${receivedTimeMs}:${NODE}:${ctx.nextSequence()}`;
  const partial = fault.partial;
  const responses = new Array<unknown>(messages.length);
  for (let i = 0; i < messages.length; i += 1) {
    if (partial?.asynchronous === true && (i + 1) % partial.everyNth === 0) {
      responses[i] = refuseLater(messages[i], partial.message, `${batchId}:${i}`);
      continue;
    }
    if (partial !== undefined && (i + 1) % partial.everyNth === 0) {
      ctx.counters.messagesRejected += 1;
      const text = partial.message ?? STATUS_CODES[partial.statusCode] ?? 'Error';
      responses[i] = { statusCode: partial.statusCode, message: `${prefix(org)} ${text}` };
      continue;
    }
    const outcome = handle(messages[i]);
    responses[i] = outcome.accepted
      ? { xactionId: `${batchId}:${i}` }
      : { statusCode: 400, message: `${prefix(org)} ${outcome.result.message}` };
  }
  sendJson(ex, 207, { inletId, batchId, receivedTimeMs, responses });
}
