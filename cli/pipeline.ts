/**
 * Runs the deployed pipeline's two handlers locally, in order: the export handler, then — for every manifest it
 * committed — the forward handler with the SQS message the bucket notification would have sent.
 * The same handler code as the Lambdas; the S3 → SQS notification is simulated here, and a partitioned window's
 * fan-out goes through a real SQS client to the forward queue (the SQS stand-in) when one is given.
 */
import { DeleteMessageCommand, type Message, ReceiveMessageCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import type { ExportResult } from '#export/run';

export type ExportHandler = (event: unknown) => Promise<ExportResult>;
export type ForwardHandler = (event: SQSEvent) => Promise<SQSBatchResponse>;

let messages = 0;

/** The SQS message S3 sends for a created object (keys URL-encoded, spaces as `+`, as S3 does). */
export function sqsEventFor(bucket: string, key: string): SQSEvent {
  const encodedKey = encodeURIComponent(key).replace(/%20/g, '+').replace(/%2F/g, '/');
  const body = {
    Records: [
      {
        eventVersion: '2.1',
        eventSource: 'aws:s3',
        awsRegion: 'us-east-1',
        eventTime: new Date().toISOString(),
        eventName: 'ObjectCreated:Put',
        s3: {
          s3SchemaVersion: '1.0',
          bucket: { name: bucket, arn: `arn:aws:s3:::${bucket}` },
          object: { key: encodedKey },
        },
      },
    ],
  };
  messages++;
  const now = String(Date.now());
  return {
    Records: [
      sqsRecord(
        { messageId: `local-${messages}`, receiptHandle: `local-${messages}`, body: JSON.stringify(body) },
        { ApproximateReceiveCount: '1', SentTimestamp: now, ApproximateFirstReceiveTimestamp: now },
        'arn:aws:sqs:us-east-1:000000000000:local-forward',
      ),
    ],
  };
}

/** A Lambda SQS event record, as the event source mapping builds it from a received message. */
function sqsRecord(
  m: { messageId: string; receiptHandle: string; body: string },
  attributes: { ApproximateReceiveCount: string; SentTimestamp: string; ApproximateFirstReceiveTimestamp: string },
  queueArn: string,
): SQSRecord {
  return {
    ...m,
    attributes: { ...attributes, SenderId: 'local' },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: queueArn,
    awsRegion: 'us-east-1',
  };
}

/** The Lambda SQS event of one message received from a queue (the event source mapping's batch of one). */
export function sqsEventOf(m: Message, queueArn: string): SQSEvent {
  const a = m.Attributes ?? {};
  const sent = a.SentTimestamp ?? String(Date.now());
  return {
    Records: [
      sqsRecord(
        { messageId: m.MessageId ?? '', receiptHandle: m.ReceiptHandle ?? '', body: m.Body ?? '' },
        {
          ApproximateReceiveCount: a.ApproximateReceiveCount ?? '1',
          SentTimestamp: sent,
          ApproximateFirstReceiveTimestamp: a.ApproximateFirstReceiveTimestamp ?? sent,
        },
        queueArn,
      ),
    ],
  };
}

/** The forward queue a local run fans partitions out to (the SQS stand-in), and a client of it. */
export interface ForwardQueue {
  readonly url: string;
  readonly arn: string;
  readonly sqs: Pick<SQSClient, 'send'>;
}

/** Receives one message (batchSize 1, as the stack's event source mapping), or undefined when none is visible. */
export async function receiveOne(queue: ForwardQueue, waitSeconds = 0): Promise<Message | undefined> {
  const out = await queue.sqs.send(
    new ReceiveMessageCommand({
      QueueUrl: queue.url,
      MaxNumberOfMessages: 1,
      WaitTimeSeconds: waitSeconds,
      MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp', 'ApproximateFirstReceiveTimestamp'],
    }),
  );
  return out.Messages?.[0];
}

/**
 * Acts as the forward queue's event source mapping: hands each visible message to the forward handler, one message
 * per invocation, and deletes it unless the handler reported it failed (reportBatchItemFailures). A failed message
 * stays in flight until its visibility timeout, so this stops once no message is visible. Returns the failed ids.
 */
export async function drainForwardQueue(queue: ForwardQueue, forwardHandler: ForwardHandler): Promise<string[]> {
  const failures: string[] = [];
  for (let m = await receiveOne(queue); m !== undefined; m = await receiveOne(queue)) {
    const reply = await forwardHandler(sqsEventOf(m, queue.arn));
    if (reply.batchItemFailures.length > 0) failures.push(...reply.batchItemFailures.map((f) => f.itemIdentifier));
    else await queue.sqs.send(new DeleteMessageCommand({ QueueUrl: queue.url, ReceiptHandle: m.ReceiptHandle }));
  }
  return failures;
}

export interface PipelineRun {
  readonly export: ExportResult;
  /** Messages the forward handler asked to have redelivered. */
  readonly forwardFailures: string[];
}

/**
 * Exports, then forwards each committed window (what S3 → SQS → Lambda does when deployed). With `queue`, the
 * partition messages a partitioned window fans out to it are then forwarded too, each in an invocation of its own.
 */
export async function runPipeline(
  event: unknown,
  exportHandler: ExportHandler,
  forwardHandler: ForwardHandler,
  bucket: string,
  queue?: ForwardQueue,
): Promise<PipelineRun> {
  const exported = await exportHandler(event);
  const forwardFailures: string[] = [];
  for (const w of exported.windows) {
    if (w.status !== 'committed' || w.manifestKey === undefined) continue;
    const reply = await forwardHandler(sqsEventFor(bucket, w.manifestKey));
    forwardFailures.push(...reply.batchItemFailures.map((f) => `${w.id}: ${f.itemIdentifier}`));
    if (queue !== undefined)
      forwardFailures.push(...(await drainForwardQueue(queue, forwardHandler)).map((id) => `${w.id}: ${id}`));
  }
  return { export: exported, forwardFailures };
}
