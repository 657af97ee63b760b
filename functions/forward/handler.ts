/**
 * Forward Lambda: SQS messages carrying S3 notifications of committed manifests (or the partition messages of a
 * fanned-out window) → XDM records sent to Platform.
 * Thin by design: parse each message, forward its window or partition, and answer SQS with the messages to redeliver.
 * Invoked with `{"action":"verify"}` (the stack's verify schedule), it runs a round of the verifier instead: Platform's
 * verdict on the runs it forwarded earlier (functions/verify).
 * `createForwardHandler` lets the CLI and tests run this same code with their own clients.
 */
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { readConfig } from '#common/config';
import type { Metrics } from '@aws-lambda-powertools/metrics';
import { platformConfigurationFault } from '#aep/errors';
import { errorKind } from '#common/errors';
import { type ForwardBaseDeps, createForwardDeps } from '#forward/deps';
import { LeaseHeldError } from '#forward/lease';
import { type ForwardOptions, ManifestMissingError, type WindowForwardResult, forwardWindow } from '#forward/window';
import { type MessageIntent, readMessage } from '#forward/sqs-event';
import type { WindowRef } from '#staging/layout';
import { MetricUnit, createMetrics } from '#common/metrics';
import { type VerifySummary, runVerifyRound } from './verify-round.ts';

/** Stop sending this long before the Lambda deadline, so receipts are written and the reply reaches SQS. */
export const DEADLINE_SAFETY_MS = 30_000;

/** The event of the verify schedule. */
export interface VerifyEvent {
  readonly action: 'verify';
}

const isVerifyEvent = (event: unknown): event is VerifyEvent =>
  typeof event === 'object' && event !== null && (event as { action?: unknown }).action === 'verify';

/** What the handler needs of the Powertools metrics publisher. */
export type ForwardMetrics = Pick<Metrics, 'addDimension' | 'addMetric' | 'publishStoredMetrics'>;

/**
 * The forward Lambda's handler around its dependencies; `metrics` replaces the EMF publisher (tests).
 * Metrics: `RecordsAccepted`, `RecordsRejected` per forwarded window, `PlatformConfigurationFaults` per window that
 * Platform refused for a configuration reason (Count, dimension ProjectId).
 */
export function createForwardHandler(
  getDeps: () => Promise<ForwardBaseDeps>,
  onWindow?: (r: WindowForwardResult) => void,
  o: { metrics?: ForwardMetrics } = {},
) {
  const metrics = o.metrics ?? createMetrics();
  async function handle(
    event: SQSEvent,
    context?: Pick<Context, 'getRemainingTimeInMillis'>,
  ): Promise<SQSBatchResponse>;
  async function handle(
    event: VerifyEvent,
    context?: Pick<Context, 'getRemainingTimeInMillis'>,
  ): Promise<VerifySummary>;
  async function handle(
    event: SQSEvent | VerifyEvent,
    context?: Pick<Context, 'getRemainingTimeInMillis'>,
  ): Promise<SQSBatchResponse | VerifySummary> {
    const d = await getDeps();
    const deadlineMs = context ? d.now() + context.getRemainingTimeInMillis() - DEADLINE_SAFETY_MS : undefined;
    if (isVerifyEvent(event)) return runVerifyRound(d, metrics, deadlineMs);
    const failures: SQSBatchResponse['batchItemFailures'] = [];
    for (const record of event.Records ?? []) {
      const intent = readMessage(record.body);
      if (intent.kind === 'test-event') continue;
      if (intent.kind === 'malformed') {
        // Reported, and left to SQS: after maxReceiveCount it lands in the DLQ for an operator to look at.
        d.log.error('malformed forward message', { messageId: record.messageId, reason: intent.reason });
        failures.push({ itemIdentifier: record.messageId });
        continue;
      }
      let projectId: string | undefined;
      try {
        for (const { ref, opts } of windowsOf(intent, d)) {
          projectId = ref.projectId;
          if (deadlineMs !== undefined && d.now() >= deadlineMs) throw new Error('no time left in this invocation');
          const result = await forwardWindow(ref, { ...d, ...(deadlineMs !== undefined ? { deadlineMs } : {}) }, opts);
          onWindow?.(result);
          metrics.addDimension('ProjectId', ref.projectId);
          metrics.addMetric('RecordsAccepted', MetricUnit.Count, result.accepted);
          metrics.addMetric('RecordsRejected', MetricUnit.Count, result.rejected);
          metrics.publishStoredMetrics();
          if (!result.complete)
            throw new Error(`window ${ref.windowId} stopped before the deadline; it resumes on redelivery`);
        }
      } catch (error) {
        if (error instanceof ManifestMissingError) {
          d.log.warn('manifest gone; nothing to forward', { messageId: record.messageId, reason: error.message });
          continue;
        }
        if (error instanceof LeaseHeldError) {
          // Not a failure of this message: it is retried after the visibility timeout and finds the work done.
          d.log.warn('window busy; the message will be redelivered', {
            messageId: record.messageId,
            reason: error.message,
          });
          failures.push({ itemIdentifier: record.messageId });
          continue;
        }
        const fault = platformConfigurationFault(error);
        if (fault !== undefined) {
          // Nothing was rejected: the window is redelivered (then dead-lettered) until the setting is fixed.
          if (projectId !== undefined) metrics.addDimension('ProjectId', projectId);
          metrics.addMetric('PlatformConfigurationFaults', MetricUnit.Count, 1);
          metrics.publishStoredMetrics();
          d.log.error('Platform refused the configuration; the window is not forwarded and will be redelivered', {
            messageId: record.messageId,
            kind: fault.kind,
            fault: fault.fault,
            error: error as Error,
          });
          failures.push({ itemIdentifier: record.messageId });
          continue;
        }
        // The kind tells the operator whether redelivery can cure it or the message is bound for the DLQ.
        const kind = errorKind(error);
        d.log.error('forward failed; the message will be redelivered', {
          messageId: record.messageId,
          kind,
          error: error as Error,
        });
        failures.push({ itemIdentifier: record.messageId });
      }
    }
    return { batchItemFailures: failures };
  }
  return handle;
}

/** The windows (or window partitions) a message asks to forward. */
function* windowsOf(
  intent: Extract<MessageIntent, { kind: 'manifests' | 'partition' }>,
  d: ForwardBaseDeps,
): Generator<{ ref: WindowRef; opts: ForwardOptions }> {
  if (intent.kind === 'partition') {
    const { window, runId, partition } = intent.message;
    yield { ref: window, opts: { partition, runId } };
    return;
  }
  for (const object of intent.objects) {
    const ref = object.bucket === d.bucket ? d.layout.parseManifestKey(object.key) : undefined;
    if (ref === undefined)
      throw new Error(
        `s3://${object.bucket}/${object.key} is not a manifest of this connector's staging (bucket ${d.bucket})`,
      );
    yield { ref, opts: {} };
  }
}

let deps: Promise<ForwardBaseDeps> | undefined;
export const handler = createForwardHandler(() => {
  deps ??= createForwardDeps(readConfig(process.env, 'forward')).catch((error: unknown) => {
    deps = undefined;
    throw error;
  });
  return deps;
});
