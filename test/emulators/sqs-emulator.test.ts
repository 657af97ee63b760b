/**
 * The SQS stand-in through the real @aws-sdk/client-sqs: each documented rule answers with the service's error code,
 * and receive, visibility, deletion and the redrive to a dead-letter queue behave as the API reference describes.
 */
import {
  ChangeMessageVisibilityCommand,
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ReceiveMessageCommand,
  SQSClient,
  SendMessageBatchCommand,
  SendMessageCommand,
} from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it } from 'vitest';
import { SQS_MAX_MESSAGE_BYTES, type SqsEmulator, startSqsEmulator } from '#emulators/sqs/server';

let sqs: SqsEmulator | undefined;
let client: SQSClient | undefined;
afterEach(async () => {
  client?.destroy();
  await sqs?.close();
  [sqs, client] = [undefined, undefined];
});

async function setup(): Promise<{ c: SQSClient; url: string; dlq: string }> {
  sqs = await startSqsEmulator({
    queues: [
      { name: 'dlq' },
      { name: 'forward', visibilityTimeout: 60, redrive: { deadLetterQueue: 'dlq', maxReceiveCount: 2 } },
    ],
  });
  client = new SQSClient({
    endpoint: sqs.url,
    region: 'us-east-1',
    credentials: { accessKeyId: 'AKIDLOCAL', secretAccessKey: 'local' },
  });
  return { c: client, url: sqs.queueUrl('forward'), dlq: sqs.queueUrl('dlq') };
}

/** The error name and HTTP status the SDK gives a rejected command. */
async function failure(p: Promise<unknown>): Promise<{ name: string; status: number | undefined; code?: string }> {
  try {
    await p;
  } catch (error) {
    const e = error as { name: string; $metadata?: { httpStatusCode?: number }; Code?: string };
    return { name: e.name, status: e.$metadata?.httpStatusCode, ...(e.Code !== undefined ? { code: e.Code } : {}) };
  }
  throw new Error('expected the command to fail');
}

const entries = (n: number, body = 'm') => Array.from({ length: n }, (_, i) => ({ Id: `e${i}`, MessageBody: body }));

describe('SQS stand-in', () => {
  it('should send, receive with attributes and MD5, and delete a message', async () => {
    const { c, url } = await setup();
    const sent = await c.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'héllo' }));
    expect(sent.MessageId).toBeDefined();
    const got = await c.send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, MessageSystemAttributeNames: ['All'] }),
    );
    expect(got.Messages).toHaveLength(1);
    const m = got.Messages![0]!;
    expect(m).toMatchObject({ MessageId: sent.MessageId, Body: 'héllo' });
    expect(m.Attributes?.ApproximateReceiveCount).toBe('1');
    // In flight: not received again, counted as not visible.
    expect((await c.send(new ReceiveMessageCommand({ QueueUrl: url }))).Messages).toBeUndefined();
    const attrs = await c.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] }));
    expect(attrs.Attributes).toMatchObject({
      ApproximateNumberOfMessages: '0',
      ApproximateNumberOfMessagesNotVisible: '1',
    });
    await c.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: m.ReceiptHandle! }));
    expect(sqs!.counts('forward')).toEqual({ visible: 0, notVisible: 0 });
  });

  it('should check batch requests: entry count, distinct and valid ids, total size', async () => {
    const { c, url } = await setup();
    const batch = (Entries: Array<{ Id: string; MessageBody: string }>) =>
      failure(c.send(new SendMessageBatchCommand({ QueueUrl: url, Entries })));
    expect(await batch(entries(11))).toMatchObject({ name: 'TooManyEntriesInBatchRequest', status: 400 });
    expect(await batch([])).toMatchObject({ name: 'EmptyBatchRequest', status: 400 });
    expect(
      await batch([
        { Id: 'a', MessageBody: 'x' },
        { Id: 'a', MessageBody: 'y' },
      ]),
    ).toMatchObject({ name: 'BatchEntryIdsNotDistinct', status: 400 });
    expect(await batch([{ Id: 'bad id!', MessageBody: 'x' }])).toMatchObject({ name: 'InvalidBatchEntryId' });
    expect(await batch([{ Id: 'x'.repeat(81), MessageBody: 'x' }])).toMatchObject({ name: 'InvalidBatchEntryId' });
    // Two entries of 600 KB each: each under the limit, their sum over it.
    expect(await batch(entries(2, 'x'.repeat(600_000)))).toMatchObject({ name: 'BatchRequestTooLong', status: 400 });
    const ok = await c.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: entries(10) }));
    expect(ok.Successful).toHaveLength(10);
    expect(sqs!.counts('forward').visible).toBe(10);
  });

  it('should refuse a message over 1 MiB or with characters SQS forbids; a bad batch entry is Failed', async () => {
    const { c, url } = await setup();
    const send = (MessageBody: string) => failure(c.send(new SendMessageCommand({ QueueUrl: url, MessageBody })));
    expect(await send('x'.repeat(SQS_MAX_MESSAGE_BYTES + 1))).toMatchObject({
      status: 400,
      code: 'InvalidParameterValue',
    });
    expect(await send('bell \u0007')).toMatchObject({ name: 'InvalidMessageContents', status: 400 });
    expect(await send('lone \ud800 surrogate')).toMatchObject({ name: 'InvalidMessageContents' });
    // Exactly 1 MiB is allowed.
    await c.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x'.repeat(SQS_MAX_MESSAGE_BYTES) }));
    const out = await c.send(
      new SendMessageBatchCommand({
        QueueUrl: url,
        Entries: [
          { Id: 'good', MessageBody: 'fine' },
          { Id: 'bad', MessageBody: 'nul \u0000' },
        ],
      }),
    );
    expect(out.Successful?.map((s) => s.Id)).toEqual(['good']);
    expect(out.Failed).toEqual([
      expect.objectContaining({ Id: 'bad', Code: 'InvalidMessageContents', SenderFault: true }),
    ]);
  });

  it('should answer QueueDoesNotExist for an unknown queue, and create and find queues', async () => {
    const { c } = await setup();
    const missing = sqs!.queueUrl('forward').replace(/forward$/, 'nope');
    expect(await failure(c.send(new SendMessageCommand({ QueueUrl: missing, MessageBody: 'x' })))).toMatchObject({
      name: 'QueueDoesNotExist',
      status: 400,
      code: 'AWS.SimpleQueueService.NonExistentQueue',
    });
    expect(await failure(c.send(new GetQueueUrlCommand({ QueueName: 'nope' })))).toMatchObject({
      name: 'QueueDoesNotExist',
    });
    const created = await c.send(
      new CreateQueueCommand({ QueueName: 'extra', Attributes: { VisibilityTimeout: '5' } }),
    );
    expect((await c.send(new GetQueueUrlCommand({ QueueName: 'extra' }))).QueueUrl).toBe(created.QueueUrl);
    expect(
      await failure(c.send(new CreateQueueCommand({ QueueName: 'extra', Attributes: { VisibilityTimeout: '6' } }))),
    ).toMatchObject({ name: 'QueueNameExists' });
  });

  it('should check receive parameters and visibility timeouts (0–43200 s)', async () => {
    const { c, url } = await setup();
    for (const input of [{ MaxNumberOfMessages: 11 }, { MaxNumberOfMessages: 0 }, { WaitTimeSeconds: 21 }]) {
      expect(await failure(c.send(new ReceiveMessageCommand({ QueueUrl: url, ...input })))).toMatchObject({
        status: 400,
        code: 'InvalidParameterValue',
      });
    }
    await c.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x' }));
    const [m] = (await c.send(new ReceiveMessageCommand({ QueueUrl: url }))).Messages!;
    const change = (VisibilityTimeout: number, ReceiptHandle = m!.ReceiptHandle!) =>
      c.send(new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle, VisibilityTimeout }));
    expect(await failure(change(43_201))).toMatchObject({ code: 'InvalidParameterValue' });
    expect(await failure(change(10, 'not-a-handle'))).toMatchObject({ name: 'ReceiptHandleIsInvalid', status: 404 });
    // Visible again at once: received a second time, with a new count.
    await change(0);
    const again = await c.send(new ReceiveMessageCommand({ QueueUrl: url, MessageSystemAttributeNames: ['All'] }));
    expect(again.Messages?.[0]?.Attributes?.ApproximateReceiveCount).toBe('2');
    await c.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: again.Messages![0]!.ReceiptHandle! }));
    // Deleted: no longer in flight.
    expect(await failure(change(10, again.Messages![0]!.ReceiptHandle!))).toMatchObject({ name: 'MessageNotInflight' });
    expect(await failure(c.send(new DeleteMessageCommand({ QueueUrl: url, ReceiptHandle: 'garbage' })))).toMatchObject({
      name: 'ReceiptHandleIsInvalid',
    });
  });

  it('should wait for a message with long polling', async () => {
    const { c, url } = await setup();
    const polled = c.send(new ReceiveMessageCommand({ QueueUrl: url, WaitTimeSeconds: 5 }));
    await c.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'late' }));
    expect((await polled).Messages?.[0]?.Body).toBe('late');
  });

  it('should move a message to the dead-letter queue after maxReceiveCount receives', async () => {
    const { c, url, dlq } = await setup();
    await c.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'poison' }));
    for (let i = 0; i < 2; i++) {
      const [m] = (await c.send(new ReceiveMessageCommand({ QueueUrl: url }))).Messages!;
      await c.send(
        new ChangeMessageVisibilityCommand({ QueueUrl: url, ReceiptHandle: m!.ReceiptHandle!, VisibilityTimeout: 0 }),
      );
    }
    expect((await c.send(new ReceiveMessageCommand({ QueueUrl: url }))).Messages).toBeUndefined();
    const dead = await c.send(new ReceiveMessageCommand({ QueueUrl: dlq }));
    expect(dead.Messages?.[0]?.Body).toBe('poison');
    const batch = await c.send(
      new DeleteMessageBatchCommand({
        QueueUrl: dlq,
        Entries: [
          { Id: 'ok', ReceiptHandle: dead.Messages![0]!.ReceiptHandle! },
          { Id: 'bad', ReceiptHandle: 'garbage' },
        ],
      }),
    );
    expect(batch.Successful?.map((s) => s.Id)).toEqual(['ok']);
    expect(batch.Failed?.[0]).toMatchObject({ Id: 'bad', Code: 'ReceiptHandleIsInvalid' });
  });

  it('should require a SigV4 Authorization header and the AWS JSON protocol', async () => {
    await setup();
    const post = (headers: Record<string, string>) =>
      fetch(sqs!.url, { method: 'POST', headers, body: JSON.stringify({ QueueName: 'forward' }) });
    const json = { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'AmazonSQS.GetQueueUrl' };
    const unsigned = await post(json);
    expect(unsigned.status).toBe(403);
    expect(unsigned.headers.get('x-amzn-query-error')).toBe('MissingAuthenticationToken;Sender');
    const notSigV4 = await post({ ...json, authorization: 'Basic eDp5' });
    expect(notSigV4.status).toBe(400);
    const signed = { ...json, authorization: 'AWS4-HMAC-SHA256 Credential=x', 'x-amz-date': '20261203T000000Z' };
    expect((await post(signed)).status).toBe(200);
    expect((await post({ ...signed, 'x-amz-target': 'AmazonSQS.PurgeQueue' })).status).toBe(400);
    expect((await post({ ...signed, 'content-type': 'application/json' })).status).toBe(400);
  });
});
