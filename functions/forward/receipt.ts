/**
 * Receipts: one per staged part, written when the part is done (`complete`) and while it is under way (`partial`,
 * the progress a timeout or crash resumes from). Counts obey `read = accepted + rejected` once complete.
 */
import * as z from 'zod';

export const ReceiptSchema = z.object({
  version: z.literal(1),
  status: z.enum(['partial', 'complete']),
  projectId: z.string(),
  mode: z.enum(['processing-time', 'event-time']),
  window: z.string(),
  runId: z.string(),
  part: z.number().int().nonnegative(),
  partKey: z.string(),
  sink: z.enum(['streaming', 'batch']),
  replay: z.boolean(),
  /** Lines of the part fully handled (the resume point). */
  linesDone: z.number().int().nonnegative(),
  read: z.number().int().nonnegative(),
  mapped: z.number().int().nonnegative(),
  accepted: z.number().int().nonnegative(),
  rejected: z.number().int().nonnegative(),
  byReason: z.record(z.string(), z.number()),
  /** Messages re-sent after a retryable failure. */
  retried: z.number().int().nonnegative(),
  /** Records whose first send had an unknown fate (connection lost after sending) and were sent again. */
  ambiguous: z.number().int().nonnegative(),
  /**
   * Accepted records that carry no identity (no identityMap): Real-Time Customer Profile cannot use them. Absent in
   * receipts written before it was counted.
   */
  withoutIdentity: z.number().int().nonnegative().optional(),
  /** AEP ids: DCS request batch ids (streaming) or the Platform batch id (batch). */
  aepIds: z.array(z.string()),
  rejectedKeys: z.array(z.string()),
  /**
   * Written before a chunk is sent and cleared by the save after it: lines `[fromLine, toLine)` whose DCS answer was
   * never recorded when present on resume (the process died in between). They are sent again and counted ambiguous.
   */
  inFlight: z.object({ fromLine: z.number().int(), toLine: z.number().int(), records: z.number().int() }).optional(),
  ledgerKey: z.string(),
  startedAt: z.string(),
  updatedAt: z.string(),
});
export type Receipt = z.infer<typeof ReceiptSchema>;

/**
 * Platform's verdict on a forwarded run (functions/verify): `pending` until Platform has finished with what was sent,
 * then `verified` (`accepted = ingested + failed`, each failed record kept in rejected/ with Platform's reason) or
 * `failed` (the batch failed as a whole, or no final verdict came within the verifier's horizon).
 */
export const PlatformVerdictSchema = z.object({
  status: z.enum(['pending', 'verified', 'failed']),
  ingested: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
  checkedAt: z.string(),
  /** Checks made so far. */
  checks: z.number().int().nonnegative().optional(),
  /** Platform's refusals by reason (each starts with `platform`). */
  byReason: z.record(z.string(), z.number()).optional(),
  /** What the status rests on, in words (what is awaited, why it failed). */
  detail: z.string().optional(),
  /** Failed records Platform counted but whose record could not be traced (no `_id` in its error file). */
  untraced: z.number().int().nonnegative().optional(),
  rejectedKeys: z.array(z.string()).optional(),
  /** Batch sink: the batch(es) of the run, the current one last (a re-sent batch follows the failed one). */
  batches: z.array(z.object({ id: z.string(), status: z.string() })).optional(),
});
export type PlatformVerdict = z.infer<typeof PlatformVerdictSchema>;

/**
 * The reconciliation of a forwarded window (`run=<runId>/window.json`, written when every part is complete):
 * `exported` lines = `accepted` + `rejected` + `quarantined`, with the reasons of both.
 */
export const WindowReceiptSchema = z.object({
  version: z.literal(1),
  projectId: z.string(),
  mode: z.enum(['processing-time', 'event-time']),
  window: z.string(),
  runId: z.string(),
  replay: z.boolean(),
  sink: z.enum(['streaming', 'batch']),
  /** Lines Mixpanel returned for the window. */
  exported: z.number().int().nonnegative(),
  /** Lines the export kept in quarantine/ (not events). */
  quarantined: z.number().int().nonnegative(),
  quarantinedByReason: z.record(z.string(), z.number()).optional(),
  /** Staged events = accepted + rejected. */
  events: z.number().int().nonnegative(),
  accepted: z.number().int().nonnegative(),
  rejected: z.number().int().nonnegative(),
  byReason: z.record(z.string(), z.number()),
  retried: z.number().int().nonnegative(),
  ambiguous: z.number().int().nonnegative(),
  /** Accepted records without any identity (sum of the parts'; absent when written before it was counted). */
  withoutIdentity: z.number().int().nonnegative().optional(),
  parts: z.number().int().nonnegative(),
  batch: z.object({ id: z.string(), status: z.string() }).optional(),
  /** When the first part of the run began sending (what Platform received lies between this and `forwardedAt`). */
  sentFrom: z.string().optional(),
  forwardedAt: z.string(),
  /** Once verified: `exported = platform.ingested + platform.failed + rejected + quarantined`. */
  platform: PlatformVerdictSchema.optional(),
});
export type WindowReceipt = z.infer<typeof WindowReceiptSchema>;
