/**
 * The forwarder's fan-out over real HTTP: `sqsFanOut` with @aws-sdk/client-sqs against the SQS stand-in, and the local
 * runner (cli/pipeline.ts) taking a partitioned window from the export through the forward queue to Platform.
 */
import type { SQSClient } from '@aws-sdk/client-sqs';
import { afterEach, describe, expect, it } from 'vitest';
import { wireHandlers } from '#cli/handlers';
import { checkInvariants } from '#cli/invariants';
import { runPipeline } from '#cli/pipeline';
import { RunReport } from '#cli/report';
import type { Log } from '#common/log';
import { type LocalStack, startLocalStack } from '#emulators/local-stack';
import { createExportDeps } from '#export/deps';
import { sqsFanOut } from '#forward/fan-out';
import { readMessage } from '#forward/sqs-event';
import type { PartitionMessage } from '#forward/window';
import { StagingLayout } from '#staging/layout';

const H = 3_600_000;
const quiet: Log = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const NOW = Date.parse('2026-11-20T12:10:00Z');
const EVENTS = 3000;

let stack: LocalStack | undefined;
let sqs: SQSClient | undefined;
afterEach(async () => {
  sqs?.destroy();
  await stack?.close();
  [stack, sqs] = [undefined, undefined];
});

const window = {
  projectId: '3141592',
  mode: 'processing-time',
  windowId: '20261120T100000Z_20261120T110000Z',
} as const;

describe('sqsFanOut against the SQS stand-in', () => {
  it('should queue one message per partition, in SendMessageBatch requests of at most ten', async () => {
    // Prepare
    stack = await startLocalStack();
    sqs = stack.sqsClient();
    const messages: PartitionMessage[] = Array.from({ length: 23 }, (_, partition) => ({
      window,
      runId: 'r1',
      partition,
    }));
    // Act
    await sqsFanOut(stack.forwardQueue.url, sqs)(messages);
    // Assess
    const sends = stack.sqs.requests.filter((r) => r.action === 'SendMessageBatch');
    expect(sends).toHaveLength(3);
    expect(sends.every((r) => r.status === 200)).toBe(true);
    const queued = stack.sqs.bodies('forward').map((b) => readMessage(b));
    expect(queued.map((q) => (q.kind === 'partition' ? q.message.partition : -1)).sort((a, b) => a - b)).toEqual(
      messages.map((m) => m.partition),
    );
  });

  it('should fail (the window message is redelivered) when the queue does not exist', async () => {
    stack = await startLocalStack();
    sqs = stack.sqsClient();
    const missing = `${stack.sqs.url}/000000000000/no-such-queue`;
    await expect(sqsFanOut(missing, sqs)([{ window, runId: 'r1', partition: 0 }])).rejects.toMatchObject({
      name: 'QueueDoesNotExist',
    });
  });
});

describe('local runner with the forward queue', () => {
  it('should forward a partitioned window through the queue: every event once, the queue drained', async () => {
    // Prepare: a project in steady state (its checkpoint knows the rate), small parts so the window is partitioned.
    stack = await startLocalStack({
      dataset: { seed: 11, count: EVENTS, start: NOW - 3 * H, end: NOW - 2 * H },
      keep: 'ids',
      now: () => NOW,
    });
    const s = stack;
    sqs = s.sqsClient();
    const state = createExportDeps(s.exportConfig, { s3: s.s3.client, log: quiet }).state;
    const mode = { committed: [], pending: [] };
    await state.write({ 'processing-time': { ...mode, eventsPerMinute: EVENTS / 60 }, 'event-time': mode });
    const results: Array<{ fannedOut?: number; partitions?: readonly number[]; accepted: number }> = [];
    const report = new RunReport(undefined);
    const { exportHandler, forwardHandler } = wireHandlers(s.exportConfig, s.forwardConfig, {
      s3: s.s3.client,
      log: quiet,
      report,
      now: () => NOW,
      mapExportDeps: (d) => ({ ...d, partMaxEvents: 500 }),
      fanOut: sqsFanOut(s.forwardQueue.url, sqs),
      onForwarded: (r) => results.push(r),
    });
    // Act
    const run = await runPipeline(
      { from: new Date(NOW - 3 * H).toISOString(), to: new Date(NOW - 2 * H).toISOString(), mode: 'processing-time' },
      exportHandler,
      forwardHandler!,
      s.bucket,
      { ...s.forwardQueue, sqs },
    );
    // Assess: the notification fanned out, each partition ran in an invocation of its own, nothing is left queued.
    expect(run.forwardFailures).toEqual([]);
    const partitions = results[0]?.fannedOut ?? 0;
    expect(partitions).toBeGreaterThan(1);
    expect(
      results
        .slice(1)
        .map((r) => r.partitions?.[0])
        .sort((a, b) => a! - b!),
    ).toEqual(Array.from({ length: partitions }, (_, k) => k));
    expect(s.sqs.counts('forward')).toEqual({ visible: 0, notVisible: 0 });
    expect(s.sqs.requests.filter((r) => r.action === 'DeleteMessage')).toHaveLength(partitions);
    const ids = s.aep.acceptedIds(s.datasetId);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids.length).toBe(results.reduce((n, r) => n + r.accepted, 0));
    // The run's summary adds the partitions' shares up to the window's.
    expect(report.rows).toHaveLength(1);
    expect(report.totals().accepted).toBe(ids.length);
    expect(report.rows[0]!.forward?.complete).toBe(true);
    const invariants = await checkInvariants({
      s3: s.s3.client,
      bucket: s.bucket,
      layout: new StagingLayout(''),
      projectId: s.exportConfig.mixpanel!.projectId,
      acceptedIds: s.aep.acceptedIds(),
      requireForwarded: true,
    });
    expect(invariants.ok).toBe(true);
  });
});
