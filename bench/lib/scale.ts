/**
 * The benchmark's `scale` section: one large window (10 M events by default) through export and forward with fan-out,
 * every function invocation a fresh bundled process on plain Node with the deployed environment:
 * 1. one export invocation stages the window in partitions (the checkpoint knows the project's rate);
 * 2. one forward invocation for the manifest notification fans the window out to the forward queue — the SQS
 *    stand-in, in a process of its own — through the product's SQS client;
 * 3. the bench acts as the event source mapping (batch size 1, reportBatchItemFailures): it receives the partition
 *    messages and runs each in a forward invocation of its own, N at a time, deleting a message once its invocation
 *    reports no failure.
 * Then Platform's side: the AEP emulator (ids only) must hold every distinct event once. Nothing here holds events.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { DeleteMessageCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import type { SQSEvent } from 'aws-lambda';
import { type ForwardQueue, receiveOne, sqsEventFor, sqsEventOf } from '#cli/pipeline';
import { sqsQueueUrl } from '#emulators/sqs/server';
import { bundleWorker } from './bundle.ts';
import { runWorker, startService } from './proc.ts';
import type { BenchStack } from './stack.ts';

export interface ScaleOptions {
  readonly stack: BenchStack;
  readonly projectId: string;
  readonly from: number;
  readonly to: number;
  /** Distinct events of the project's dataset (Mixpanel's duplicates come on top). */
  readonly events: number;
  /** Forward invocations at a time (the event source mapping's maximum concurrency). */
  readonly concurrency: number;
  readonly log: (line: string) => void;
}

interface Invocation {
  readonly ms: number;
  readonly cpuMs: number;
  readonly maxRssMb: number;
}
interface ExportInvocation extends Invocation {
  readonly events: number;
  readonly quarantined: number;
  readonly manifestKeys: string[];
}
interface ForwardInvocation extends Invocation {
  readonly failures: string[];
  readonly results: Array<{
    fannedOut?: number;
    partitions?: number[];
    events: number;
    accepted: number;
    rejected: number;
    byReason: Record<string, number>;
    complete: boolean;
  }>;
}

/** The forward queue as the stack configures it (lib/constructs/forwarder.ts): 6 × 10 min visibility, DLQ after 5. */
const QUEUE = { name: 'forward', dlq: 'forward-dlq', visibilityTimeout: 3600, maxReceiveCount: 5 } as const;
const QUEUE_ARN = `arn:aws:sqs:us-east-1:000000000000:${QUEUE.name}`;
const CREDENTIALS = { accessKeyId: 'BENCH', secretAccessKey: 'BENCH' };

const round = (x: number, digits = 0): number => Math.round(x * 10 ** digits) / 10 ** digits;

export async function runScale(o: ScaleOptions): Promise<{ result: Record<string, unknown>; table: string[] }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'mixpanel-aep-bench-scale-'));
  const sqsConfig = path.join(dir, 'sqs.json');
  await writeFile(
    sqsConfig,
    JSON.stringify({
      queues: [
        { name: QUEUE.dlq },
        {
          name: QUEUE.name,
          visibilityTimeout: QUEUE.visibilityTimeout,
          redrive: { deadLetterQueue: QUEUE.dlq, maxReceiveCount: QUEUE.maxReceiveCount },
        },
      ],
    }),
  );
  const sqsService = await startService<{ url: string }>('SQS emulator', 'emulators/sqs/main.ts', [
    '--config',
    sqsConfig,
  ]);
  const sqs = new SQSClient({ endpoint: sqsService.info.url, region: 'us-east-1', credentials: CREDENTIALS });
  try {
    const worker = await bundleWorker('bench/workers/scale-invocation.ts', dir);
    const queue: ForwardQueue = { url: sqsQueueUrl(sqsService.info.url, QUEUE.name), arn: QUEUE_ARN, sqs };
    const env = {
      ...o.stack.env(o.projectId),
      STAGING_PREFIX: `bench-${Date.now()}-scale/`,
      // One window of the whole range, however many events it holds (the setting's ceiling is 10 M).
      MAX_EVENTS_PER_EXPORT: String(Math.min(10_000_000, Math.max(10_000, o.events))),
      BENCH_EVENTS_PER_MINUTE: String(Math.floor((o.events * 60_000) / (o.to - o.from)) - 1),
      FORWARD_QUEUE_URL: queue.url,
      AWS_ENDPOINT_URL_SQS: sqsService.info.url,
      AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
    };
    const invoke = <T>(args: string[]) => runWorker<T>(worker, args, { plain: true, env });
    const forward = async (event: SQSEvent): Promise<ForwardInvocation> => {
      const r = await invoke<ForwardInvocation>(['forward', JSON.stringify(event)]);
      if (r.failures.length > 0 || r.results.some((x) => !x.complete))
        throw new Error(`a forward invocation failed: ${JSON.stringify(r)}`);
      return r;
    };

    // The AEP emulator is shared with the other sections: the scale run's records are what it gains from here on.
    const before = await o.stack.aepState();
    o.log(`scale: export of ${o.events.toLocaleString('en-US')} events (one invocation)`);
    const exported = await invoke<ExportInvocation>([
      'export',
      new Date(o.from).toISOString(),
      new Date(o.to).toISOString(),
    ]);
    if (exported.manifestKeys.length !== 1)
      throw new Error(`the export committed ${exported.manifestKeys.length} windows, not one`);

    o.log('scale: forward invocation for the manifest notification (fan-out to the SQS stand-in)');
    const started = performance.now();
    const notification = await forward(sqsEventFor(o.stack.bucket, exported.manifestKeys[0]!));
    const fannedOut = notification.results[0]?.fannedOut ?? 0;
    if (fannedOut < 2) throw new Error(`the window was not fanned out (${JSON.stringify(notification.results)})`);

    o.log(`scale: ${fannedOut} partition messages, ${o.concurrency} forward invocations at a time`);
    const partitions = await drainConcurrently(queue, fannedOut, o.concurrency, forward);
    const wallMs = performance.now() - started;
    const left = await queueCounts(queue);

    const shares = partitions.flatMap((p) => p.results);
    const accepted = shares.reduce((n, r) => n + r.accepted, 0);
    const rejected = shares.reduce((n, r) => n + r.rejected, 0);
    // A partition's `events` is the window's staged count; its own share is what it accepted or rejected.
    const forwarded = accepted + rejected;
    const duplicates = shares.reduce((n, r) => n + (r.byReason.duplicate ?? 0), 0);
    const forwarderCpuMs = partitions.reduce((n, p) => n + p.cpuMs, 0) + notification.cpuMs;
    const rss = partitions.map((p) => round(p.maxRssMb, 1));
    const after = await o.stack.aepState();
    const held = {
      accepted: after.acceptedTotal - before.acceptedTotal,
      doubled: after.duplicatesTotal - before.duplicatesTotal,
    };
    // Every distinct staged event once at Platform: staged − Mixpanel's duplicates (rejected as `duplicate`, with any
    // record refused for another reason) = what Platform gained, and no `_id` held twice.
    const idsOnce = held.doubled === 0 && held.accepted === accepted && held.accepted === exported.events - rejected;
    const result = {
      events: exported.events,
      distinctGenerated: o.events,
      partitions: fannedOut,
      concurrency: o.concurrency,
      export: {
        seconds: round(exported.ms / 1000, 1),
        eventsPerSec: round((exported.events * 1000) / exported.ms),
        peakRssMb: round(exported.maxRssMb, 1),
        cpuMsPer1k: round(exported.cpuMs / (exported.events / 1000), 1),
      },
      forward: {
        // From the notification's invocation to the last partition's: what a window takes to reach Platform.
        wallSeconds: round(wallMs / 1000, 1),
        eventsPerSec: round((forwarded * 1000) / wallMs),
        notificationSeconds: round(notification.ms / 1000, 2),
        notificationPeakRssMb: round(notification.maxRssMb, 1),
        cpuMsPer1k: round(forwarderCpuMs / (forwarded / 1000), 1),
        peakRssMbPerPartition: rss,
      },
      peakRssMaxMb: round(Math.max(exported.maxRssMb, notification.maxRssMb, ...rss), 1),
      platform: {
        accepted: held.accepted,
        doubled: held.doubled,
        rejected,
        mixpanelDuplicates: duplicates,
        idsOnce,
      },
      queueLeft: left,
    };
    const table = [
      `scale   ${exported.events.toLocaleString('en-US')} events: export ${result.export.seconds} s ` +
        `(${result.export.eventsPerSec.toLocaleString('en-US')} events/s, peak RSS ${result.export.peakRssMb} MB); ` +
        `${fannedOut} partitions`,
      `        forward ${result.forward.wallSeconds} s wall with ${o.concurrency} invocations: ` +
        `${result.forward.eventsPerSec.toLocaleString('en-US')} events/s, CPU ${result.forward.cpuMsPer1k} ms per 1,000; ` +
        `peak RSS max ${Math.max(...rss)} MB (per partition ${rss.join(', ')})`,
      `        Platform holds ${held.accepted.toLocaleString('en-US')} records, ${held.doubled} doubled ` +
        `(staged ${exported.events.toLocaleString('en-US')} − ${duplicates.toLocaleString('en-US')} Mixpanel ` +
        `duplicates): ${idsOnce ? 'every event once' : 'MISMATCH'}`,
    ];
    return { result, table };
  } finally {
    sqs.destroy();
    await sqsService.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * The event source mapping: `concurrency` pollers, each receiving one message (long polling), running it in a forward
 * invocation and deleting it on success, until `expected` messages were handled.
 */
async function drainConcurrently(
  queue: ForwardQueue,
  expected: number,
  concurrency: number,
  forward: (event: SQSEvent) => Promise<ForwardInvocation>,
): Promise<ForwardInvocation[]> {
  const done: ForwardInvocation[] = [];
  let claimed = 0;
  const poller = async (): Promise<void> => {
    while (claimed < expected) {
      const m = await receiveOne(queue, 1);
      if (m === undefined) continue;
      claimed++;
      done.push(await forward(sqsEventOf(m, queue.arn)));
      await queue.sqs.send(new DeleteMessageCommand({ QueueUrl: queue.url, ReceiptHandle: m.ReceiptHandle }));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, poller));
  return done;
}

async function queueCounts(queue: ForwardQueue): Promise<{ visible: number; notVisible: number }> {
  const out = await queue.sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: queue.url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return {
    visible: Number(out.Attributes?.ApproximateNumberOfMessages ?? Number.NaN),
    notVisible: Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible ?? Number.NaN),
  };
}
