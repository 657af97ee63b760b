/**
 * Where everything lives in the staging bucket (docs/architecture.md#staging-layout-contract).
 *
 * Parts sit under a `run=` folder of their window, so a re-export never mixes its parts with an older attempt's and a
 * manifest only ever lists the parts of the run that wrote it. Receipts and rejects are keyed by mode and run too: a
 * forced re-export of a window is a new run whose parts are forwarded afresh (minus the ids already delivered).
 */
import type { WindowMode } from '#common/config';

export interface WindowRef {
  readonly projectId: string;
  readonly mode: WindowMode;
  readonly windowId: string;
}

export interface PartRef extends WindowRef {
  readonly runId: string;
  readonly part: number;
}

const pad = (n: number): string => String(n).padStart(5, '0');

export class StagingLayout {
  readonly prefix: string;
  constructor(prefix = '') {
    this.prefix = prefix;
  }

  windowPrefix(w: WindowRef): string {
    return `${this.prefix}staging/project=${w.projectId}/mode=${w.mode}/window=${w.windowId}/`;
  }
  manifestKey(w: WindowRef): string {
    return `${this.windowPrefix(w)}manifest.json`;
  }
  partKey(p: PartRef): string {
    return `${this.windowPrefix(p)}run=${p.runId}/part-${pad(p.part)}.jsonl.gz`;
  }
  quarantineKey(w: WindowRef, runId: string): string {
    return `${this.prefix}quarantine/project=${w.projectId}/window=${w.windowId}/export-${w.mode}-${runId}.jsonl.gz`;
  }
  deliveryPrefix(w: WindowRef): string {
    return `${this.prefix}delivery/project=${w.projectId}/mode=${w.mode}/window=${w.windowId}/`;
  }
  /** A forwarded window's reconciliation (forward/receipt.ts `WindowReceipt`). */
  windowReceiptKey(w: WindowRef & { readonly runId: string }): string {
    return `${this.deliveryPrefix(w)}run=${w.runId}/window.json`;
  }
  /** An empty marker: every part of partition `partition` of the run is complete (its receipts are final). */
  partitionDoneKey(w: WindowRef & { readonly runId: string }, partition: number): string {
    return `${this.partitionDonePrefix(w)}${pad(partition)}.done`;
  }
  /** The prefix every partition done marker of a run shares (one listing finds them all). */
  partitionDonePrefix(w: WindowRef & { readonly runId: string }): string {
    return `${this.deliveryPrefix(w)}run=${w.runId}/partition-`;
  }
  /** The batch sink's Platform batch of a run (forward/batch-run.ts `BatchState`). */
  batchStateKey(w: WindowRef & { readonly runId: string }): string {
    return `${this.deliveryPrefix(w)}run=${w.runId}/batch.json`;
  }
  /** The window's forwarder lease (one forwarder per window at a time; forward/lease.ts). */
  leaseKey(w: WindowRef): string {
    return `${this.deliveryPrefix(w)}forwarder.lease`;
  }
  /** A partition's forwarder lease (partitioned staging: one forwarder per partition at a time). */
  partitionLeaseKey(w: WindowRef, partition: number): string {
    return `${this.deliveryPrefix(w)}forwarder-partition-${pad(partition)}.lease`;
  }
  receiptKey(p: PartRef): string {
    return `${this.deliveryPrefix(p)}run=${p.runId}/part-${pad(p.part)}.json`;
  }
  /** Compact ledger of the ids a part delivered (sorted 64-bit digests): what a forced re-export must not send again. */
  ledgerKey(p: PartRef): string {
    return `${this.deliveryPrefix(p)}run=${p.runId}/part-${pad(p.part)}.ids`;
  }
  rejectedKey(p: PartRef, attempt = 0): string {
    return `${this.prefix}rejected/project=${p.projectId}/mode=${p.mode}/window=${p.windowId}/run=${p.runId}/part-${pad(p.part)}${attempt > 0 ? `.${attempt}` : ''}.jsonl.gz`;
  }
  /** Records Platform refused after accepting them (the verifier's findings), per part of a run. */
  platformRejectedKey(p: PartRef): string {
    return `${this.prefix}rejected/project=${p.projectId}/mode=${p.mode}/window=${p.windowId}/run=${p.runId}/platform-part-${pad(p.part)}.jsonl.gz`;
  }
  /** Where the verifier finds the forwarded runs still waiting for Platform's verdict (functions/verify). */
  verifyPendingPrefix(): string {
    return `${this.prefix}verify/pending/`;
  }
  /** A run waiting for Platform's verdict: written with its window.json, removed once the verdict is final. */
  verifyPendingKey(w: WindowRef & { readonly runId: string }): string {
    return `${this.verifyPendingPrefix()}project=${w.projectId}/mode=${w.mode}/window=${w.windowId}/run=${w.runId}.json`;
  }
  /** Reads a pending marker's key back into its run. */
  parseVerifyPendingKey(key: string): (WindowRef & { readonly runId: string }) | undefined {
    const prefix = this.verifyPendingPrefix();
    if (!key.startsWith(prefix)) return undefined;
    const m = /^project=([^/]+)\/mode=(processing-time|event-time)\/window=([^/]+)\/run=([^/]+)\.json$/.exec(
      key.slice(prefix.length),
    );
    if (m === null) return undefined;
    return { projectId: m[1]!, mode: m[2] as WindowMode, windowId: m[3]!, runId: m[4]! };
  }
  statePrefix(projectId: string): string {
    return `${this.prefix}state/project=${projectId}/`;
  }
  checkpointKey(projectId: string): string {
    return `${this.statePrefix(projectId)}checkpoint.json`;
  }
  budgetKey(projectId: string): string {
    return `${this.statePrefix(projectId)}query-budget.json`;
  }

  /** Reads a manifest key back into its window reference (for the forwarder, from an S3 notification). */
  parseManifestKey(key: string): WindowRef | undefined {
    if (!key.startsWith(this.prefix)) return undefined;
    const m = /^staging\/project=([^/]+)\/mode=(processing-time|event-time)\/window=([^/]+)\/manifest\.json$/.exec(
      key.slice(this.prefix.length),
    );
    if (m === null) return undefined;
    return { projectId: m[1] as string, mode: m[2] as WindowMode, windowId: m[3] as string };
  }
}

/** A run id: compact UTC time of the run plus a random suffix, sortable. */
export function newRunId(nowMs: number, random: () => number = Math.random): string {
  const t = new Date(nowMs)
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.(\d{3})Z$/, '$1Z');
  return `${t}-${Math.floor(random() * 0xffff)
    .toString(16)
    .padStart(4, '0')}`;
}
