/**
 * The fan-out's sender: one message per partition of a committed run, to the forward queue the notifications arrive
 * on, so that the event source mapping runs the partitions concurrently (bounded by its maxConcurrency).
 */
import { SQSClient, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { ConnectorError } from '#common/errors';
import { partitionMessageBody } from './sqs-event.ts';
import type { PartitionMessage } from './window.ts';

/** SendMessageBatch takes at most 10 entries (AWS SQS API reference, SendMessageBatch). */
const SQS_BATCH_ENTRIES = 10;

/** Some partition messages were not queued: the window's message is redelivered and sends them all again. */
export class FanOutError extends ConnectorError {
  constructor(message: string) {
    super('transient', message);
    this.name = 'FanOutError';
  }
}

/** What the sender needs of an SQS client. */
export type SqsSend = Pick<SQSClient, 'send'>;

/**
 * A sender of partition messages to `queueUrl`. Messages sent twice (a redelivered notification) are harmless: a
 * partition already forwarded finds its receipts complete and sends nothing.
 */
export function sqsFanOut(queueUrl: string, sqs: SqsSend = new SQSClient({})) {
  return async (messages: readonly PartitionMessage[]): Promise<void> => {
    for (let i = 0; i < messages.length; i += SQS_BATCH_ENTRIES) {
      const entries = messages.slice(i, i + SQS_BATCH_ENTRIES).map((m) => ({
        Id: String(m.partition),
        MessageBody: partitionMessageBody(m),
      }));
      const out = await sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }));
      const failed = out.Failed ?? [];
      if (failed.length > 0) {
        const which = failed.map((f) => `partition ${f.Id}: ${f.Code ?? ''} ${f.Message ?? ''}`.trim()).join('; ');
        throw new FanOutError(
          `${failed.length} partition message(s) were not queued (${which}); the window's message is redelivered and ` +
            'queues them again',
        );
      }
    }
  };
}
