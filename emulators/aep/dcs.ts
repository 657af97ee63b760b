/**
 * Data Collection Service (DCS) streaming ingestion: `POST /collection/{connectionId}` (one message) and
 * `POST /collection/batch/{connectionId}` (`{"messages": [...]}`, always answered 207 with one response per message).
 * https://github.com/AdobeDocs/experience-platform.en/blob/main/help/ingestion/tutorials/streaming-multiple-messages.md
 */
import { STATUS_CODES } from 'node:http';
import { type EmulatorContext, applyFault, reply } from './context.ts';
import { type Exchange, bearerToken, parseJson, readBody, sendJson } from './http.ts';
import type { IssuedToken } from './ims.ts';
import { checkStreamingMessage, type RecordCheckOptions } from './xdm-checks.ts';

/** "413 Payload too large - thrown when the total payload request is greater than 1MB" (same page as above).
 * Adobe does not say whether 1 MB is 10^6 or 2^20 bytes: the stricter 10^6 is enforced, so a request the connector
 * sizes to pass here passes there too. */
export const MAX_DCS_REQUEST_BYTES = 1_000_000;

const INLET_PROBLEM = 'http://ns.adobe.com/adobecloud/problem/data-collection-service/inlet';
/** 401 body of an authenticated inlet without a valid token ("Sending messages to an authenticated streaming connection").
 * https://github.com/AdobeDocs/experience-platform.en/blob/main/help/sources/tutorials/api/create/streaming/http.md */
const AUTH_PROBLEM = 'https://ns.adobe.com/adobecloud/problem/data-collection-service-authorization';
const NODE = process.pid % 10_000;

/** Serves one DCS request. `batch` selects the multi-message endpoint. */
export async function serveDcs(ex: Exchange, ctx: EmulatorContext, inletId: string, batch: boolean, nowMs: number): Promise<void> {
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
    problem(status, STATUS_CODES[status] ?? 'Error', `${prefix(ctx.defaultOrgId)} ${STATUS_CODES[status] ?? 'Error'}`));
  if (fault.answered) return;

  // Authenticated inlets need a token; any inlet refuses a token that is sent but not valid.
  const token = bearerToken(ex);
  let grant: IssuedToken | undefined;
  if (token !== undefined) {
    grant = ctx.tokens.resolve(token, nowMs);
    if (grant === undefined) {
      return reply(ex, 401, { type: AUTH_PROBLEM, status: '401', title: 'Authorization', report: { message: `[${inletId}] Ims service token is not valid` } });
    }
  } else if (connection.authenticated) {
    return reply(ex, 401, { type: AUTH_PROBLEM, status: '401', title: 'Authorization', report: { message: `[${inletId}] Ims service token is empty` } });
  }
  const org = grant?.orgId ?? ctx.defaultOrgId;

  const read = await readBody(ex, MAX_DCS_REQUEST_BYTES);
  if (read.tooLarge) {
    return sendJson(ex, 413, problem(413, 'Payload Too Large',
      `${prefix(org)} Request body of ${ex.bytes} bytes is over the ${MAX_DCS_REQUEST_BYTES}-byte limit`));
  }
  const parsed = parseJson(read.body);
  if (!parsed.ok) {
    return sendJson(ex, 400, problem(400, 'Invalid XDM Message Format', `${prefix(org)} Request body is not valid JSON: ${parsed.error}`));
  }
  const envelope = { datasets: ctx.datasets, orgIds: grant === undefined ? ctx.orgIds : new Set([grant.orgId]) };
  const schemaCheck = ctx.schemaCheck ? { schemaCheck: ctx.schemaCheck } : {};
  const record: RecordCheckOptions = { tenant: ctx.tenant, nowMs, ...schemaCheck };
  const receivedTimeMs = nowMs;

  if (!batch) {
    const result = checkStreamingMessage(parsed.value, envelope, record);
    if (!result.ok) {
      ctx.counters.messagesRejected += 1;
      const cause = result.problems === undefined ? undefined : {
        _streamingValidation: [{
          schemaLocation: '#',
          pointerToViolation: '#',
          causingExceptions: result.problems.map((p) => ({ ...p, schemaLocation: '#', causingExceptions: [] })),
          message: `${result.problems.length} schema violations found`,
        }],
      };
      return sendJson(ex, 400, problem(400, 'Invalid XDM Message Format', `${prefix(org)} ${result.message}`, cause));
    }
    ctx.accepted.add(result.datasetId, result.entity['_id'] as string, result.entity);
    ctx.counters.messagesAccepted += 1;
    const xactionId = `${receivedTimeMs}:${NODE}:${ctx.nextSequence()}`;
    const syncValidation = ex.query.get('syncValidation') === 'true' ? {} : { syncValidation: { skipped: true } };
    return sendJson(ex, 200, { inletId, xactionId, receivedTimeMs, ...syncValidation });
  }

  const messages = (parsed.value as { messages?: unknown } | null)?.messages;
  if (!Array.isArray(messages) || messages.length === 0) {
    return sendJson(ex, 400, problem(400, 'Invalid XDM Message Format',
      `${prefix(org)} Request body must be {"messages": [...]} with at least one message`));
  }
  const batchId = `${receivedTimeMs}:${NODE}:${ctx.nextSequence()}`;
  const partial = fault.partial;
  const responses = new Array<unknown>(messages.length);
  for (let i = 0; i < messages.length; i += 1) {
    if (partial !== undefined && (i + 1) % partial.everyNth === 0) {
      ctx.counters.messagesRejected += 1;
      const text = partial.message ?? STATUS_CODES[partial.statusCode] ?? 'Error';
      responses[i] = { statusCode: partial.statusCode, message: `${prefix(org)} ${text}` };
      continue;
    }
    const result = checkStreamingMessage(messages[i], envelope, record);
    if (result.ok) {
      ctx.accepted.add(result.datasetId, result.entity['_id'] as string, result.entity);
      ctx.counters.messagesAccepted += 1;
      responses[i] = { xactionId: `${batchId}:${i}` };
    } else {
      ctx.counters.messagesRejected += 1;
      responses[i] = { statusCode: 400, message: `${prefix(org)} ${result.message}` };
    }
  }
  sendJson(ex, 207, { inletId, batchId, receivedTimeMs, responses });
}
