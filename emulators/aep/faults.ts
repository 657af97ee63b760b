/** Faults a test queues on the emulator; each is consumed by the first later request it applies to. */

/** `provision`: the setup APIs (Schema Registry, Identity Service, Catalog datasets, Flow Service; setup.ts). */
export type FaultTarget = 'ims' | 'dcs' | 'batch-create' | 'batch-upload' | 'batch-complete' | 'catalog' | 'provision';
const TARGETS: readonly FaultTarget[] = [
  'ims',
  'dcs',
  'batch-create',
  'batch-upload',
  'batch-complete',
  'catalog',
  'provision',
];

export type AepFault =
  /** The next request to `target` is answered with `status` (and `Retry-After` when given) without being processed. */
  | { kind: 'status'; target: FaultTarget; status: number; retryAfterSeconds?: number; body?: unknown }
  /**
   * The next DCS batch request: every Nth message (N, 2N, …) fails with `statusCode` inside the 207 — or, with
   * `asynchronous`, is taken by DCS and then refused by Platform's asynchronous validation with `message`: the record
   * lands in a failed batch of its dataset, as a record that breaks a schema changed after provisioning would. An
   * asynchronous one also applies to the next batch file upload: every Nth row of it fails when the batch completes.
   */
  | { kind: 'partial'; everyNth: number; statusCode: 400 | 500 | 503; message?: string; asynchronous?: boolean }
  /** Every issued token expires just before the next DCS or Platform request. */
  | { kind: 'expire-token' };

/** What a request is, for fault matching. `dcs-batch` is also a `dcs` request. */
export type RequestKind = FaultTarget | 'dcs-batch';

function applies(fault: AepFault, kind: RequestKind): boolean {
  switch (fault.kind) {
    case 'status':
      return fault.target === kind || (fault.target === 'dcs' && kind === 'dcs-batch');
    case 'partial':
      // The asynchronous form also refuses rows of the next batch file (they fail at COMPLETE, as Platform's row errors).
      return kind === 'dcs-batch' || (fault.asynchronous === true && kind === 'batch-upload');
    case 'expire-token':
      return kind !== 'ims';
  }
}

export class FaultQueue {
  readonly #queue: AepFault[] = [];

  push(fault: AepFault): void {
    if (
      typeof fault !== 'object' ||
      fault === null ||
      !['status', 'partial', 'expire-token'].includes((fault as { kind?: unknown }).kind as string)
    ) {
      throw new Error(`unknown fault ${JSON.stringify(fault)}: expected a kind of status, partial or expire-token`);
    }
    if (fault.kind === 'status' && !TARGETS.includes(fault.target)) {
      throw new Error(
        `status fault: unknown target ${JSON.stringify(fault.target)}: expected one of ${TARGETS.join(', ')}`,
      );
    }
    if (fault.kind === 'partial' && ![400, 500, 503].includes(fault.statusCode)) {
      throw new Error(`partial fault: statusCode must be 400, 500 or 503, got ${fault.statusCode}`);
    }
    if (fault.kind === 'partial' && (!Number.isInteger(fault.everyNth) || fault.everyNth < 1)) {
      throw new Error(`partial fault: everyNth must be a positive integer, got ${fault.everyNth}`);
    }
    if (fault.kind === 'status' && (!Number.isInteger(fault.status) || fault.status < 100 || fault.status > 599)) {
      throw new Error(`status fault: status must be an HTTP status code, got ${fault.status}`);
    }
    this.#queue.push(fault);
  }

  /** Removes and returns the earliest queued fault that applies to this request, if any. */
  take(kind: RequestKind): AepFault | undefined {
    const index = this.#queue.findIndex((fault) => applies(fault, kind));
    return index === -1 ? undefined : this.#queue.splice(index, 1)[0];
  }

  get pending(): number {
    return this.#queue.length;
  }
}
