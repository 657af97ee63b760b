/**
 * Reading DCS answers into per-record outcomes.
 *
 * Adobe, AdobeDocs/experience-platform.en help/ingestion/tutorials/streaming-multiple-messages.md: the batch endpoint
 * answers 207 whether all, some or none were accepted, with one `responses` entry per message in order: `{"xactionId"}`
 * for an accepted message, `{"statusCode","message"}` for a refused one.
 */
import { parseRetryAfter } from '#common/retry';
import { AepHttpError, type EnvelopeFault, envelopeFault, PlatformConfigurationError } from './errors.ts';
import type { Item, SinkRecord } from './streaming-pack.ts';

/** Per-message statuses DCS reports that are worth re-sending (the rest are permanent rejections). */
const RETRYABLE_MESSAGE_STATUSES = new Set([408, 429, 500, 502, 503, 504]);

export interface RejectedRecord {
  readonly id: string;
  /** Adobe's message, or `record-too-large` when the record cannot fit in a request. */
  readonly reason: string;
  readonly status?: number;
}

export interface SendResult {
  /** Ids DCS accepted (it answered an `xactionId`), in input order. */
  readonly accepted: string[];
  /** Permanent failures, in input order: quarantine them with the reason. */
  readonly rejected: RejectedRecord[];
  /** Ids neither accepted nor rejected (deadline reached, or the run stopped): send them again later. */
  readonly unsent: string[];
  /**
   * Ids that were in a request whose fate is unknown (connection lost after sending, timeout, 502/504) and that were
   * then re-sent or left unsent: AEP may hold one more copy of them than `accepted` says.
   */
  readonly ambiguous: string[];
  /** DCS `batchId` of every request that got a multi-status answer (the xactionIds are `{batchId}:{n}`). */
  readonly aepIds: string[];
  /** Messages sent again after a retryable failure. */
  readonly retried: number;
  /** HTTP requests made to DCS, retries included. */
  readonly requests: number;
  /** Largest request body sent, in bytes. */
  readonly maxRequestBytes: number;
}

enum Outcome {
  Unsent = 0,
  Accepted = 1,
  Rejected = 2,
}

/** State of one packed request while it is being delivered (one per worker, never shared). */
export interface Delivery {
  readonly ledger: Ledger;
  readonly pastDeadline: () => boolean;
  /** When sending must stop (epoch ms), if any. */
  readonly deadlineMs: number | undefined;
  /** True once the first attempt failed: every message sent from then on counts as re-sent. */
  retrying: boolean;
  /** The first retryable per-message status of the latest answer, which makes the attempt fail as a whole. */
  retryable: { status: number; message: string; retryAfterMs: number | undefined } | undefined;
  /** Input index → the latest retryable per-message answer DCS gave for it. */
  readonly lastAnswer: Map<number, { status: number; message: string }>;
}

/** Per-`send` bookkeeping, indexed like the input records. */
export class Ledger {
  readonly outcome: Uint8Array;
  readonly ambiguous: Uint8Array;
  readonly reasons = new Map<number, { reason: string; status?: number }>();
  readonly aepIds: string[] = [];
  retried = 0;
  requests = 0;
  maxRequestBytes = 0;

  constructor(readonly records: readonly SinkRecord[]) {
    this.outcome = new Uint8Array(records.length);
    this.ambiguous = new Uint8Array(records.length);
  }

  /** True while the record has neither been accepted nor rejected. */
  isUnsent(index: number): boolean {
    return this.outcome[index] === Outcome.Unsent;
  }

  reject(index: number, reason: string, status?: number): void {
    this.outcome[index] = Outcome.Rejected;
    this.reasons.set(index, status === undefined ? { reason } : { reason, status });
  }

  /** The fate of these messages is unknown: AEP may hold them even if they are sent again. */
  markAmbiguous(items: readonly Item[]): void {
    for (const item of items) this.ambiguous[item.index] = 1;
  }

  result(): SendResult {
    const accepted: string[] = [];
    const rejected: RejectedRecord[] = [];
    const unsent: string[] = [];
    const ambiguous: string[] = [];
    for (let i = 0; i < this.records.length; i++) {
      const id = (this.records[i] as SinkRecord).id;
      const outcome = this.outcome[i];
      if (outcome === Outcome.Accepted) accepted.push(id);
      else if (outcome === Outcome.Rejected) rejected.push({ id, ...(this.reasons.get(i) ?? { reason: 'rejected' }) });
      else unsent.push(id);
      if (this.ambiguous[i] === 1 && outcome !== Outcome.Rejected) ambiguous.push(id);
    }
    return {
      accepted,
      rejected,
      unsent,
      ambiguous,
      aepIds: this.aepIds,
      retried: this.retried,
      requests: this.requests,
      maxRequestBytes: this.maxRequestBytes,
    };
  }
}

const UNKNOWN_OUTCOME_HINT =
  'The outcome of these messages is unknown; check the dataset in AEP before sending them again.';

/**
 * Records the outcome of every message of a multi-status answer in the ledger; retryable ones stay unsent and set
 * `delivery.retryable`. An answer that cannot be matched to the messages marks them all ambiguous and throws.
 */
export async function readMultiStatus(
  response: Response,
  items: readonly Item[],
  delivery: Delivery,
  what: string,
  now: () => number,
): Promise<void> {
  const { ledger } = delivery;
  let parsed: { batchId?: unknown; responses?: unknown };
  try {
    parsed = (await response.json()) as typeof parsed;
  } catch (error) {
    // DCS processed the request but we cannot read which messages it took: never guess, never re-send blindly.
    ledger.markAmbiguous(items);
    throw new AepHttpError({
      what,
      service: 'dcs',
      status: response.status,
      adobeMessage: `unreadable multi-status body (${(error as Error).message})`,
      hint: UNKNOWN_OUTCOME_HINT,
    });
  }
  if (typeof parsed.batchId === 'string') ledger.aepIds.push(parsed.batchId);
  const entries = Array.isArray(parsed.responses) ? (parsed.responses as unknown[]) : [];
  if (entries.length !== items.length) {
    ledger.markAmbiguous(items);
    throw new AepHttpError({
      what,
      service: 'dcs',
      status: response.status,
      adobeMessage: `multi-status answer has ${entries.length} entries for ${items.length} messages`,
      hint: UNKNOWN_OUTCOME_HINT,
    });
  }
  const systemic = systemicRefusal(entries);
  if (systemic !== undefined) {
    // Raised before any message is rejected: they all stay unsent, to be sent in full once the setting is fixed.
    throw new PlatformConfigurationError({ what: `${what}: every message was refused`, ...systemic });
  }
  const retryAfter = response.headers.get('retry-after');
  for (let i = 0; i < items.length; i++) {
    const item = items[i] as Item;
    const entry = (entries[i] ?? {}) as { xactionId?: unknown; statusCode?: unknown; message?: unknown };
    if (typeof entry.xactionId === 'string' && entry.xactionId !== '') {
      ledger.outcome[item.index] = Outcome.Accepted;
      continue;
    }
    const status = typeof entry.statusCode === 'number' ? entry.statusCode : Number(entry.statusCode);
    const message = typeof entry.message === 'string' ? entry.message : '';
    if (RETRYABLE_MESSAGE_STATUSES.has(status)) {
      delivery.lastAnswer.set(item.index, { status, message });
      delivery.retryable ??= { status, message, retryAfterMs: parseRetryAfter(retryAfter, now()) };
      continue;
    }
    ledger.reject(
      item.index,
      message !== '' ? message : `DCS answered ${Number.isFinite(status) ? status : 'without an xactionId'}`,
      ...(Number.isFinite(status) ? [status] : []),
    );
  }
}

/**
 * A multi-status answer that refused every message for the same envelope reason (see `envelopeFault`): the envelope
 * is the same for every message the connector sends, so that is its configuration, not the records.
 */
function systemicRefusal(
  entries: readonly unknown[],
): { fault: EnvelopeFault; status?: number; adobeMessage: string } | undefined {
  let found: { fault: EnvelopeFault; status?: number; adobeMessage: string } | undefined;
  for (const raw of entries) {
    const entry = (raw ?? {}) as { xactionId?: unknown; statusCode?: unknown; message?: unknown };
    if (typeof entry.xactionId === 'string' && entry.xactionId !== '') return undefined;
    const status = typeof entry.statusCode === 'number' ? entry.statusCode : Number(entry.statusCode);
    if (RETRYABLE_MESSAGE_STATUSES.has(status)) return undefined;
    const message = typeof entry.message === 'string' ? entry.message : '';
    const fault = envelopeFault(message);
    if (fault === undefined || (found !== undefined && found.fault !== fault)) return undefined;
    found ??= { fault, ...(Number.isFinite(status) ? { status } : {}), adobeMessage: message };
  }
  return found;
}
