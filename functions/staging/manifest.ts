/**
 * The manifest: the commit marker of a window, written last (docs/architecture.md#manifestjson-contract).
 * Fields beyond the contract (`runId`, `project`, `lines`, `quarantineKey`) are additions the contract allows.
 */
import * as z from 'zod';
import { ConnectorError } from '#common/errors';

export const ManifestSchema = z.object({
  version: z.literal(1),
  projectId: z.string(),
  mode: z.enum(['processing-time', 'event-time']),
  window: z.object({ id: z.string(), from: z.string(), to: z.string() }),
  query: z.object({ from_date: z.string(), to_date: z.string(), where: z.string().optional() }),
  parts: z.array(
    z.object({
      key: z.string(),
      events: z.number().int().nonnegative(),
      bytes: z.number().int().nonnegative(),
      sha256: z.string().regex(/^[0-9a-f]{64}$/),
      /** Partition of the part's events (staging/partition.ts); absent in manifests written before partitions. */
      partition: z.number().int().nonnegative().optional(),
    }),
  ),
  events: z.number().int().nonnegative(),
  quarantined: z.number().int().nonnegative(),
  exportedAt: z.string(),
  // additions
  runId: z.string(),
  /** Lines Mixpanel returned = events + quarantined. */
  lines: z.number().int().nonnegative(),
  quarantineKey: z.string().optional(),
  /** Quarantined lines per reason (stage-window.ts `QuarantineReason`). */
  quarantinedByReason: z.record(z.string(), z.number().int().nonnegative()).optional(),
  /** What the forwarder needs to map times without a per-project configuration of its own. */
  project: z.object({ timezone: z.string(), legacyLocalTime: z.boolean() }),
  /** Partitions of the window (a power of two, staging/partition.ts); absent: one partition holds every part. */
  partitions: z.number().int().positive().optional(),
});
export type Manifest = z.infer<typeof ManifestSchema>;

export class ManifestError extends ConnectorError {
  constructor(message: string, cause?: unknown) {
    super('permanent', message, cause === undefined ? undefined : { cause });
    this.name = 'ManifestError';
  }
}

export function parseManifest(text: string, key: string): Manifest {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ManifestError(
      `manifest ${key} is not JSON: it was not written by this connector or is damaged; re-export the window with "force": true`,
      error,
    );
  }
  const parsed = ManifestSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new ManifestError(`manifest ${key} is invalid (${issues}); re-export the window with "force": true`);
  }
  const m = parsed.data;
  const sum = m.parts.reduce((n, p) => n + p.events, 0);
  if (sum !== m.events)
    throw new ManifestError(`manifest ${key} lists ${sum} events in its parts but says events=${m.events}`);
  const partitions = m.partitions ?? 1;
  const stray = m.parts.find((p) => (p.partition ?? 0) >= partitions);
  if (stray !== undefined)
    throw new ManifestError(`manifest ${key} puts part ${stray.key} in partition ${stray.partition} of ${partitions}`);
  return m;
}

/** The window's partitions: 1 for a manifest written before partitions existed. */
export function partitionCount(m: Pick<Manifest, 'partitions'>): number {
  return m.partitions ?? 1;
}

/** Indexes (in `parts`) of the parts of partition `k`; every part for an unpartitioned manifest. */
export function partitionParts(m: Pick<Manifest, 'parts'>, k: number): number[] {
  const out: number[] = [];
  m.parts.forEach((p, i) => {
    if ((p.partition ?? 0) === k) out.push(i);
  });
  return out;
}
