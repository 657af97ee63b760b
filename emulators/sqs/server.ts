/**
 * An Amazon SQS stand-in on loopback that speaks the AWS JSON 1.0 protocol @aws-sdk/client-sqs 3.x uses: `POST /`,
 * `Content-Type: application/x-amz-json-1.0`, `X-Amz-Target: AmazonSQS.<Action>`, JSON bodies; errors as in errors.ts.
 * Standard queues only. The SDK sends each request to the origin of its `QueueUrl` (or its configured endpoint), so a
 * queue URL of this server is all a client needs.
 *
 * Limits and rules come from the SQS API reference
 * (https://docs.aws.amazon.com/AWSSimpleQueueService/latest/APIReference/API_<Action>.html) and the Developer Guide;
 * each is cited where it is enforced. The message size limit is 1 MiB (1,048,576 bytes) since AWS raised it from
 * 256 KiB (API_SendMessage.html, MessageBody; AWS Compute Blog, "More room to build: serverless services now support
 * payloads up to 1 MB":
 * https://aws.amazon.com/blogs/compute/more-room-to-build-serverless-services-now-support-payloads-up-to-1-mb).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SQS_ERRORS, type SqsErrorShape, SqsFault } from './errors.ts';
import { Queue, type QueueSettings, type RedrivePolicy, md5 } from './queue.ts';

/** Largest message, and largest sum of a batch's messages, in bytes (API_SendMessage.html, …Batch.html). */
export const SQS_MAX_MESSAGE_BYTES = 1_048_576;
/** Entries of one batch request (API_SendMessageBatch.html, API_DeleteMessageBatch.html). */
export const SQS_MAX_BATCH_ENTRIES = 10;
/** Visibility timeout range in seconds: 0 to 12 hours (API_ChangeMessageVisibility.html, API_ReceiveMessage.html). */
export const SQS_MAX_VISIBILITY_TIMEOUT = 43_200;
/** Longest long poll in seconds (API_ReceiveMessage.html, WaitTimeSeconds). */
export const SQS_MAX_WAIT_SECONDS = 20;

/** The URL of queue `name` on the stand-in at `url` (`<origin>/<account>/<name>`, as SQS queue URLs are). */
export function sqsQueueUrl(url: string, name: string, accountId = DEFAULT_ACCOUNT): string {
  return `${url}/${accountId}/${name}`;
}

const DEFAULT_ACCOUNT = '000000000000';

export interface SqsQueueSpec {
  readonly name: string;
  /** Seconds (default 30, API_CreateQueue.html). */
  readonly visibilityTimeout?: number;
  /** Dead-letter queue by name (created first in the list) and the receives after which a message moves there. */
  readonly redrive?: { readonly deadLetterQueue: string; readonly maxReceiveCount: number };
}

export interface SqsEmulatorOptions {
  readonly queues?: readonly SqsQueueSpec[];
  /** @default '000000000000' */
  readonly accountId?: string;
  /** @default 'us-east-1' */
  readonly region?: string;
}

/** One request the stand-in answered (tests and the bench read them). */
export interface SqsRequest {
  readonly action: string;
  readonly status: number;
  readonly code?: string;
}

export interface SqsEmulator {
  readonly url: string;
  queueUrl(name: string): string;
  queueArn(name: string): string;
  /** ApproximateNumberOfMessages / …NotVisible of a queue, now. */
  counts(name: string): { visible: number; notVisible: number };
  /** Bodies a queue holds, visible or in flight. */
  bodies(name: string): string[];
  readonly requests: readonly SqsRequest[];
  close(): Promise<void>;
}

type Json = Record<string, unknown>;
type Handler = (input: Json) => Promise<Json> | Json;

/** Queue names: 1–80 alphanumerics, hyphens and underscores (API_CreateQueue.html, QueueName; no FIFO here). */
const QUEUE_NAME = /^[A-Za-z0-9_-]{1,80}$/;
/** Batch entry Ids: up to 80 alphanumerics, hyphens and underscores (API_SendMessageBatchRequestEntry.html, Id). */
const BATCH_ENTRY_ID = /^[A-Za-z0-9_-]{1,80}$/;
/**
 * Characters a message may hold: #x9 | #xA | #xD | #x20–#xD7FF | #xE000–#xFFFD | #x10000–#x10FFFF
 * (API_SendMessage.html, MessageBody); a lone surrogate is none of them.
 */
const INVALID_CHARACTER = /[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\u{10000}-\u{10ffff}]/u;

export async function startSqsEmulator(o: SqsEmulatorOptions = {}): Promise<SqsEmulator> {
  const accountId = o.accountId ?? DEFAULT_ACCOUNT;
  const region = o.region ?? 'us-east-1';
  const queues = new Map<string, Queue>();
  const requests: SqsRequest[] = [];
  const polls = new Set<() => void>();
  let origin = '';
  let closing = false;

  const arnOf = (name: string): string => `arn:aws:sqs:${region}:${accountId}:${name}`;
  const urlOf = (name: string): string => sqsQueueUrl(origin, name, accountId);
  const named = (name: string): Queue => {
    const q = queues.get(name);
    if (q === undefined) throw new SqsFault('QueueDoesNotExist', 'The specified queue does not exist.');
    return q;
  };
  /** The queue a `QueueUrl` names: its path is `/<account>/<name>` (any host, as SQS accepts either URL form). */
  const queueOf = (input: Json): Queue => {
    const raw = requiredString(input, 'QueueUrl');
    let segments: string[];
    try {
      segments = new URL(raw).pathname.split('/').filter((s) => s !== '');
    } catch {
      throw new SqsFault('QueueDoesNotExist', 'The specified queue does not exist.');
    }
    if (segments.length !== 2 || segments[0] !== accountId)
      throw new SqsFault('QueueDoesNotExist', 'The specified queue does not exist.');
    return named(segments[1]!);
  };

  const create = (name: string, settings: QueueSettings): Queue => {
    if (!QUEUE_NAME.test(name))
      throw new SqsFault('InvalidParameterValue', 'Can only include alphanumeric characters, hyphens, or underscores.');
    const existing = queues.get(name);
    if (existing !== undefined) {
      // CreateQueue is idempotent for the same attributes; different ones are QueueNameExists (API_CreateQueue.html).
      if (JSON.stringify(existing.settings) !== JSON.stringify(settings))
        throw new SqsFault('QueueNameExists', `A queue named ${name} already exists with different attributes.`);
      return existing;
    }
    if (settings.redrivePolicy !== undefined) {
      const target = [...queues.values()].find((q) => q.arn === settings.redrivePolicy!.deadLetterTargetArn);
      if (target === undefined)
        throw new SqsFault('InvalidParameterValue', 'Value for parameter RedrivePolicy is invalid: no such queue.');
    }
    const q = new Queue(name, arnOf(name), urlOf(name), settings, Date.now());
    queues.set(name, q);
    return q;
  };

  /** Messages of `q` to deliver now, moving those past the redrive policy's maxReceiveCount to the DLQ first. */
  const takeVisible = (q: Queue, max: number, visibilityTimeout: number, now: number) => {
    const out: Array<{ m: ReturnType<Queue['visible']>[number]; handle: string }> = [];
    for (const m of q.visible(now)) {
      if (out.length >= max) break;
      const policy = q.settings.redrivePolicy;
      // "When the ReceiveCount for a message exceeds the maxReceiveCount for a queue, Amazon SQS moves the message to
      // a dead-letter queue" (Developer Guide, sqs-dead-letter-queues.html).
      if (policy !== undefined && m.receiveCount >= policy.maxReceiveCount) {
        const dlq = [...queues.values()].find((d) => d.arn === policy.deadLetterTargetArn);
        q.remove(m);
        dlq?.add({
          messageId: m.messageId,
          body: m.body,
          md5OfBody: m.md5OfBody,
          sentAt: m.sentAt,
          ...(m.messageAttributes !== undefined ? { messageAttributes: m.messageAttributes } : {}),
          ...(m.md5OfMessageAttributes !== undefined ? { md5OfMessageAttributes: m.md5OfMessageAttributes } : {}),
        });
        continue;
      }
      out.push({ m, handle: q.receive(m, now, visibilityTimeout) });
    }
    return out;
  };

  const send = (q: Queue, entry: Json, where: string) => {
    const body = entry.MessageBody;
    // "The minimum size is one character" (API_SendMessage.html, MessageBody).
    if (typeof body !== 'string' || body.length === 0)
      throw new SqsFault('MissingParameter', `The request must contain the parameter ${where}MessageBody.`);
    if (INVALID_CHARACTER.test(body))
      throw new SqsFault(
        'InvalidMessageContents',
        'Invalid binary character in the message body: only #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | ' +
          '#x10000 to #x10FFFF are allowed.',
      );
    if (entry.DelaySeconds !== undefined && entry.DelaySeconds !== 0)
      throw new SqsFault('InvalidParameterValue', 'DelaySeconds is not emulated (only 0).');
    const attributes = entry.MessageAttributes as Record<string, unknown> | undefined;
    const m = q.add({
      body,
      md5OfBody: md5(body),
      sentAt: Date.now(),
      ...(attributes !== undefined && Object.keys(attributes).length > 0
        ? { messageAttributes: attributes, md5OfMessageAttributes: md5(JSON.stringify(attributes)) }
        : {}),
    });
    wake();
    return m;
  };

  const wake = (): void => {
    for (const poll of polls) poll();
  };

  const receive = async (input: Json): Promise<Json> => {
    const q = queueOf(input);
    const max = optionalInt(input, 'MaxNumberOfMessages', 1, 1, SQS_MAX_BATCH_ENTRIES);
    const visibility = optionalInt(
      input,
      'VisibilityTimeout',
      q.settings.visibilityTimeout,
      0,
      SQS_MAX_VISIBILITY_TIMEOUT,
    );
    const wait = optionalInt(
      input,
      'WaitTimeSeconds',
      q.settings.receiveMessageWaitTimeSeconds,
      0,
      SQS_MAX_WAIT_SECONDS,
    );
    const wanted = new Set([
      ...((input.AttributeNames as string[] | undefined) ?? []),
      ...((input.MessageSystemAttributeNames as string[] | undefined) ?? []),
    ]);
    const deadline = Date.now() + wait * 1000;
    let got = takeVisible(q, max, visibility, Date.now());
    // Long polling: wait until a message is sent or becomes visible again, or the wait ends (API_ReceiveMessage.html).
    while (got.length === 0 && Date.now() < deadline && !closing) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          polls.delete(done);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(done, Math.min(100, Math.max(1, deadline - Date.now())));
        polls.add(done);
      });
      got = takeVisible(q, max, visibility, Date.now());
    }
    if (got.length === 0) return {};
    return {
      Messages: got.map(({ m, handle }) => ({
        MessageId: m.messageId,
        ReceiptHandle: handle,
        MD5OfBody: m.md5OfBody,
        Body: m.body,
        ...(wanted.size > 0 ? { Attributes: systemAttributes(m, wanted) } : {}),
        ...(m.messageAttributes !== undefined
          ? { MessageAttributes: m.messageAttributes, MD5OfMessageAttributes: m.md5OfMessageAttributes }
          : {}),
      })),
    };
  };

  const actions: Record<string, Handler> = {
    CreateQueue: (input) => {
      const name = requiredString(input, 'QueueName');
      const q = create(name, queueSettings((input.Attributes as Record<string, string> | undefined) ?? {}));
      return { QueueUrl: q.url };
    },
    GetQueueUrl: (input) => ({ QueueUrl: named(requiredString(input, 'QueueName')).url }),
    SendMessage: (input) => {
      const q = queueOf(input);
      const bytes = messageBytes(input);
      if (bytes > SQS_MAX_MESSAGE_BYTES)
        throw new SqsFault(
          'InvalidParameterValue',
          `One or more parameters are invalid. Reason: Message must be shorter than ${SQS_MAX_MESSAGE_BYTES} bytes.`,
        );
      const m = send(q, input, '');
      return {
        MessageId: m.messageId,
        MD5OfMessageBody: m.md5OfBody,
        ...(m.md5OfMessageAttributes !== undefined ? { MD5OfMessageAttributes: m.md5OfMessageAttributes } : {}),
      };
    },
    SendMessageBatch: (input) => {
      const q = queueOf(input);
      const entries = batchEntries(input);
      const total = entries.reduce((n, e) => n + messageBytes(e), 0);
      // "The maximum allowed individual message size and the maximum total payload size (the sum of the individual
      // lengths of all of the batched messages) are both 1 MiB" (API_SendMessageBatch.html).
      if (total > SQS_MAX_MESSAGE_BYTES)
        throw new SqsFault(
          'BatchRequestTooLong',
          `Batch requests cannot be longer than ${SQS_MAX_MESSAGE_BYTES} bytes. You have sent ${total} bytes.`,
        );
      return perEntry(entries, (e) => {
        const m = send(q, e, `SendMessageBatchRequestEntry.${e.Id as string}.`);
        return { MessageId: m.messageId, MD5OfMessageBody: m.md5OfBody };
      });
    },
    ReceiveMessage: receive,
    DeleteMessage: (input) => {
      const q = queueOf(input);
      const m = messageOf(q, requiredString(input, 'ReceiptHandle'));
      if (m !== null) q.remove(m);
      return {};
    },
    DeleteMessageBatch: (input) => {
      const q = queueOf(input);
      return perEntry(batchEntries(input), (e) => {
        const m = messageOf(q, requiredString(e, 'ReceiptHandle'));
        if (m !== null) q.remove(m);
        return {};
      });
    },
    ChangeMessageVisibility: (input) => {
      const q = queueOf(input);
      const timeout = requiredInt(input, 'VisibilityTimeout', 0, SQS_MAX_VISIBILITY_TIMEOUT);
      const m = messageOf(q, requiredString(input, 'ReceiptHandle'));
      const now = Date.now();
      if (m === null || m.visibleAt <= now)
        throw new SqsFault('MessageNotInflight', 'The message referred to is not in flight.');
      // The new timeout counts from now, not from the receive (API_ChangeMessageVisibility.html).
      m.visibleAt = now + timeout * 1000;
      if (timeout === 0) wake();
      return {};
    },
    GetQueueAttributes: (input) => {
      const q = queueOf(input);
      const names = new Set((input.AttributeNames as string[] | undefined) ?? []);
      const all = queueAttributes(q);
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(all)) if (names.has('All') || names.has(k)) out[k] = v;
      for (const n of names)
        if (n !== 'All' && !(n in all)) throw new SqsFault('InvalidAttributeName', `Unknown Attribute ${n}.`);
      return { Attributes: out };
    },
  };

  const queueAttributes = (q: Queue): Record<string, string> => {
    const c = q.counts(Date.now());
    return {
      ApproximateNumberOfMessages: String(c.visible),
      ApproximateNumberOfMessagesNotVisible: String(c.notVisible),
      ApproximateNumberOfMessagesDelayed: '0',
      VisibilityTimeout: String(q.settings.visibilityTimeout),
      ReceiveMessageWaitTimeSeconds: String(q.settings.receiveMessageWaitTimeSeconds),
      MaximumMessageSize: String(SQS_MAX_MESSAGE_BYTES),
      QueueArn: q.arn,
      CreatedTimestamp: String(Math.floor(q.createdAt / 1000)),
      ...(q.settings.redrivePolicy !== undefined ? { RedrivePolicy: JSON.stringify(q.settings.redrivePolicy) } : {}),
    };
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const target = String(req.headers['x-amz-target'] ?? '');
      const action = target.startsWith('AmazonSQS.') ? target.slice('AmazonSQS.'.length) : target;
      const reply = (status: number, body: Json, error?: SqsErrorShape): void => {
        requests.push({ action, status, ...(error !== undefined ? { code: error.code } : {}) });
        const text = JSON.stringify(body);
        res.writeHead(status, {
          'content-type': 'application/x-amz-json-1.0',
          'content-length': String(Buffer.byteLength(text)),
          'x-amzn-requestid': crypto.randomUUID(),
          ...(error !== undefined ? { 'x-amzn-query-error': `${error.code};Sender` } : {}),
        });
        res.end(text);
      };
      const fail = (error: SqsErrorShape, message: string): void =>
        reply(error.status, { __type: error.type, message }, error);
      const handler = req.method === 'POST' ? actions[action] : undefined;
      if (handler === undefined || !target.startsWith('AmazonSQS.'))
        return fail(SQS_ERRORS.UnknownOperation, `${req.method} ${target || '(no X-Amz-Target)'} is not an action`);
      if (!String(req.headers['content-type'] ?? '').startsWith('application/x-amz-json-1.0'))
        return fail(SQS_ERRORS.UnknownOperation, 'the AWS JSON protocol needs Content-Type application/x-amz-json-1.0');
      // Every request is signed with Signature Version 4 (CommonErrors.html: MissingAuthenticationToken,
      // IncompleteSignature; SigV4 needs the Authorization header and X-Amz-Date). Signatures are not verified.
      const authorization = String(req.headers.authorization ?? '');
      if (authorization === '')
        return fail(SQS_ERRORS.MissingAuthenticationToken, 'Request is missing Authentication Token');
      if (!authorization.startsWith('AWS4-HMAC-SHA256 ') || req.headers['x-amz-date'] === undefined)
        return fail(SQS_ERRORS.IncompleteSignature, 'The request signature does not conform to AWS standards.');
      let input: Json;
      try {
        const parsed: unknown = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}');
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
        input = parsed as Json;
      } catch {
        return fail(SQS_ERRORS.Serialization, 'The request body is not a JSON object.');
      }
      Promise.resolve()
        .then(() => handler(input))
        .then(
          (out) => reply(200, out),
          (error: unknown) => {
            if (error instanceof SqsFault) fail(error.shape, error.message);
            else reply(500, { __type: 'com.amazonaws.sqs#InternalError', message: (error as Error).message });
          },
        );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  for (const spec of o.queues ?? []) {
    const redrive: RedrivePolicy | undefined =
      spec.redrive === undefined
        ? undefined
        : { deadLetterTargetArn: arnOf(spec.redrive.deadLetterQueue), maxReceiveCount: spec.redrive.maxReceiveCount };
    create(spec.name, {
      visibilityTimeout: spec.visibilityTimeout ?? 30,
      receiveMessageWaitTimeSeconds: 0,
      ...(redrive !== undefined ? { redrivePolicy: redrive } : {}),
    });
  }
  return {
    url: origin,
    queueUrl: (name) => named(name).url,
    queueArn: (name) => named(name).arn,
    counts: (name) => named(name).counts(Date.now()),
    bodies: (name) => named(name).bodies(),
    requests,
    close: async () => {
      closing = true;
      wake();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/** The message a receipt handle names (null: gone), or ReceiptHandleIsInvalid (API_DeleteMessage.html). */
function messageOf(q: Queue, handle: string) {
  const m = q.byHandle(handle);
  if (m === undefined) throw new SqsFault('ReceiptHandleIsInvalid', `The input receipt handle "${handle}" is invalid.`);
  return m;
}

/** The entries of a batch request, checked as API_SendMessageBatch.html and API_DeleteMessageBatch.html list. */
function batchEntries(input: Json): Json[] {
  const entries = input.Entries;
  if (!Array.isArray(entries) || entries.length === 0)
    throw new SqsFault('EmptyBatchRequest', 'There should be at least one entry in the request.');
  if (entries.length > SQS_MAX_BATCH_ENTRIES)
    throw new SqsFault(
      'TooManyEntriesInBatchRequest',
      `Maximum number of entries per request are ${SQS_MAX_BATCH_ENTRIES}. You have sent ${entries.length}.`,
    );
  const seen = new Set<string>();
  for (const e of entries as Json[]) {
    const id = e.Id;
    if (typeof id !== 'string' || !BATCH_ENTRY_ID.test(id))
      throw new SqsFault(
        'InvalidBatchEntryId',
        'A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 ' +
          'letters long.',
      );
    if (seen.has(id)) throw new SqsFault('BatchEntryIdsNotDistinct', `Id ${id} repeated.`);
    seen.add(id);
  }
  return entries as Json[];
}

/** A batch answer: each entry's result under Successful, or its error under Failed (the batch itself succeeds). */
function perEntry(entries: readonly Json[], run: (e: Json) => Json): Json {
  const Successful: Json[] = [];
  const Failed: Json[] = [];
  for (const e of entries) {
    try {
      Successful.push({ Id: e.Id, ...run(e) });
    } catch (error) {
      if (!(error instanceof SqsFault)) throw error;
      Failed.push({ Id: e.Id, SenderFault: true, Code: error.shape.code, Message: error.message });
    }
  }
  return { Successful, Failed };
}

/** A message's size: its body plus each message attribute's name, type and value (API_SendMessage.html). */
function messageBytes(entry: Json): number {
  let n = typeof entry.MessageBody === 'string' ? Buffer.byteLength(entry.MessageBody) : 0;
  const attributes = entry.MessageAttributes as Record<string, Record<string, unknown>> | undefined;
  for (const [name, a] of Object.entries(attributes ?? {})) {
    n += Buffer.byteLength(name) + Buffer.byteLength(String(a.DataType ?? ''));
    if (typeof a.StringValue === 'string') n += Buffer.byteLength(a.StringValue);
    if (typeof a.BinaryValue === 'string') n += Buffer.from(a.BinaryValue, 'base64').length;
  }
  return n;
}

/** The system attributes asked for (API_ReceiveMessage.html, MessageSystemAttributeNames). */
function systemAttributes(
  m: { receiveCount: number; sentAt: number; firstReceiveAt?: number },
  wanted: ReadonlySet<string>,
): Record<string, string> {
  const all: Record<string, string> = {
    ApproximateReceiveCount: String(m.receiveCount),
    SentTimestamp: String(m.sentAt),
    ApproximateFirstReceiveTimestamp: String(m.firstReceiveAt ?? m.sentAt),
    SenderId: 'AIDAEMULATOR',
  };
  return Object.fromEntries(Object.entries(all).filter(([k]) => wanted.has('All') || wanted.has(k)));
}

/** Queue attributes of CreateQueue that the stand-in implements (API_CreateQueue.html, Attributes). */
function queueSettings(attributes: Record<string, string>): QueueSettings {
  const known = new Set(['VisibilityTimeout', 'ReceiveMessageWaitTimeSeconds', 'RedrivePolicy']);
  for (const k of Object.keys(attributes))
    if (!known.has(k)) throw new SqsFault('InvalidAttributeName', `Unknown Attribute ${k}.`);
  const int = (k: string, fallback: number, max: number): number => {
    const raw = attributes[k];
    if (raw === undefined) return fallback;
    const n = Number(raw);
    if (!Number.isInteger(n) || n < 0 || n > max)
      throw new SqsFault('InvalidAttributeValue', `Invalid value for the parameter ${k}.`);
    return n;
  };
  let redrivePolicy: RedrivePolicy | undefined;
  if (attributes.RedrivePolicy !== undefined) {
    try {
      const p = JSON.parse(attributes.RedrivePolicy) as { deadLetterTargetArn?: unknown; maxReceiveCount?: unknown };
      const max = Number(p.maxReceiveCount);
      // maxReceiveCount: 1 to 1,000 (Developer Guide, sqs-configure-dead-letter-queue.html).
      if (typeof p.deadLetterTargetArn !== 'string' || !Number.isInteger(max) || max < 1 || max > 1000)
        throw new Error('invalid');
      redrivePolicy = { deadLetterTargetArn: p.deadLetterTargetArn, maxReceiveCount: max };
    } catch {
      throw new SqsFault('InvalidAttributeValue', 'Invalid value for the parameter RedrivePolicy.');
    }
  }
  return {
    visibilityTimeout: int('VisibilityTimeout', 30, SQS_MAX_VISIBILITY_TIMEOUT),
    receiveMessageWaitTimeSeconds: int('ReceiveMessageWaitTimeSeconds', 0, SQS_MAX_WAIT_SECONDS),
    ...(redrivePolicy !== undefined ? { redrivePolicy } : {}),
  };
}

function requiredString(input: Json, name: string): string {
  const v = input[name];
  if (typeof v !== 'string' || v === '')
    throw new SqsFault('MissingParameter', `The request must contain the parameter ${name}.`);
  return v;
}

function requiredInt(input: Json, name: string, min: number, max: number): number {
  if (input[name] === undefined)
    throw new SqsFault('MissingParameter', `The request must contain the parameter ${name}.`);
  return optionalInt(input, name, 0, min, max);
}

function optionalInt(input: Json, name: string, fallback: number, min: number, max: number): number {
  const v = input[name];
  if (v === undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max)
    throw new SqsFault(
      'InvalidParameterValue',
      `Value ${String(v)} for parameter ${name} is invalid. Reason: Must be between ${min} and ${max}.`,
    );
  return v;
}
