/**
 * Builds the two Lambda handlers for a local run — the same `createExportHandler` / `createForwardHandler` the
 * deployed functions use — with the CLI's clients, logger and progress hooks.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import type { Config } from '#common/config';
import { type ExportBaseDeps, createExportDeps } from '#export/deps';
import type { WindowSummary } from '#export/run';
import { type ForwardBaseDeps, createForwardDeps } from '#forward/deps';
import type { ForwardDeps, WindowForwardResult } from '#forward/window';
import type { Log } from '#common/log';
import { createExportHandler } from '#export/handler';
import { createForwardHandler } from '#forward/handler';
import type { VerifySummary } from '#forward/verify-round';
import type { ExportHandler, ForwardHandler } from './pipeline.ts';
import type { RunReport } from './report.ts';

export interface WiringOptions {
  readonly s3: S3Client;
  readonly secretsManager?: () => SecretsManagerClient;
  readonly log: Log;
  readonly report: RunReport;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
  /** Lets a caller wrap the export dependencies (the dry run taps the Mixpanel client). */
  readonly mapExportDeps?: (deps: ExportBaseDeps) => ExportBaseDeps;
  readonly onExported?: (w: WindowSummary) => void;
  readonly onForwarded?: (r: WindowForwardResult) => void;
  /** The forwarder's partition sender (a local run: `sqsFanOut` with a client of the SQS stand-in). */
  readonly fanOut?: ForwardDeps['fanOut'];
}

export interface Wiring {
  readonly exportHandler: ExportHandler;
  /** Undefined when no forward configuration was given (dry run). */
  readonly forwardHandler?: ForwardHandler;
  readonly forwardDeps?: () => Promise<ForwardBaseDeps>;
  /** The forward Lambda's verify round (the stack's verify schedule), when a forward configuration was given. */
  readonly verifyHandler?: () => Promise<VerifySummary>;
}

/**
 * The export handler, and the forward handler when `forwardConfig` is given, each created once with its dependencies
 * built lazily on first call (as in a Lambda container). Progress goes to `o.report`.
 */
export function wireHandlers(exportConfig: Config, forwardConfig: Config | undefined, o: WiringOptions): Wiring {
  const common = { s3: o.s3, log: o.log, ...(o.now ? { now: o.now } : {}), ...(o.sleep ? { sleep: o.sleep } : {}) };
  let exportDeps: ExportBaseDeps | undefined;
  const handler = createExportHandler(() => {
    if (exportDeps === undefined) {
      const deps = createExportDeps(exportConfig, {
        ...common,
        ...(o.secretsManager ? { secretsManager: o.secretsManager() } : {}),
        onWindow: (w) => {
          o.report.exported(w);
          o.onExported?.(w);
        },
      });
      exportDeps = o.mapExportDeps ? o.mapExportDeps(deps) : deps;
    }
    return exportDeps;
  });
  const exportHandler: ExportHandler = async (event) => {
    o.report.startExport();
    return handler(event);
  };
  if (forwardConfig === undefined) return { exportHandler };

  let forwardDeps: Promise<ForwardBaseDeps> | undefined;
  const getForwardDeps = (): Promise<ForwardBaseDeps> => {
    forwardDeps ??= createForwardDeps(forwardConfig, {
      ...common,
      ...(o.fanOut ? { fanOut: o.fanOut } : {}),
      ...(o.secretsManager ? { secretsManager: o.secretsManager() } : {}),
    }).catch((error: unknown) => {
      forwardDeps = undefined;
      throw error;
    });
    return forwardDeps;
  };
  const forward = createForwardHandler(getForwardDeps, (r) => {
    o.report.forwarded(r);
    o.onForwarded?.(r);
  });
  const forwardHandler: ForwardHandler = async (event) => {
    o.report.startForward();
    return forward(event);
  };
  const verifyHandler = (): Promise<VerifySummary> => forward({ action: 'verify' });
  return { exportHandler, forwardHandler, forwardDeps: getForwardDeps, verifyHandler };
}
