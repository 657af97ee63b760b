import type { SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { FanOutError, type SqsSend, sqsFanOut } from '#forward/fan-out';
import { partitionMessageBody, readMessage } from '#forward/sqs-event';
import type { PartitionMessage } from '#forward/window';

const window = {
  projectId: '3141592',
  mode: 'processing-time',
  windowId: '20261120T100000Z_20261120T110000Z',
} as const;
const messages = (n: number): PartitionMessage[] =>
  Array.from({ length: n }, (_, partition) => ({ window, runId: 'r1', partition }));

/** A stand-in SQS client recording each SendMessageBatch; `failIds` are answered as failed entries. */
function fakeSqs(failIds: string[] = []) {
  const batches: Array<{ QueueUrl?: string; Entries: Array<{ Id: string; MessageBody: string }> }> = [];
  const sqs = {
    send: async (command: SendMessageBatchCommand) => {
      const input = command.input as (typeof batches)[number];
      batches.push(input);
      const failed = input.Entries.filter((e) => failIds.includes(e.Id)).map((e) => ({
        Id: e.Id,
        Code: 'InternalError',
        SenderFault: false,
        Message: 'try again',
      }));
      return { Successful: [], Failed: failed };
    },
  } as unknown as SqsSend;
  return { sqs, batches };
}

describe('partition messages', () => {
  it('should read back the body the fan-out sends', () => {
    // Act
    const intent = readMessage(partitionMessageBody(messages(3)[2]!));
    // Assess
    expect(intent).toEqual({ kind: 'partition', message: { window, runId: 'r1', partition: 2 } });
  });

  it('should call a partition message without its run or with a negative partition malformed', () => {
    expect(readMessage(JSON.stringify({ window, partition: 1 })).kind).toBe('malformed');
    expect(readMessage(JSON.stringify({ window, runId: 'r1', partition: -1 })).kind).toBe('malformed');
  });

  it('should queue one message per partition, ten to a SendMessageBatch', async () => {
    // Prepare
    const { sqs, batches } = fakeSqs();
    // Act
    await sqsFanOut('https://sqs.example/queue', sqs)(messages(16));
    // Assess
    expect(batches.map((b) => b.Entries.length)).toEqual([10, 6]);
    expect(batches.every((b) => b.QueueUrl === 'https://sqs.example/queue')).toBe(true);
    const sent = batches.flatMap((b) => b.Entries.map((e) => readMessage(e.MessageBody)));
    expect(sent.map((m) => (m.kind === 'partition' ? m.message.partition : -1))).toEqual([...Array(16).keys()]);
  });

  it('should fail (transient, redelivered) when SQS did not queue some entries', async () => {
    // Prepare
    const { sqs } = fakeSqs(['3']);
    // Act
    const error = await sqsFanOut('https://sqs.example/queue', sqs)(messages(4)).catch((e: unknown) => e);
    // Assess
    expect(error).toBeInstanceOf(FanOutError);
    expect((error as FanOutError).kind).toBe('transient');
    expect((error as Error).message).toMatch(/partition 3: InternalError try again.*queues them again/);
  });
});
