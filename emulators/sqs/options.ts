/** Validation of SqsEmulatorOptions read from JSON (the config file of `main.ts`). */
import { z } from 'zod';
import type { SqsEmulatorOptions } from './server.ts';

const optionsSchema = z.strictObject({
  queues: z
    .array(
      z.strictObject({
        name: z.string().min(1),
        visibilityTimeout: z.number().int().min(0).max(43_200).optional(),
        redrive: z
          .strictObject({ deadLetterQueue: z.string().min(1), maxReceiveCount: z.number().int().min(1).max(1000) })
          .optional(),
      }),
    )
    .optional(),
  accountId: z
    .string()
    .regex(/^\d{12}$/, 'must be a 12-digit account id')
    .optional(),
  region: z.string().min(1).optional(),
});

export function parseSqsEmulatorOptions(raw: unknown): SqsEmulatorOptions {
  const parsed = optionsSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new Error(`Invalid SQS emulator config: ${issues.join('; ')}`);
  }
  return parsed.data;
}
