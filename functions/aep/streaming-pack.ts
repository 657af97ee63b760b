/**
 * Packing DCS batch requests: each message is the record's pre-serialised `json` between a fixed envelope, and each
 * request is as full as the 1 MB limit allows. The hot path never parses a record and copies each one once.
 *
 * Adobe, AdobeDocs/experience-platform.en help/ingestion/tutorials/streaming-multiple-messages.md: the body is
 * `{"messages":[...]}`, each message `{"header":{...},"body":{"xdmMeta":{"schemaRef"},"xdmEntity":{...}}}`.
 */
import { Buffer } from 'node:buffer';
import type { Ledger } from './streaming-answer.ts';

/**
 * Largest request body we send. Adobe documents 413 above "1MB" without saying whether that is 10^6 or 2^20 bytes
 * (streaming-multiple-messages.md, response codes; streaming ingestion overview): we take the smaller.
 */
export const DCS_MAX_REQUEST_BYTES = 1_000_000;

/**
 * Adobe documents no cap on messages per request, only 1,000 requests/s and 10,000 messages/s per org
 * (help/ingestion/streaming-ingestion/overview.md, "Request per seconds (RPS) guidance"), so by default only bytes
 * limit a request.
 */
export const DEFAULT_MAX_MESSAGES_PER_REQUEST = Number.POSITIVE_INFINITY;

/** Content type of an XDM record in a message: `…;version={SCHEMA_VERSION}` (streaming-ingestion.yaml,
 * SchemaReference), here for the default schema version 1.0. */
export const XED_FULL_CONTENT_TYPE = 'application/vnd.adobe.xed-full+json;version=1.0';

/** `source.name` in every message header, so AEP monitoring shows where the data came from. */
export const DEFAULT_SOURCE_NAME = 'mixpanel-aep-connector';

const REQUEST_OPEN = '{"messages":[';
const REQUEST_CLOSE = ']}';
/** Bytes of a request besides its messages and the commas between them. */
export const REQUEST_OVERHEAD_BYTES = REQUEST_OPEN.length + REQUEST_CLOSE.length;
const REQUEST_OPEN_BYTES = Buffer.from(REQUEST_OPEN);
const REQUEST_CLOSE_BYTES = Buffer.from(REQUEST_CLOSE);
const COMMA = 0x2c;
/** Memory of one reusable request body: the largest request DCS takes. */
const BODY_BLOCK_BYTES = DCS_MAX_REQUEST_BYTES;

/**
 * One mapped record: its XDM `_id` and the serialised `xdmEntity` (a JSON object, produced by the mapper), as text or
 * already as its UTF-8 bytes (the forwarder's chunk arena: then nothing is encoded again).
 */
export interface SinkRecord {
  readonly id: string;
  readonly json: string | Uint8Array;
}

/** Where the records go. */
export interface StreamingTarget {
  /**
   * The streaming connection URL `https://dcs.adobedc.net/collection/{id}` (`AEP_INLET_URL`); the batch endpoint is
   * derived from it.
   */
  readonly inletUrl: string;
  readonly datasetId: string;
  /** The schema's full `$id`, used verbatim as `schemaRef.id`. */
  readonly schemaId: string;
  /** `...@AdobeOrg` of the connection; defaults to the org of the credential. */
  readonly orgId?: string;
  /** The HTTP API dataflow id, `header.flowId` of every message (required: streaming-ingestion.yaml messageHeader). */
  readonly flowId: string;
  /** Version in `schemaRef.contentType`. @default '1.0' */
  readonly schemaVersion?: string;
  /** @default DEFAULT_SOURCE_NAME */
  readonly sourceName?: string;
  readonly sandbox: string;
}

/** One message of a packed request: the record's index and its `json` as UTF-8, encoded once when it is packed. */
export interface Item {
  readonly index: number;
  readonly json: Uint8Array;
}

/** The fixed parts of every message, as text and as the bytes the request body is assembled from. */
export interface Envelope {
  readonly prefix: string;
  readonly suffix: string;
  readonly prefixBytes: Buffer;
  readonly suffixBytes: Buffer;
  readonly overheadBytes: number;
}

/** The envelope of every message to `target` on behalf of `orgId`. */
export function envelopeFor(target: StreamingTarget, orgId: string): Envelope {
  const contentType =
    target.schemaVersion === undefined
      ? XED_FULL_CONTENT_TYPE
      : `application/vnd.adobe.xed-full+json;version=${target.schemaVersion}`;
  const schemaRef = { id: target.schemaId, contentType };
  const header = {
    schemaRef,
    imsOrgId: orgId,
    datasetId: target.datasetId,
    flowId: target.flowId,
    source: { name: target.sourceName ?? DEFAULT_SOURCE_NAME },
  };
  const meta = `"xdmMeta":{"schemaRef":${JSON.stringify(schemaRef)}}`;
  const prefix = `{"header":${JSON.stringify(header)},"body":{${meta},"xdmEntity":`;
  const suffix = '}}';
  const prefixBytes = Buffer.from(prefix, 'utf8');
  const suffixBytes = Buffer.from(suffix, 'utf8');
  return { prefix, suffix, prefixBytes, suffixBytes, overheadBytes: prefixBytes.length + suffixBytes.length };
}

/**
 * Cuts the records of one `send` into requests, in input order; workers take the next request as they free up.
 * A record too large for any request is rejected in the ledger as `record-too-large`.
 */
export class RequestPacker {
  #cursor = 0;
  readonly #maxMessageBytes: number;

  constructor(
    private readonly records: readonly SinkRecord[],
    private readonly envelope: Envelope,
    private readonly ledger: Ledger,
    private readonly maxBytes: number,
    private readonly maxMessages: number,
  ) {
    // Largest message that fits in a request alone.
    this.#maxMessageBytes = maxBytes - REQUEST_OVERHEAD_BYTES;
  }

  /** The next request's items, or undefined when every record is packed. */
  next(): Item[] | undefined {
    const { records, envelope } = this;
    const items: Item[] = [];
    let bytes = REQUEST_OVERHEAD_BYTES;
    while (this.#cursor < records.length && items.length < this.maxMessages) {
      const cursor = this.#cursor;
      const record = records[cursor] as SinkRecord;
      // Encoded once: its length packs the request, its bytes are copied into the body.
      const json = typeof record.json === 'string' ? Buffer.from(record.json, 'utf8') : record.json;
      const messageBytes = envelope.overheadBytes + json.length;
      if (messageBytes > this.#maxMessageBytes) {
        this.ledger.reject(cursor, 'record-too-large');
        this.#cursor++;
        continue;
      }
      const added = messageBytes + (items.length > 0 ? 1 : 0); // the comma between messages
      if (bytes + added > this.maxBytes) break;
      items.push({ index: cursor, json });
      bytes += added;
      this.#cursor++;
    }
    return items.length > 0 ? items : undefined;
  }
}

/**
 * Request bodies whose request is over (DCS answered and its answer was read), reused by later requests: each body
 * is ~1 MB and lives as long as its request, long enough to be promoted, so fresh ones piled up as external memory
 * until a full collection (measured: ~64 MB above the live set). At most one per request in flight.
 */
export class BodyPool {
  readonly #free: Buffer[] = [];

  /** The request body for `items`, in a free block when one is at hand. */
  body(items: readonly Item[], envelope: Envelope): Buffer {
    return requestBody(items, envelope, this.#free.pop());
  }

  /** Gives back the block of a body whose request is complete. */
  release(body: Buffer): void {
    if (body.buffer.byteLength === BODY_BLOCK_BYTES && body.byteOffset === 0) {
      this.#free.push(Buffer.from(body.buffer, 0, BODY_BLOCK_BYTES));
    }
  }
}

/**
 * `{"messages":[m1,m2,…]}` with each message `prefix + json + suffix`, copied straight from bytes: the same body as
 * encoding the joined text, without building that text (one copy of each record instead of three).
 */
function requestBody(items: readonly Item[], envelope: Envelope, reuse: Buffer | undefined): Buffer {
  const { prefixBytes, suffixBytes } = envelope;
  let length = REQUEST_OPEN_BYTES.length + REQUEST_CLOSE_BYTES.length + Math.max(0, items.length - 1);
  for (const item of items) length += prefixBytes.length + item.json.length + suffixBytes.length;
  // Bodies that fit a block are written into one (reused, or new and reusable later); a larger one (only ever to be
  // split) gets its own memory.
  const body =
    length > BODY_BLOCK_BYTES
      ? Buffer.allocUnsafe(length)
      : (reuse ?? Buffer.allocUnsafeSlow(BODY_BLOCK_BYTES)).subarray(0, length);
  let at = REQUEST_OPEN_BYTES.copy(body, 0);
  for (let i = 0; i < items.length; i++) {
    if (i > 0) body[at++] = COMMA;
    at += prefixBytes.copy(body, at);
    const json = (items[i] as Item).json;
    body.set(json, at);
    at += json.length;
    at += suffixBytes.copy(body, at);
  }
  REQUEST_CLOSE_BYTES.copy(body, at);
  return body;
}

/** A request body stream of exactly `bytes` (opened anew for every attempt). */
export function oneChunkStream(bytes: Uint8Array): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      controller.enqueue(bytes);
      controller.close();
    },
  });
}
