/**
 * The rig of the reliability suite: the whole pipeline on loopback (Mixpanel emulator → export handler → S3 fault
 * proxy → s3rver → forward handler → AEP emulator), one simulated clock shared by the emulators and both handlers,
 * a simulated SQS queue fed by the manifest PUTs the proxy saw (what the bucket notification does), Lambda contexts,
 * every log line captured, and the invariants of docs/architecture.md ("Invariants") checked by `assertInvariants`
 * after each scenario.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { expect } from 'vitest';
import { type InvariantReport, checkInvariants } from '#cli/invariants';
import { sqsEventFor } from '#cli/pipeline';
import { type LocalStack, type LocalStackOptions, startLocalStack } from '#emulators/local-stack';
import { type S3FaultProxy, startS3FaultProxy } from '#emulators/s3-faults';
import { type SecretsManagerFake, startSecretsManagerFake } from '#emulators/secrets-manager';
import { type Config, readConfig } from '#common/config';
import { type ExportBaseDeps, createExportDeps } from '#export/deps';
import type { ExportResult } from '#export/run';
import { type ForwardBaseDeps, createForwardDeps } from '#forward/deps';
import type { PartitionMessage, WindowForwardResult } from '#forward/window';
import { partitionMessageBody } from '#forward/sqs-event';
import type { Log } from '#common/log';
import { StagingLayout } from '#staging/layout';
import { createS3Client, exists } from '#staging/s3';
import { createExportHandler } from '#export/handler';
import { type ForwardMetrics, createForwardHandler } from '#forward/handler';
import type { VerifySummary } from '#forward/verify-round';

export const H = 3_600_000;
export const MIN = 60_000;
/** A fixed "now" two days before the real clock: DCS refuses timestamps in the future of its own clock. */
export const NOW = Date.parse('2026-11-20T12:10:00Z');
export const DATA_START = NOW - 6 * H;
/** The scheduled run at NOW exports this window (60-minute windows, 30 minutes to settle). */
export const LAST_WINDOW = { from: NOW - 130 * MIN, to: NOW - 70 * MIN } as const;
export const PROJECT_ID = '3141592';
/** Lambda timeouts of the stack (lib/constructs/connector-function.ts) and the SQS visibility timeout (6 × forward). */
export const EXPORT_TIMEOUT_MS = 15 * MIN;
export const FORWARD_TIMEOUT_MS = 10 * MIN;
export const VISIBILITY_TIMEOUT_MS = 6 * FORWARD_TIMEOUT_MS;
/** lib/constructs/forwarder.ts MAX_RECEIVE_COUNT */
export const MAX_RECEIVES = 5;

export interface LogEntry {
  readonly level: 'debug' | 'info' | 'warn' | 'error';
  readonly message: string;
  readonly fields: unknown[];
}

export type ExportHandler = (
  event: unknown,
  context?: Pick<Context, 'getRemainingTimeInMillis'>,
) => Promise<ExportResult>;
export type ForwardHandler = (
  event: SQSEvent,
  context?: Pick<Context, 'getRemainingTimeInMillis'>,
) => Promise<SQSBatchResponse>;

export interface RigOptions {
  readonly events?: number;
  readonly sink?: 'streaming' | 'batch';
  readonly env?: Record<string, string>;
  readonly mapping?: string;
  readonly stack?: Partial<LocalStackOptions>;
  /** Read the credentials from a Secrets Manager stand-in by id, as deployed Lambdas do (not from the environment). */
  readonly secretIds?: boolean;
  /** Overrides of the export dependencies (part size, spill files). */
  readonly export?: Partial<Pick<ExportBaseDeps, 'partMaxEvents' | 'spill'>>;
  /** Overrides of the forward dependencies (chunk size, part concurrency). */
  readonly forward?: Partial<Pick<ForwardBaseDeps, 'chunkRecords' | 'partConcurrency'>>;
  /** The forwarder sends a partitioned window's partition messages to the rig's queue (the stack's fan-out). */
  readonly fanOut?: boolean;
}

export interface SqsMessage {
  readonly id: string;
  /** The manifest of an S3 notification ('' for a partition message). */
  readonly key: string;
  /** A partition message's body (the fan-out's), instead of a notification. */
  readonly body?: string;
  receives: number;
}

export interface Rig {
  readonly stack: LocalStack;
  readonly proxy: S3FaultProxy;
  readonly secretsManager?: SecretsManagerFake;
  /** The product's S3 client, through the fault proxy. */
  readonly s3: S3Client;
  /** A client straight to s3rver, for the test's own reads (never faulted). */
  readonly direct: S3Client;
  readonly bucket: string;
  readonly layout: StagingLayout;
  now(): number;
  advance(ms: number): void;
  /** Every wait the product asked for (retry backoffs), in ms of the simulated clock. */
  readonly slept: number[];
  readonly logs: LogEntry[];
  /** Every bearer token the forwarder sent (to look for it where it must not be). */
  readonly tokens: Set<string>;
  /** Called (and awaited) before each HTTP request of the forwarder (IMS, DCS, batch): scenarios change the world here. */
  readonly beforeFetch: Array<(url: string) => void | Promise<void>>;
  /** Forward results the handler reported (its `onWindow`). */
  readonly forwarded: WindowForwardResult[];
  /** Every metric the forward handler emitted, with the dimensions it had then. */
  readonly metrics: MetricRecord[];
  readonly exportDeps: ExportBaseDeps;
  readonly forwardDeps: ForwardBaseDeps;
  /** A fresh container's handlers (new dependencies, as after a crash or a cold start). */
  exportHandler: ExportHandler;
  forwardHandler: ForwardHandler;
  coldStart(): Promise<void>;
  /** Changes the forwarder's environment (an operator fixing a setting) and cold-starts the handlers. */
  reconfigure(env: Record<string, string | undefined>): Promise<void>;
  /** A Lambda context whose deadline is `timeoutMs` of simulated time after now. */
  context(timeoutMs: number): Pick<Context, 'getRemainingTimeInMillis'>;
  /**
   * The verify schedule firing after Platform has finished: the clock moves past the verifier's settle time, the AEP
   * emulator closes its streaming slices and promotes its batches, and a verify round runs.
   */
  verify(opts?: { settle?: boolean; advanceMs?: number }): Promise<VerifySummary>;
  /** SQS: messages for every manifest PUT not queued yet. */
  readonly queue: SqsMessage[];
  readonly deadLetters: SqsMessage[];
  notify(): void;
  /** Runs the queue like the event source mapping (batch size 1, `concurrency` invocations at a time) until empty. */
  drainQueue(opts?: { concurrency?: number; timeoutMs?: number }): Promise<{ invocations: number; failures: number }>;
  invariants(opts?: { requireForwarded?: boolean; requireVerified?: boolean }): Promise<InvariantReport>;
  close(): Promise<void>;
}

export interface MetricRecord {
  readonly name: string;
  readonly value: number;
  readonly dimensions: Record<string, string>;
}

let messageSeq = 0;
/** The verifier's settle time in the rig (AEP_VERIFY_SETTLE_MINUTES). */
export const VERIFY_SETTLE_MS = 60 * MIN;

/** Starts the rig; close it in afterEach. */
export async function startRig(o: RigOptions = {}): Promise<Rig> {
  let clock = NOW;
  let verifyHandler: () => Promise<VerifySummary> = () => Promise.reject(new Error('no forward handler yet'));
  const now = (): number => clock;
  const stack = await startLocalStack({
    dataset: { seed: 7, count: o.events ?? 1500, start: DATA_START, end: NOW - 30 * MIN },
    ...(o.sink ? { sink: o.sink } : {}),
    ...(o.mapping ? { mapping: o.mapping } : {}),
    now,
    env: { SETTLE_MINUTES: '30', ...o.env },
    ...o.stack,
  });
  const proxy = await startS3FaultProxy(stack.s3.endpoint);
  let exportConfig: Config = stack.exportConfig;
  let forwardConfig: Config = stack.forwardConfig;
  let secretsManager: SecretsManagerFake | undefined;
  let sm: SecretsManagerClient | undefined;
  if (o.secretIds === true) {
    const { MIXPANEL_USERNAME, MIXPANEL_SECRET, AEP_CLIENT_ID, AEP_CLIENT_SECRET, AEP_ORG_ID, ...env } = stack.env;
    secretsManager = await startSecretsManagerFake({
      'mixpanel/service-account': JSON.stringify({ username: MIXPANEL_USERNAME, secret: MIXPANEL_SECRET }),
      'aep/oauth': JSON.stringify({ clientId: AEP_CLIENT_ID, clientSecret: AEP_CLIENT_SECRET, orgId: AEP_ORG_ID }),
    });
    const deployed = {
      ...env,
      MIXPANEL_SECRET_ID: 'mixpanel/service-account',
      AEP_SECRET_ID: 'aep/oauth',
      AWS_LAMBDA_FUNCTION_NAME: 'reliability',
    };
    exportConfig = readConfig(deployed, 'export');
    forwardConfig = readConfig(deployed, 'forward');
    sm = new SecretsManagerClient({
      endpoint: secretsManager.url,
      region: 'us-east-1',
      credentials: { accessKeyId: 'x', secretAccessKey: 'y' },
    });
  }
  const s3 = createS3Client(
    {},
    { endpoint: proxy.url, region: 'us-east-1', credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } },
  );
  const slept: number[] = [];
  const sleep = async (ms: number): Promise<void> => {
    slept.push(ms);
    clock += ms;
  };
  const logs: LogEntry[] = [];
  const record =
    (level: LogEntry['level']) =>
    (message: unknown, ...fields: unknown[]): void =>
      void logs.push({ level, message: String(message), fields });
  const log = {
    debug: record('debug'),
    info: record('info'),
    warn: record('warn'),
    error: record('error'),
  } as unknown as Log;
  const tokens = new Set<string>();
  const beforeFetch: Array<(url: string) => void | Promise<void>> = [];
  // The forwarder's fetch: a dead process sends nothing; tokens are noted for the secrets scenario.
  const fetchThroughCrash: typeof fetch = async (input, init) => {
    for (const hook of beforeFetch) await hook(String(input instanceof Request ? input.url : input));
    if (proxy.crashed) throw new TypeError('fetch failed', { cause: new Error('the process crashed') });
    const auth = new Headers(init?.headers).get('authorization');
    if (auth?.startsWith('Bearer ')) tokens.add(auth.slice(7));
    return globalThis.fetch(input, init);
  };
  const forwarded: WindowForwardResult[] = [];
  const metrics: MetricRecord[] = [];
  let dimensions: Record<string, string> = {};
  // The handler's EMF publisher, recorded instead of printed.
  const metricsSink = {
    addDimension: (name: string, value: string) => void (dimensions[name] = value),
    addMetric: (name: string, _unit: unknown, value: number) =>
      void metrics.push({ name, value, dimensions: { ...dimensions } }),
    publishStoredMetrics: () => void (dimensions = {}),
  } as unknown as ForwardMetrics;
  const queue: SqsMessage[] = [];
  const deadLetters: SqsMessage[] = [];
  let seenRequests = 0;

  // The deadline is polled every 10 ms of real time: scenarios run simulated Lambda time faster than the clock.
  const secrets = sm !== undefined ? { secretsManager: sm } : {};
  const makeExportDeps = (): ExportBaseDeps => ({
    ...createExportDeps(exportConfig, { s3, now, sleep, log, ...secrets }),
    deadlinePollMs: 10,
    ...o.export,
  });
  // The fan-out's sender: SendMessageBatch onto the rig's queue.
  const fanOut = async (messages: readonly PartitionMessage[]): Promise<void> => {
    for (const m of messages)
      queue.push({ id: `p-${++messageSeq}`, key: '', body: partitionMessageBody(m), receives: 0 });
  };
  const makeForwardDeps = async (): Promise<ForwardBaseDeps> => ({
    ...(await createForwardDeps(forwardConfig, {
      s3,
      now,
      sleep,
      log,
      fetch: fetchThroughCrash,
      ...secrets,
      ...(o.fanOut === true ? { fanOut } : {}),
    })),
    ...o.forward,
  });

  const rig: Rig = {
    stack,
    proxy,
    ...(secretsManager !== undefined ? { secretsManager } : {}),
    s3,
    direct: stack.s3.client,
    bucket: stack.bucket,
    layout: new StagingLayout(''),
    now,
    advance: (ms) => void (clock += ms),
    slept,
    logs,
    tokens,
    beforeFetch,
    forwarded,
    metrics,
    exportDeps: makeExportDeps(),
    forwardDeps: await makeForwardDeps(),
    exportHandler: undefined as unknown as ExportHandler,
    forwardHandler: undefined as unknown as ForwardHandler,
    coldStart: async () => {
      const e = makeExportDeps();
      const f = await makeForwardDeps();
      (rig as { exportDeps: ExportBaseDeps }).exportDeps = e;
      (rig as { forwardDeps: ForwardBaseDeps }).forwardDeps = f;
      rig.exportHandler = createExportHandler(() => e);
      const handler = createForwardHandler(
        async () => f,
        (r) => void forwarded.push(r),
        { metrics: metricsSink },
      );
      rig.forwardHandler = handler;
      verifyHandler = () => handler({ action: 'verify' }, rig.context(FORWARD_TIMEOUT_MS));
    },
    verify: async ({ settle = true, advanceMs = VERIFY_SETTLE_MS + MIN } = {}) => {
      clock += advanceMs;
      if (settle) stack.aep.settle();
      return verifyHandler();
    },
    reconfigure: async (env) => {
      forwardConfig = readConfig({ ...stack.env, ...env }, 'forward');
      await rig.coldStart();
    },
    context: (timeoutMs) => {
      const deadline = clock + timeoutMs;
      return { getRemainingTimeInMillis: () => deadline - clock };
    },
    queue,
    deadLetters,
    notify: () => {
      const requests = proxy.requests;
      for (; seenRequests < requests.length; seenRequests++) {
        const r = requests[seenRequests]!;
        if (r.op === 'put' && r.status === 200 && r.key.endsWith('/manifest.json'))
          queue.push({ id: `m-${++messageSeq}`, key: r.key, receives: 0 });
      }
    },
    drainQueue: async ({ concurrency = 1, timeoutMs = FORWARD_TIMEOUT_MS } = {}) => {
      let invocations = 0;
      let failures = 0;
      rig.notify();
      while (queue.length > 0) {
        const batch = queue.splice(0, concurrency);
        const replies = await Promise.all(
          batch.map((m) => {
            m.receives++;
            invocations++;
            const event = sqsEventFor(stack.bucket, m.key);
            event.Records[0]!.messageId = m.id;
            if (m.body !== undefined) event.Records[0]!.body = m.body;
            return rig.forwardHandler(event, rig.context(timeoutMs));
          }),
        );
        let failed = false;
        replies.forEach((reply, i) => {
          const m = batch[i]!;
          if (reply.batchItemFailures.length === 0) return;
          failures++;
          failed = true;
          if (m.receives >= MAX_RECEIVES) deadLetters.push(m);
          else queue.push(m);
        });
        // A failed message becomes visible again after the visibility timeout.
        if (failed) clock += VISIBILITY_TIMEOUT_MS;
        rig.notify();
      }
      return { invocations, failures };
    },
    invariants: ({ requireForwarded = true, requireVerified = false } = {}) =>
      checkInvariants({
        s3: stack.s3.client,
        bucket: stack.bucket,
        layout: rig.layout,
        projectId: PROJECT_ID,
        acceptedIds: stack.aep.acceptedIds(),
        requireForwarded,
        requireVerified,
      }),
    close: async () => {
      s3.destroy();
      sm?.destroy();
      await proxy.close();
      await secretsManager?.close();
      await stack.close();
    },
  };
  await rig.coldStart();
  return rig;
}

export const schedule = (at: number = NOW): { source: 'schedule'; scheduledTime: string } => ({
  source: 'schedule',
  scheduledTime: new Date(at).toISOString(),
});

/**
 * The invariants every scenario ends with (docs/architecture.md "Invariants", issue #7):
 * no event lost (`exported = accepted + rejected + quarantined`, each reject and quarantined line kept with a reason),
 * no `_id` delivered twice, the checkpoint never past an uncommitted window.
 */
export async function assertInvariants(
  rig: Rig,
  opts: { requireForwarded?: boolean; minWindows?: number; requireVerified?: boolean } = {},
): Promise<InvariantReport> {
  const report = await rig.invariants(opts);
  expect(report.problems).toEqual([]);
  expect(report.duplicatesAtPlatform).toBe(0);
  for (const w of report.windows) {
    if (!w.forwarded) continue;
    expect(w.lines, `window ${w.window}: exported = accepted + rejected + quarantined`).toBe(
      w.accepted + w.rejected + w.quarantined,
    );
    if (opts.requireVerified) {
      const v = w.platform!;
      expect(v.status, `window ${w.window}: Platform's verdict`).not.toBe('pending');
      expect(w.lines, `window ${w.window}: exported = ingested + failed at Platform + rejected + quarantined`).toBe(
        v.ingested + v.failed + w.rejected + w.quarantined,
      );
    }
    // The reconciliation is in the receipts (checkInvariants compares it with the parts when present).
    const key = rig.layout.windowReceiptKey({
      projectId: PROJECT_ID,
      mode: w.mode,
      windowId: w.window,
      runId: w.runId,
    });
    expect(await exists(rig.direct, rig.bucket, key), `${key} exists`).toBe(true);
  }
  expect(report.windows.length).toBeGreaterThanOrEqual(opts.minWindows ?? 0);
  expect(rig.deadLetters).toEqual([]);
  return report;
}

/**
 * An error a user can act on: it names what failed and says what to do or what happens next, and never carries a
 * secret.
 */
export function expectActionable(rig: Rig, message: string, what: RegExp): void {
  expect(message).toMatch(what);
  expect(message).toMatch(
    /check|set |re-?export|again|retr|resum|next run|lower|raise|store|fix|use |upload|expected|must|split|choose/i,
  );
  for (const secret of secretsOf(rig)) expect(message).not.toContain(secret);
}

export function secretsOf(rig: Rig): string[] {
  return [rig.stack.secrets.mixpanelSecret, rig.stack.secrets.aepClientSecret, ...rig.tokens];
}

/** Serialises anything the product produced (log fields, errors with causes and stacks) for a secrets scan. */
export function dump(value: unknown): string {
  const seen = new WeakSet<object>();
  return JSON.stringify(value, function replacer(_key, v: unknown) {
    if (v instanceof Error) {
      const out: Record<string, unknown> = { name: v.name, message: v.message, stack: v.stack, cause: v.cause };
      for (const k of Object.keys(v)) out[k] = (v as unknown as Record<string, unknown>)[k];
      return out;
    }
    if (typeof v === 'bigint') return String(v);
    if (v !== null && typeof v === 'object') {
      if (seen.has(v)) return '[circular]';
      seen.add(v);
    }
    return v;
  });
}

/** Runs a promise that is expected to fail, and returns the error. */
export async function failure(p: Promise<unknown>): Promise<Error> {
  const result = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(result, 'expected a failure').toBeInstanceOf(Error);
  return result as Error;
}
