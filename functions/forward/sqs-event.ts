/**
 * Reads the forward Lambda's trigger: SQS messages whose body is an S3 event notification for a `manifest.json`
 * ObjectCreated, or the forwarder's own message for one partition of a run (the fan-out)
 * (docs/architecture.md#trigger-and-answer). Keys arrive URL-encoded with `+` for spaces
 * (AWS S3 docs, "Event message structure"). S3 sends one `s3:TestEvent` when the notification is configured.
 */
import * as z from 'zod';
import type { PartitionMessage } from './window.ts';

export type MessageIntent =
  | { readonly kind: 'manifests'; readonly objects: ReadonlyArray<{ readonly bucket: string; readonly key: string }> }
  | { readonly kind: 'partition'; readonly message: PartitionMessage }
  | { readonly kind: 'test-event' }
  | { readonly kind: 'malformed'; readonly reason: string };

const S3Record = z.object({
  eventName: z.string(),
  s3: z.object({ bucket: z.object({ name: z.string() }), object: z.object({ key: z.string() }) }),
});
const Notification = z.object({ Records: z.array(S3Record).min(1) });
const TestEvent = z.object({ Event: z.literal('s3:TestEvent') }).loose();
/** The forwarder's own message for one partition of a run (forward/window.ts `PartitionMessage`). */
const Partition = z
  .object({
    window: z.object({
      projectId: z.string().min(1),
      mode: z.enum(['processing-time', 'event-time']),
      windowId: z.string().min(1),
    }),
    runId: z.string().min(1),
    partition: z.number().int().nonnegative(),
  })
  .strict();

/** The body of a partition message (what the fan-out sends and {@link readMessage} reads back). */
export function partitionMessageBody(m: PartitionMessage): string {
  return JSON.stringify({ window: m.window, runId: m.runId, partition: m.partition });
}

export const SqsEventSchema = z.object({
  Records: z.array(z.object({ messageId: z.string(), body: z.string() }).loose()),
});

/** S3 notification keys are URL-encoded form values: `+` is a space. */
export function decodeS3Key(key: string): string {
  return decodeURIComponent(key.replace(/\+/g, ' '));
}

export function readMessage(body: string): MessageIntent {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { kind: 'malformed', reason: 'the message body is not JSON (expected an S3 event notification)' };
  }
  if (TestEvent.safeParse(json).success) return { kind: 'test-event' };
  if (typeof json === 'object' && json !== null && 'partition' in json) {
    const m = Partition.safeParse(json);
    if (!m.success)
      return {
        kind: 'malformed',
        reason: 'the partition message needs window {projectId, mode, windowId}, runId and partition',
      };
    return { kind: 'partition', message: m.data };
  }
  const parsed = Notification.safeParse(json);
  if (!parsed.success)
    return {
      kind: 'malformed',
      reason: 'the message body is not an S3 event notification with Records[].s3.object.key',
    };
  const objects: { bucket: string; key: string }[] = [];
  for (const r of parsed.data.Records) {
    if (!r.eventName.startsWith('ObjectCreated')) continue;
    let key: string;
    try {
      key = decodeS3Key(r.s3.object.key);
    } catch {
      return { kind: 'malformed', reason: `object key ${JSON.stringify(r.s3.object.key)} is not URL-encoded text` };
    }
    if (!key.endsWith('/manifest.json')) continue;
    objects.push({ bucket: r.s3.bucket.name, key });
  }
  if (objects.length === 0)
    return {
      kind: 'malformed',
      reason: 'the notification names no manifest.json ObjectCreated event (check the bucket notification filter)',
    };
  return { kind: 'manifests', objects };
}
