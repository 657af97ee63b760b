/**
 * The events the export handler accepts (docs/architecture.md#export-handler-contract), parsed with zod.
 * A bad payload is refused before anything is read or written, with a message naming the problem.
 */
import * as z from 'zod';
import type { WindowMode } from '#common/config';
import { ConnectorError } from '#common/errors';

export type ExportInvocation =
  | { readonly kind: 'scheduled'; readonly scheduledMs: number }
  | {
      readonly kind: 'manual';
      readonly from: number;
      readonly to: number;
      readonly mode?: WindowMode;
      readonly dryRun: boolean;
      readonly force: boolean;
    };

const isoInstant = (field: string) =>
  z
    .string({ error: `"${field}" must be an ISO-8601 time such as 2024-05-01T00:00:00Z` })
    .refine(
      (s) =>
        /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2}))?$/.test(s) &&
        !Number.isNaN(Date.parse(s)),
      {
        error: `"${field}" must be an ISO-8601 time with a zone, such as 2024-05-01T00:00:00Z (or a date 2024-05-01, read as UTC midnight)`,
      },
    )
    .transform((s) => Date.parse(s));

const Scheduler = z.object({ source: z.literal('schedule'), scheduledTime: isoInstant('scheduledTime') }).strict();
const EventBridgeRule = z.object({ 'detail-type': z.literal('Scheduled Event'), time: isoInstant('time') }).loose();
const Manual = z
  .object({
    from: isoInstant('from'),
    to: isoInstant('to'),
    mode: z
      .enum(['processing-time', 'event-time'], { error: '"mode" must be "processing-time" or "event-time"' })
      .optional(),
    dryRun: z.boolean({ error: '"dryRun" must be true or false' }).optional(),
    force: z.boolean({ error: '"force" must be true or false' }).optional(),
  })
  .strict();

export class BadExportEventError extends ConnectorError {
  constructor(message: string) {
    super('input', message);
    this.name = 'BadExportEventError';
  }
}

const USAGE =
  'Expected {"source":"schedule","scheduledTime":"<ISO>"}, an EventBridge "Scheduled Event", or a manual backfill ' +
  '{"from":"<ISO>","to":"<ISO>","mode"?:"processing-time"|"event-time","dryRun"?:boolean,"force"?:boolean}.';

export function parseExportEvent(event: unknown): ExportInvocation {
  if (event === null || typeof event !== 'object' || Array.isArray(event)) {
    throw new BadExportEventError(`The export event must be a JSON object. ${USAGE}`);
  }
  const e = event as Record<string, unknown>;
  const pick = (schema: z.ZodType, what: string) => {
    const parsed = schema.safeParse(event);
    if (parsed.success) return parsed.data;
    const issues = parsed.error.issues.map((i) =>
      i.code === 'unrecognized_keys' ? `unknown field(s) ${i.keys.map((k) => `"${k}"`).join(', ')}` : i.message,
    );
    throw new BadExportEventError(`Bad ${what} event: ${issues.join('; ')}. ${USAGE}`);
  };
  if ('detail-type' in e) {
    const s = pick(EventBridgeRule, 'EventBridge') as { time: number };
    return { kind: 'scheduled', scheduledMs: s.time };
  }
  if ('source' in e || 'scheduledTime' in e) {
    const s = pick(Scheduler, 'scheduled') as { scheduledTime: number };
    return { kind: 'scheduled', scheduledMs: s.scheduledTime };
  }
  const m = pick(Manual, 'manual') as {
    from: number;
    to: number;
    mode?: WindowMode;
    dryRun?: boolean;
    force?: boolean;
  };
  if (m.from >= m.to) throw new BadExportEventError(`Bad manual event: "from" must be before "to". ${USAGE}`);
  return {
    kind: 'manual',
    from: m.from,
    to: m.to,
    ...(m.mode ? { mode: m.mode } : {}),
    dryRun: m.dryRun ?? false,
    force: m.force ?? false,
  };
}
