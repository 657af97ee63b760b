/** Options of the AEP emulator, validated once at start (errors name every bad path). */
import { z } from 'zod';

/** IMS answers `expires_in: 86399` (seconds) for a Server-to-Server token.
 * https://github.com/AdobeDocs/experience-platform.en/blob/main/help/landing/api-authentication.md */
export const DEFAULT_TOKEN_TTL_SECONDS = 86_399;

/** Adobe publishes how late streamed data reaches the data lake ("< 60 minutes",
 * help/ingestion/streaming-ingestion/overview.md) but not how it cuts batches: 15-minute slices are the emulator's
 * choice, within that bound. */
export const DEFAULT_STREAMING_SLICE_MS = 15 * 60_000;

export const aepEmulatorOptionsSchema = z
  .object({
    clients: z
      .array(
        z.object({
          clientId: z.string().min(1),
          clientSecret: z.string().min(1),
          orgId: z.string().regex(/^\S+@AdobeOrg$/, 'must look like XXXX@AdobeOrg'),
        }),
      )
      .min(1),
    sandbox: z.string().min(1).optional(),
    tenant: z.string().min(1),
    datasets: z.array(
      z.object({
        id: z.string().min(1),
        schemaId: z.url(),
        schemaVersion: z.string().min(1).optional(),
        profile: z.boolean().optional(),
      }),
    ),
    connections: z.array(
      z.object({ id: z.string().regex(/^[^/?#\s]+$/, 'must be a URL path segment'), authenticated: z.boolean() }),
    ),
    flows: z
      .array(z.object({ id: z.string().min(1), connectionId: z.string().min(1), datasetId: z.string().min(1) }))
      .optional(),
    streamingSliceMs: z.number().int().positive().optional(),
    batchSettleDelayMs: z.number().int().min(0).optional(),
    syncValidationForTests: z.boolean().optional(),
    tokenTtlSeconds: z.number().int().positive().optional(),
    keep: z.enum(['records', 'ids']).optional(),
    host: z.string().min(1).optional(),
    port: z.number().int().min(0).max(65_535).optional(),
  })
  .superRefine((options, issue) => {
    const duplicates = (label: string, values: string[]): void => {
      const seen = new Set<string>();
      for (const value of values) {
        if (seen.has(value))
          issue.addIssue({ code: 'custom', path: [label], message: `duplicate ${label} id ${value}` });
        seen.add(value);
      }
    };
    duplicates(
      'clients',
      options.clients.map((c) => c.clientId),
    );
    duplicates(
      'datasets',
      options.datasets.map((d) => d.id),
    );
    duplicates(
      'connections',
      options.connections.map((c) => c.id),
    );
    duplicates(
      'flows',
      (options.flows ?? []).map((f) => f.id),
    );
    const connections = new Set(options.connections.map((c) => c.id));
    const datasets = new Set(options.datasets.map((d) => d.id));
    (options.flows ?? []).forEach((flow, i) => {
      if (!connections.has(flow.connectionId)) {
        issue.addIssue({
          code: 'custom',
          path: ['flows', i, 'connectionId'],
          message: `unknown connection ${flow.connectionId}`,
        });
      }
      if (!datasets.has(flow.datasetId)) {
        issue.addIssue({
          code: 'custom',
          path: ['flows', i, 'datasetId'],
          message: `unknown dataset ${flow.datasetId}`,
        });
      }
    });
  });

/** Options of `startAepEmulator`. */
export interface AepEmulatorOptions {
  /** OAuth Server-to-Server credentials IMS knows. The first client's org is the inlets' org. */
  clients: Array<{ clientId: string; clientSecret: string; orgId: string /* "XXXX@AdobeOrg" */ }>;
  /** `x-sandbox-name` every Platform call must carry. @default 'prod' */
  sandbox?: string;
  /** Tenant id without underscore, e.g. 'acme' → custom fields only under `_acme`. */
  tenant: string;
  /** `schemaId` is the schema's full `$id`, https://ns.adobe.com/{tenant}/schemas/{id}; `schemaVersion` is what
   * `schemaRef.contentType` must name (`…xed-full+json;version={SCHEMA_VERSION}`). Empty for an emulator that is
   * provisioned through its setup APIs (setup.ts). `profile`: the dataset is enabled for Real-Time Customer Profile
   * (Catalog tags `unifiedProfile: ["enabled:true"]`), so streamed ExperienceEvents over Profile's 10 KB limit fail
   * asynchronously. @default schemaVersion '1.0', profile false */
  datasets: Array<{ id: string; schemaId: string; schemaVersion?: string; profile?: boolean }>;
  /** Streaming connection (inlet) ids. */
  connections: Array<{ id: string; authenticated: boolean }>;
  /** HTTP API dataflows: each message's `header.flowId` must name one whose connection and dataset it is sent to.
   * @default [] (every streaming message is refused) */
  flows?: Array<{ id: string; connectionId: string; datasetId: string }>;
  /** Streamed records are written to the data lake in one batch per dataset per slice of this length; the slice's
   * batches appear in Catalog once it has ended (or on `settle()`). @default DEFAULT_STREAMING_SLICE_MS */
  streamingSliceMs?: number;
  /** How long a completed ingestion batch stays in each promotion state before its next one. @default 0 */
  batchSettleDelayMs?: number;
  /**
   * TEST CONVENIENCE, not Platform behaviour: validate every streamed record synchronously, on both DCS endpoints,
   * and answer a refusal inside the response (Platform does so only for `POST /collection/{id}?syncValidation=true`).
   * For tests that still count Platform's refusals from the response until they read failed batches instead.
   * @default false
   */
  syncValidationForTests?: boolean;
  /** @default 86399 */
  tokenTtlSeconds?: number;
  /** 'ids' keeps only the `_id` strings (benchmarks with millions of records). @default 'records' */
  keep?: 'records' | 'ids';
  /** @default '127.0.0.1' */
  host?: string;
  /** @default 0 (any free port) */
  port?: number;
}

/** Validates options, throwing one error that lists every problem. */
export function parseAepEmulatorOptions(input: unknown): AepEmulatorOptions {
  const result = aepEmulatorOptionsSchema.safeParse(input);
  if (!result.success) throw new Error(`Invalid AEP emulator options:\n${z.prettifyError(result.error)}`);
  return result.data;
}
