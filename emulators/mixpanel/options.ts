/**
 * Validation of MixpanelEmulatorOptions read from JSON (the config file of `main.ts`): functions aside (`now`), every
 * option can be given, and a bad config fails with messages naming each bad field.
 */

import { z } from 'zod';
import type { MixpanelEmulatorOptions } from './server.ts';

const fraction = z.number().min(0).max(1).optional();

const datasetSpec = z.strictObject({
  seed: z.number().finite(),
  count: z.number().int().nonnegative(),
  start: z.number().finite(),
  end: z.number().finite(),
  projectTimezone: z.string().min(1).optional(),
  legacyLocalTime: z.boolean().optional(),
  lateFraction: fraction,
  backdatedFraction: fraction,
  duplicateFraction: fraction,
  largeFraction: fraction,
  clockSkewFraction: fraction,
});

const numericId = z.string().regex(/^\d+$/, 'must be a numeric project id');

const optionsSchema = z.strictObject({
  projects: z
    .array(
      z.strictObject({
        projectId: numericId,
        timezone: z.string().min(1).optional(),
        legacyLocalTime: z.boolean().optional(),
        dataset: datasetSpec.optional(),
      }),
    )
    .min(1),
  serviceAccounts: z
    .array(z.strictObject({ username: z.string().min(1), secret: z.string().min(1), projectIds: z.array(numericId) }))
    .optional(),
  legacyApiSecrets: z.record(numericId, z.string().min(1)).optional(),
  rateLimit: z
    .union([
      z.literal(false),
      z.strictObject({
        perSecond: z.number().int().positive(),
        perHour: z.number().int().positive(),
        concurrent: z.number().int().positive(),
      }),
    ])
    .optional(),
  host: z.string().min(1).optional(),
  port: z.number().int().min(0).max(65_535).optional(),
  control: z.boolean().optional(),
});

/** Parses options from JSON-shaped data; throws an Error listing every problem. */
export function parseMixpanelEmulatorOptions(raw: unknown): MixpanelEmulatorOptions {
  const result = optionsSchema.safeParse(raw);
  if (!result.success) {
    const problems = result.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new Error(`Invalid Mixpanel emulator config:\n  ${problems.join('\n  ')}`);
  }
  return result.data as MixpanelEmulatorOptions;
}
