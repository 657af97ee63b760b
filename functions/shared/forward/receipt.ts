/**
 * Receipts: one per staged part, written when the part is done (`complete`) and while it is under way (`partial`,
 * the progress a timeout or crash resumes from). Counts obey `read = accepted + rejected` once complete.
 */
import { z } from 'zod';

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
  /** AEP ids: DCS request batch ids (streaming) or the Platform batch id (batch). */
  aepIds: z.array(z.string()),
  rejectedKeys: z.array(z.string()),
  ledgerKey: z.string(),
  startedAt: z.string(),
  updatedAt: z.string(),
});
export type Receipt = z.infer<typeof ReceiptSchema>;
