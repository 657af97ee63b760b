/**
 * Runs the deployed pipeline's two handlers locally, in order: the export handler, then — for every manifest it
 * committed — the forward handler with the SQS message the bucket notification would have sent.
 * The same handler code as the Lambdas; only the transport between them (S3 → SQS) is simulated here.
 */
import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
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
  return {
    Records: [
      {
        messageId: `local-${messages}`,
        receiptHandle: `local-${messages}`,
        body: JSON.stringify(body),
        attributes: {
          ApproximateReceiveCount: '1',
          SentTimestamp: String(Date.now()),
          SenderId: 'local',
          ApproximateFirstReceiveTimestamp: String(Date.now()),
        },
        messageAttributes: {},
        md5OfBody: '',
        eventSource: 'aws:sqs',
        eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:local-forward',
        awsRegion: 'us-east-1',
      },
    ],
  };
}

export interface PipelineRun {
  readonly export: ExportResult;
  /** Messages the forward handler asked to have redelivered. */
  readonly forwardFailures: string[];
}

/** Exports, then forwards each committed window (what S3 → SQS → Lambda does when deployed). */
export async function runPipeline(
  event: unknown,
  exportHandler: ExportHandler,
  forwardHandler: ForwardHandler,
  bucket: string,
): Promise<PipelineRun> {
  const exported = await exportHandler(event);
  const forwardFailures: string[] = [];
  for (const w of exported.windows) {
    if (w.status !== 'committed' || w.manifestKey === undefined) continue;
    const reply = await forwardHandler(sqsEventFor(bucket, w.manifestKey));
    forwardFailures.push(...reply.batchItemFailures.map((f) => `${w.id}: ${f.itemIdentifier}`));
  }
  return { export: exported, forwardFailures };
}
