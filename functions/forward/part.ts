/**
 * Forwards one part of a committed window: resumes from its saved progress, maps, dedupes against the window's ids,
 * sends in chunks and saves progress (id ledger, then receipt) after every chunk. Every staged line of the part ends as
 * accepted or as rejected with a reason; a part cut short (deadline, failure, lost lease) leaves a partial receipt.
 * Just over 400 lines: the per-record loop and the progress save it must stay consistent with are kept together.
 */
import { PutObjectCommand } from '@aws-sdk/client-s3';
import type { Buffer } from 'node:buffer';
import { gzipSync } from 'node:zlib';
import type { SendResult, SinkRecord } from '#aep/streaming';
import { type RetryPolicy, withRetry } from '#common/retry';
import type { Mapper } from '#mapping/mapper';
import type { PartRef } from '#staging/layout';
import type { Manifest } from '#staging/manifest';
import { getBytes, getJson, isTransientS3, putJson } from '#staging/s3';
import { ChunkArena } from './arena.ts';
import { type RunBatch, uploadPartFile } from './batch-run.ts';
import { type IdSet, PartLedger } from './ledger.ts';
import { readPartLines } from './part-reader.ts';
import type { Receipt } from './receipt.ts';
import type { ForwardDeps } from './window.ts';

/** Records handed to the sink at once; progress is saved after each chunk. */
export const CHUNK_RECORDS = 5_000;

/**
 * Progress saves (ledger, receipt, rejects) are retried beyond the S3 client's own 3 attempts: a save that is given up
 * after records were accepted means those records are sent again on the next attempt. Bounded by the deadline plus
 * this grace (the handler keeps 30 s between the sending deadline and the Lambda timeout).
 */
export const SAVE_RETRY: RetryPolicy = { maxAttempts: 6, baseDelayMs: 500, maxDelayMs: 8_000, maxRetryAfterMs: 8_000 };
export const SAVE_GRACE_MS = 20_000;

/** One part to forward, and what it shares with the window's other parts. */
export interface PartJob {
  readonly manifest: Manifest;
  readonly index: number;
  readonly ref: PartRef;
  readonly mapper: Mapper;
  /** Every id the window delivered or is about to send (shared by the parts of the window). */
  readonly seen: IdSet;
  readonly deps: ForwardDeps;
  readonly replay: boolean;
  /** True once the window must stop (another part failed, or the lease was lost). */
  readonly stop: () => boolean;
  /** Batch sink: the run's Platform batch (created when the first part has records to upload). */
  readonly batch?: RunBatch;
}

export interface PartOutcome {
  readonly receipt: Receipt;
  /** The part had been delivered by an earlier attempt: `receipt` is that attempt's. */
  readonly skipped: boolean;
}

/**
 * Forwards one part.
 * @returns the final receipt (`skipped` when it existed already), or a partial receipt when it stopped early
 */
export async function forwardPart(job: PartJob): Promise<PartOutcome> {
  const { deps, ref } = job;
  const previous = await getJson<Receipt>(deps.s3, deps.bucket, deps.layout.receiptKey(ref));
  // Already delivered: its receipt is the answer (read once, not again by the caller).
  if (previous?.status === 'complete') return { receipt: previous, skipped: true };
  const forwarder = new PartForwarder(job, previous);
  // What this part delivered so far: its saved ledger, and the lines it came from (a resumed part skips those lines).
  if (previous !== undefined) {
    const bytes = await getBytes(deps.s3, deps.bucket, forwarder.ledgerKey);
    if (bytes !== undefined) forwarder.mine.addBytes(bytes);
  }
  return forwarder.run();
}

/** Settled counts of a part, as its receipt reports them. */
interface Counts {
  read: number;
  mapped: number;
  accepted: number;
  rejected: number;
  retried: number;
  ambiguous: number;
  /** Accepted records without identity. */
  withoutIdentity: number;
  byReason: Record<string, number>;
}

/** Counts of the chunk being built: they join `Counts` once the chunk is settled. */
interface PendingCounts {
  read: number;
  mapped: number;
  rejected: number;
  byReason: Record<string, number>;
}

const emptyPending = (): PendingCounts => ({ read: 0, mapped: 0, rejected: 0, byReason: {} });

/** A sink failure that carries what was settled before it (e.g. `StreamingDeliveryError`). */
interface FailureWithResult {
  readonly result: SendResult;
}

/** The state of one part's forward: its settled progress, and the chunk being built. */
class PartForwarder {
  readonly mine: PartLedger;
  readonly ledgerKey: string;
  readonly #job: PartJob;
  readonly #part: Manifest['parts'][number];
  readonly #receiptKey: string;
  readonly #counts: Counts;
  readonly #rejectedKeys: string[];
  readonly #aepIds: string[];
  readonly #startedAt: string;
  /** Lines in flight when an earlier attempt stopped without recording the answer (see `run`). */
  readonly #inFlight: Receipt['inFlight'];
  /** Lines of the part settled so far: where the next attempt resumes. */
  #linesDone: number;

  // The chunk being built: records to send (their bytes in the arena), and rejections waiting for the chunk to settle.
  readonly #arena = new ChunkArena();
  #chunk: Array<SinkRecord & { json: Buffer }> = [];
  #chunkLine = new Map<string, number>();
  /** Ids of the chunk whose record has no identity (counted once accepted). */
  #chunkNoIdentity = new Set<string>();
  #pendingRejects: string[] = [];
  #pending: PendingCounts = emptyPending();

  constructor(job: PartJob, previous: Receipt | undefined) {
    const { deps, ref } = job;
    this.#job = job;
    this.#part = job.manifest.parts[job.index]!;
    this.#receiptKey = deps.layout.receiptKey(ref);
    this.ledgerKey = deps.layout.ledgerKey(ref);
    this.mine = new PartLedger(this.#part.events);
    const p: Partial<Receipt> = previous ?? {};
    const [read, mapped, accepted, rejected] = [p.read ?? 0, p.mapped ?? 0, p.accepted ?? 0, p.rejected ?? 0];
    const [retried, ambiguous, withoutIdentity] = [p.retried ?? 0, p.ambiguous ?? 0, p.withoutIdentity ?? 0];
    this.#counts = {
      read,
      mapped,
      accepted,
      rejected,
      retried,
      ambiguous,
      withoutIdentity,
      byReason: { ...p.byReason },
    };
    this.#rejectedKeys = [...(previous?.rejectedKeys ?? [])];
    this.#aepIds = [...(previous?.aepIds ?? [])];
    this.#startedAt = previous?.startedAt ?? new Date(deps.now()).toISOString();
    this.#linesDone = previous?.linesDone ?? 0;
    this.#inFlight = previous?.inFlight;
  }

  /** Maps, dedupes and sends the part's lines from where it stopped; saves progress after every chunk. */
  async run(): Promise<PartOutcome> {
    const { deps, mapper, seen, stop } = this.#job;
    const part = this.#part;
    const inFlight = this.#inFlight;
    // Lines whose records were being sent when an earlier attempt stopped without recording the answer (a crash):
    // DCS may hold them already, so those sent again are counted as ambiguous.
    if (inFlight !== undefined) {
      deps.log.warn(
        'records were in flight when the previous attempt stopped; they are sent again and Platform may hold them ' +
          'twice (counted as ambiguous)',
        { part: part.key, fromLine: inFlight.fromLine, toLine: inFlight.toLine, records: inFlight.records },
      );
    }
    const chunkSize = deps.chunkRecords ?? CHUNK_RECORDS;
    const mine = this.mine;
    const resumed = mine.size > 0;
    const linesDone = this.#linesDone;
    let lineNo = 0;
    for await (const batch of readPartLines(deps.s3, deps.bucket, part)) {
      // Platform refuses ExperienceEvents dated in the future, asynchronously (into a failed batch, after DCS accepted
      // them): they are caught here instead, against this forwarder's clock, and kept in rejected/ with the reason.
      const nowIso = new Date(deps.now()).toISOString();
      for (const line of batch) {
        const n = lineNo++;
        if (n < linesDone) continue;
        let event: unknown;
        try {
          event = JSON.parse(line);
        } catch {
          this.#pending.read++;
          this.#reject('not-json', 'the staged line is not valid JSON', line);
          continue;
        }
        let out: ReturnType<Mapper>;
        try {
          out = mapper(event);
        } catch (error) {
          // The mapper rejects bad input instead of throwing; should a line still make it throw, that line alone is
          // kept in rejected/ with the error, rather than failing the part on every redelivery.
          this.#pending.read++;
          this.#reject('unmappable', `the mapper failed on this line: ${(error as Error).message}`, line);
          continue;
        }
        // Delivered by an earlier attempt of this part: already counted.
        if (out.ok && resumed && mine.delivered(n)) continue;
        this.#pending.read++;
        if (!out.ok) {
          this.#reject(out.reason, out.detail, line);
          continue;
        }
        // ISO-8601 UTC strings compare as times; a year past 9999 is written "+0YYYYY-…".
        const ts = out.record.timestamp;
        if (ts > nowIso || ts.charCodeAt(0) === 43) {
          const why = 'Platform refuses ExperienceEvents dated in the future';
          const detail = `the event time ${ts} is later than now (${nowIso}); ${why}`;
          this.#reject('future-time', detail, line, { id: out.id });
          continue;
        }
        this.#pending.mapped++;
        if (!seen.add(out.id)) {
          this.#reject('duplicate', `_id ${out.id} was already delivered or seen in this window`, line, { id: out.id });
          continue;
        }
        this.#chunk.push({ id: out.id, json: this.#arena.put(out.json) });
        this.#chunkLine.set(out.id, n);
        if (!out.identified) this.#chunkNoIdentity.add(out.id);
        if (this.#chunk.length >= chunkSize) {
          // Another part failed: stop here; the progress saved after the last chunk is where the next attempt resumes.
          if (stop()) return this.#stopped();
          if (!(await this.#flush(n + 1))) return this.#stopped();
          await this.#save('partial');
        }
      }
    }
    if (stop()) return this.#stopped();
    if (!(await this.#flush(lineNo))) return this.#stopped();
    // Batch sink: a part with nothing to send (all rejected or duplicates) contributes no file, as Platform fails a
    // batch holding an empty file (error 106, help/ingestion/batch-ingestion/troubleshooting.md).
    const { batch } = this.#job;
    if (deps.sink.kind === 'batch' && batch !== undefined && mine.size > 0) {
      // No time left to upload: the records are in the ledger, and the resumed part uploads its whole file.
      if (this.#late()) {
        await this.#save('partial');
        return this.#stopped();
      }
      const batchId = await batch.id();
      await uploadPartFile(deps.sink.batches, batchId, this.#job.index, deps, part, mapper, mine);
      if (!this.#aepIds.includes(batchId)) this.#aepIds.push(batchId);
    }
    const final = await this.#save('complete');
    if (final.read !== part.events || final.accepted + final.rejected !== final.read) {
      deps.log.error('receipt counts do not add up', {
        part: part.key,
        read: final.read,
        events: part.events,
        accepted: final.accepted,
        rejected: final.rejected,
      });
    }
    return { receipt: final, skipped: false };
  }

  #stopped(): PartOutcome {
    return { receipt: this.#receipt('partial'), skipped: false };
  }

  #reject(reason: string, detail: string, line: string, extra?: Record<string, unknown>): void {
    const pending = this.#pending;
    pending.rejected++;
    pending.byReason[reason] = (pending.byReason[reason] ?? 0) + 1;
    const window = this.#job.manifest.window.id;
    this.#pendingRejects.push(JSON.stringify({ reason, detail, window, part: this.#part.key, line, ...extra }));
  }

  /** Sends the chunk; returns false when it could not all be settled (deadline or failure) and progress was saved. */
  async #flush(endLine: number): Promise<boolean> {
    const { deps } = this.#job;
    const chunk = this.#chunk;
    const counts = this.#counts;
    let res: SendResult;
    let failure: unknown;
    if (chunk.length === 0 || deps.sink.kind === 'batch') {
      // Batch sink: records are uploaded as one file per part when the part is done (see `run`). Past the deadline
      // the chunk is left unsettled, as the streaming sink leaves unsent records: the resumed part redoes it.
      const late = chunk.length > 0 && this.#late();
      res = {
        accepted: late ? [] : chunk.map((r) => r.id),
        rejected: [],
        unsent: late ? chunk.map((r) => r.id) : [],
        ambiguous: [],
        aepIds: [],
        retried: 0,
        requests: 0,
        maxRequestBytes: 0,
      };
    } else {
      // Intent: which lines are about to be sent, so that a crash before the answer is recorded is visible on resume.
      const inFlight = { fromLine: this.#linesDone, toLine: endLine, records: chunk.length };
      await this.#durable('the receipt', () =>
        putJson(deps.s3, deps.bucket, this.#receiptKey, { ...this.#receipt('partial'), inFlight }),
      );
      try {
        res = await deps.sink.send(chunk, deps.deadlineMs === undefined ? {} : { deadlineMs: deps.deadlineMs });
      } catch (error) {
        if (!hasResult(error)) throw error;
        res = error.result;
        failure = error;
      }
    }
    const unsure = new Set(res.ambiguous);
    const inFlight = this.#inFlight;
    for (const id of res.accepted) {
      const line = this.#chunkLine.get(id) ?? -1;
      this.mine.add(id, line);
      counts.accepted++;
      if (this.#chunkNoIdentity.has(id)) counts.withoutIdentity++;
      if (inFlight !== undefined && line >= inFlight.fromLine && line < inFlight.toLine && !unsure.has(id)) {
        counts.ambiguous++;
      }
    }
    counts.retried += res.retried;
    counts.ambiguous += res.ambiguous.length;
    this.#aepIds.push(...res.aepIds);
    const settled = res.unsent.length === 0 && failure === undefined;
    if (!settled) {
      // Accepted ids of this chunk count as read and mapped now; everything else of the chunk is redone on resume.
      counts.read += res.accepted.length;
      counts.mapped += res.accepted.length;
      await this.#save('partial');
      if (failure !== undefined) throw failure;
      return false;
    }
    // Built only when DCS rejected some: a 5,000-entry map per chunk is garbage otherwise.
    const byId = res.rejected.length === 0 ? undefined : new Map(chunk.map((r) => [r.id, r.json]));
    for (const r of res.rejected) {
      const json = byId?.get(r.id);
      this.#reject('aep-rejected', r.reason, '', { id: r.id, status: r.status, record: json?.toString('utf8') ?? '' });
    }
    const pending = this.#pending;
    counts.read += pending.read;
    counts.mapped += pending.mapped;
    counts.rejected += pending.rejected;
    for (const [k, v] of Object.entries(pending.byReason)) counts.byReason[k] = (counts.byReason[k] ?? 0) + v;
    if (this.#pendingRejects.length > 0) {
      const key = deps.layout.rejectedKey(this.#job.ref, this.#rejectedKeys.length);
      const body = gzipSync(`${this.#pendingRejects.join('\n')}\n`);
      await this.#durable('rejected records', () =>
        deps.s3.send(
          new PutObjectCommand({
            Bucket: deps.bucket,
            Key: key,
            Body: body,
            ContentType: 'application/x-ndjson',
            ContentEncoding: 'gzip',
          }),
        ),
      );
      this.#rejectedKeys.push(key);
    }
    this.#linesDone = endLine;
    this.#chunk = [];
    this.#arena.reset();
    this.#chunkLine = new Map();
    this.#chunkNoIdentity = new Set();
    this.#pendingRejects = [];
    this.#pending = emptyPending();
    return true;
  }

  /** True once the invocation's sending deadline has passed. */
  #late(): boolean {
    const { deadlineMs, now } = this.#job.deps;
    return deadlineMs !== undefined && now() >= deadlineMs;
  }

  /** Saves the progress: ledger first, so a receipt never claims ids its ledger does not hold. */
  async #save(status: Receipt['status']): Promise<Receipt> {
    const { deps } = this.#job;
    const ids = this.mine.bytesView(); // written out before the next add
    await this.#durable('the id ledger', () =>
      deps.s3.send(
        new PutObjectCommand({
          Bucket: deps.bucket,
          Key: this.ledgerKey,
          Body: ids,
          ContentType: 'application/octet-stream',
        }),
      ),
    );
    const r = this.#receipt(status);
    await this.#durable('the receipt', () => putJson(deps.s3, deps.bucket, this.#receiptKey, r));
    return r;
  }

  /** A progress save, retried on transient S3 failures (see `SAVE_RETRY`). */
  #durable<T>(what: string, write: () => Promise<T>): Promise<T> {
    const { deps } = this.#job;
    const part = this.#part.key;
    return withRetry(`saving ${what} of part ${part}`, write, {
      policy: SAVE_RETRY,
      classify: (error) => (isTransientS3(error) ? { retry: true } : { retry: false }),
      now: deps.now,
      ...(deps.sleep !== undefined ? { sleep: deps.sleep } : {}),
      ...(deps.deadlineMs !== undefined ? { deadlineMs: deps.deadlineMs + SAVE_GRACE_MS } : {}),
      onRetry: ({ attempt, delayMs, error }) =>
        deps.log.warn('retrying a progress save', { what, part, attempt, delayMs, reason: (error as Error).message }),
    });
  }

  #receipt(status: Receipt['status']): Receipt {
    const { deps, manifest, ref, index, replay } = this.#job;
    const counts = this.#counts;
    return {
      version: 1,
      status,
      projectId: manifest.projectId,
      mode: manifest.mode,
      window: manifest.window.id,
      runId: ref.runId,
      part: index,
      partKey: this.#part.key,
      sink: deps.sink.kind,
      replay,
      linesDone: this.#linesDone,
      read: counts.read,
      mapped: counts.mapped,
      accepted: counts.accepted,
      rejected: counts.rejected,
      byReason: counts.byReason,
      retried: counts.retried,
      ambiguous: counts.ambiguous,
      withoutIdentity: counts.withoutIdentity,
      aepIds: this.#aepIds,
      rejectedKeys: this.#rejectedKeys,
      ledgerKey: this.ledgerKey,
      startedAt: this.#startedAt,
      updatedAt: new Date(deps.now()).toISOString(),
    };
  }
}

function hasResult(error: unknown): error is Error & FailureWithResult {
  return error instanceof Error && typeof (error as Partial<FailureWithResult>).result === 'object';
}
