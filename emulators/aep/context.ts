/** State shared by the emulator's endpoints, and the fault step every request goes through first. */
import type { AcceptedStore } from './accepted.ts';
import type { AepFault, FaultQueue, RequestKind } from './faults.ts';
import { type Exchange, drain, sendJson } from './http.ts';
import type { ClientCredentials, TokenStore } from './ims.ts';
import type { StreamingBatches } from './streaming-batches.ts';
import type { RecordCheckOptions } from './xdm-checks.ts';

export interface EmulatorContext {
  /** Tenant id without underscore: custom fields live under `_${tenant}`. */
  readonly tenant: string;
  readonly sandbox: string;
  /** Dataset id → schema `$id`. */
  readonly datasets: Map<string, string>;
  /** Datasets enabled for Real-Time Customer Profile (configured, or tagged through the Catalog). */
  readonly profileDatasets: Set<string>;
  /** Dataset id → schema version `schemaRef.contentType` must name. */
  readonly schemaVersions: Map<string, string>;
  /** Streaming connection (inlet) id → whether it requires a token. */
  readonly connections: Map<string, { readonly authenticated: boolean }>;
  /** HTTP API dataflow id → the connection it reads and the dataset it writes. */
  readonly flows: Map<string, { readonly connectionId: string; readonly datasetId: string }>;
  /** Streamed records on their way to the data lake (and the failed batches of refused ones). */
  readonly streaming: StreamingBatches;
  /** Test convenience: records refused in the DCS response instead of a failed batch. */
  readonly syncValidationForTests: boolean;
  readonly clients: ReadonlyMap<string, ClientCredentials>;
  readonly orgIds: ReadonlySet<string>;
  /** The org named in DCS messages when no token says otherwise (the first client's). */
  readonly defaultOrgId: string;
  readonly tokens: TokenStore;
  readonly accepted: AcceptedStore;
  readonly faults: FaultQueue;
  readonly counters: { messagesAccepted: number; messagesRejected: number; recordsFailedValidation: number };
  /** Validation against a provisioned schema (setup.ts), for records of datasets created through the Catalog. */
  readonly schemaCheck?: RecordCheckOptions['schemaCheck'];
  /** A process-wide increasing number for ids (`xactionId`, DCS `batchId`). */
  nextSequence(): number;
}

export type FaultOutcome =
  | { readonly answered: true }
  | { readonly answered: false; readonly partial?: Extract<AepFault, { kind: 'partial' }> };

/**
 * Consumes the earliest queued fault that applies to this request. A `status` fault is answered here (the body is
 * drained, not processed); `expire-token` expires every token and lets the request go on to fail its auth check;
 * `partial` is handed back to the DCS batch handler.
 */
export async function applyFault(
  ex: Exchange,
  ctx: EmulatorContext,
  kind: RequestKind,
  defaultBody: (status: number) => unknown,
): Promise<FaultOutcome> {
  const fault = ctx.faults.take(kind);
  if (fault === undefined) return { answered: false };
  switch (fault.kind) {
    case 'status': {
      await drain(ex);
      const headers: Record<string, string> =
        fault.retryAfterSeconds === undefined ? {} : { 'retry-after': String(fault.retryAfterSeconds) };
      sendJson(ex, fault.status, fault.body ?? defaultBody(fault.status), headers);
      return { answered: true };
    }
    case 'expire-token':
      ctx.tokens.expireAll();
      return { answered: false };
    case 'partial':
      return { answered: false, partial: fault };
  }
}

/** Drains the request body, then replies (an early reply would otherwise reset the client's connection). */
export async function reply(
  ex: Exchange,
  status: number,
  body?: unknown,
  headers?: Record<string, string>,
): Promise<void> {
  await drain(ex);
  sendJson(ex, status, body, headers);
}
