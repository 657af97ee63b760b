/**
 * One standard queue of the SQS stand-in: messages, their visibility, receive counts and the redrive to a dead-letter
 * queue. The rules follow the Amazon SQS Developer Guide (visibility timeout, dead-letter queues) and the API reference
 * pages of each action; each is cited where it is enforced.
 */
import { createHash, randomUUID } from 'node:crypto';

/** A message as the queue holds it. */
export interface StoredMessage {
  readonly messageId: string;
  readonly body: string;
  readonly md5OfBody: string;
  readonly messageAttributes?: Record<string, unknown>;
  readonly md5OfMessageAttributes?: string;
  readonly sentAt: number;
  receiveCount: number;
  firstReceiveAt?: number;
  /** Epoch ms from which it can be received again (0: visible). */
  visibleAt: number;
  /** The handle of its latest receive; only that one changes its visibility (ChangeMessageVisibility). */
  receiptHandle?: string;
}

/** A queue's redrive policy: after `maxReceiveCount` receives a message moves to the queue named by the ARN. */
export interface RedrivePolicy {
  readonly deadLetterTargetArn: string;
  readonly maxReceiveCount: number;
}

export interface QueueSettings {
  /** Seconds; 0–43200, default 30 (API_CreateQueue.html, VisibilityTimeout). */
  visibilityTimeout: number;
  /** Seconds; 0–20, default 0 (API_CreateQueue.html, ReceiveMessageWaitTimeSeconds). */
  receiveMessageWaitTimeSeconds: number;
  redrivePolicy?: RedrivePolicy;
}

export const md5 = (text: string): string => createHash('md5').update(text, 'utf8').digest('hex');

export class Queue {
  readonly name: string;
  readonly arn: string;
  readonly url: string;
  readonly settings: QueueSettings;
  readonly createdAt: number;
  readonly #messages: StoredMessage[] = [];

  constructor(name: string, arn: string, url: string, settings: QueueSettings, now: number) {
    this.name = name;
    this.arn = arn;
    this.url = url;
    this.settings = settings;
    this.createdAt = now;
  }

  add(m: Omit<StoredMessage, 'receiveCount' | 'visibleAt' | 'messageId'> & { messageId?: string }): StoredMessage {
    const stored: StoredMessage = { ...m, messageId: m.messageId ?? randomUUID(), receiveCount: 0, visibleAt: 0 };
    this.#messages.push(stored);
    return stored;
  }

  /** Messages that can be received now. */
  visible(now: number): StoredMessage[] {
    return this.#messages.filter((m) => m.visibleAt <= now);
  }

  /** Marks `m` received: in flight for `visibilityTimeout` seconds under a new receipt handle. */
  receive(m: StoredMessage, now: number, visibilityTimeout: number): string {
    m.receiveCount += 1;
    m.firstReceiveAt ??= now;
    m.visibleAt = now + visibilityTimeout * 1000;
    m.receiptHandle = Buffer.from(`${this.name}\n${m.messageId}\n${randomUUID()}`).toString('base64url');
    return m.receiptHandle;
  }

  /**
   * The message a receipt handle of this queue names: `undefined` when the handle is not one this queue issued
   * (ReceiptHandleIsInvalid), `null` when it is but the message is gone (deleted, or moved to the dead-letter queue).
   */
  byHandle(handle: string): StoredMessage | null | undefined {
    const [queue, messageId, nonce] = Buffer.from(handle, 'base64url').toString('utf8').split('\n');
    if (queue !== this.name || messageId === undefined || nonce === undefined) return undefined;
    return this.#messages.find((m) => m.messageId === messageId) ?? null;
  }

  /** Removes `m` (deleted, or moved to the dead-letter queue). */
  remove(m: StoredMessage): void {
    const i = this.#messages.indexOf(m);
    if (i >= 0) this.#messages.splice(i, 1);
  }

  counts(now: number): { visible: number; notVisible: number } {
    const visible = this.#messages.filter((m) => m.visibleAt <= now).length;
    return { visible, notVisible: this.#messages.length - visible };
  }

  /** Every message body held, visible or not (tests). */
  bodies(): string[] {
    return this.#messages.map((m) => m.body);
  }
}
