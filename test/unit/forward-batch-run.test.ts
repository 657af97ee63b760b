import type { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { BATCH_STATUS_WAIT_MS, type BatchApi, type BatchState, closeBatch, RunBatch } from '#forward/batch-run';
import type { ForwardDeps } from '#forward/window';
import { StagingLayout } from '#staging/layout';

const quiet = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };

/** A batch API whose status reads answer `statuses` in turn (the last one repeats), and forward deps on a fake clock. */
function rig(statuses: string[], deadlineMs?: number) {
  let clock = 1_000_000;
  const waits: number[] = [];
  const calls: string[] = [];
  const saved: unknown[] = [];
  const api: BatchApi = {
    createBatch: async () => 'b-1',
    uploadFile: async () => undefined,
    completeBatch: async () => void calls.push('complete'),
    abortBatch: async () => void calls.push('abort'),
    batchStatus: async () => {
      calls.push('status');
      return { status: statuses.length > 1 ? statuses.shift()! : statuses[0]! };
    },
  };
  const s3 = { send: async (command: { input: { Body?: unknown } }) => void saved.push(command.input.Body) };
  const deps = {
    s3: s3 as unknown as S3Client,
    bucket: 'staging',
    layout: new StagingLayout(),
    sink: { kind: 'batch', batches: api },
    mapperFor: () => {
      throw new Error('not used');
    },
    now: () => clock,
    log: quiet,
    sleep: async (ms: number) => {
      waits.push(ms);
      clock += ms;
    },
    ...(deadlineMs === undefined ? {} : { deadlineMs }),
  } as unknown as ForwardDeps;
  return { api, deps, waits, calls, saved };
}

describe('closeBatch', () => {
  it('should poll the Catalog status through the injected sleep, doubling from 250 ms, until the batch settles', async () => {
    // Prepare: Platform takes three polls to promote the batch
    const { api, deps, waits, calls, saved } = rig(['loading', 'processing', 'staging', 'success']);
    // Act
    const state = await closeBatch(api, { batchId: 'b-1', status: 'loading' }, deps, 'k/batch.json', 'w');
    // Assess: no real timer was used, the waits follow the backoff, and the verdict was saved
    expect(state.status).toBe('success');
    expect(state.completedAt).toBeDefined();
    expect(waits).toEqual([250, 500, 1000]);
    expect(calls).toEqual(['complete', 'status', 'status', 'status', 'status']);
    expect(JSON.parse(String(saved.at(-1)))).toMatchObject({ batchId: 'b-1', status: 'success' });
  });

  it('should stop waiting after BATCH_STATUS_WAIT_MS and report the last status read', async () => {
    // Prepare: a batch that never settles
    const { api, deps, waits } = rig(['loading']);
    // Act
    const state = await closeBatch(api, { batchId: 'b-1', status: 'loading' }, deps, 'k/batch.json', 'w');
    // Assess: capped at 5 s a wait, and never past the bounded wait
    expect(state.status).toBe('loading');
    expect(Math.max(...waits)).toBe(5_000);
    expect(waits.reduce((a, b) => a + b, 0)).toBeLessThan(BATCH_STATUS_WAIT_MS);
    expect(waits.slice(0, 6)).toEqual([250, 500, 1000, 2000, 4000, 5000]);
  });

  it('should not wait past the invocation deadline nor complete a batch twice', async () => {
    // Prepare: one second left before the deadline; the batch was completed by an earlier attempt
    const start = 1_000_000;
    const { api, deps, waits, calls } = rig(['loading'], start + 1_000);
    const completedAt = new Date(start - 60_000).toISOString();
    // Act
    const state = await closeBatch(api, { batchId: 'b-1', status: 'loading', completedAt }, deps, 'k/batch.json', 'w');
    // Assess
    expect(state).toMatchObject({ status: 'loading', completedAt });
    expect(waits).toEqual([250, 500]);
    expect(calls).not.toContain('complete');
  });

  it('should fail when the Catalog read itself fails', async () => {
    const { api, deps } = rig(['loading']);
    api.batchStatus = async () => {
      throw new Error('Catalog answered 500');
    };
    await expect(closeBatch(api, { batchId: 'b-1', status: 'loading' }, deps, 'k/batch.json', 'w')).rejects.toThrow(
      'Catalog answered 500',
    );
  });
});

/** Batch API and forward deps over an in-memory bucket, counting what the batch API was asked. */
function memoryRig(objects = new Map<string, string>()) {
  const calls: string[] = [];
  let created = 0;
  const api: BatchApi = {
    createBatch: async () => {
      calls.push('create');
      // Platform answers after the other part asked too: both must get this one batch.
      await new Promise((resolve) => setTimeout(resolve, 5));
      return `b-${++created}`;
    },
    uploadFile: async () => void calls.push('upload'),
    completeBatch: async () => void calls.push('complete'),
    abortBatch: async (id) => void calls.push(`abort ${id}`),
    batchStatus: async () => {
      calls.push('status');
      return { status: 'success' };
    },
  };
  const s3 = {
    send: async (command: {
      constructor: { name: string };
      input: { Key: string; Body?: string; IfNoneMatch?: string };
    }) => {
      const { Key, Body, IfNoneMatch } = command.input;
      if (command.constructor.name === 'PutObjectCommand') {
        // S3 conditional writes: If-None-Match: * fails with 412 when the key exists.
        if (IfNoneMatch === '*' && objects.has(Key))
          throw Object.assign(new Error('PreconditionFailed'), { name: 'PreconditionFailed' });
        calls.push(`put ${Key}`);
        objects.set(Key, String(Body));
        return {};
      }
      const text = objects.get(Key);
      if (text === undefined) throw Object.assign(new Error('NoSuchKey'), { name: 'NoSuchKey' });
      return { Body: { transformToString: async () => text } };
    },
  };
  const deps = {
    s3: s3 as unknown as S3Client,
    bucket: 'staging',
    layout: new StagingLayout(),
    sink: { kind: 'batch', batches: api },
    now: () => 1_000_000,
    log: quiet,
    sleep: async () => undefined,
  } as unknown as ForwardDeps;
  return { api, deps, calls, objects };
}

describe('RunBatch', () => {
  it('should create no batch until a part asks for it, and complete none then', async () => {
    // Prepare
    const { api, deps, calls } = memoryRig();
    const run = await RunBatch.load(api, deps, 'k/batch.json');

    // Act
    const closed = await run.close('w');

    // Assess: nothing created, completed or saved
    expect(closed).toBeUndefined();
    expect(run.state).toBeUndefined();
    expect(calls).toEqual([]);
  });

  it('should create one batch for parts asking at once, saved before its id is handed out', async () => {
    // Prepare
    const { api, deps, calls, objects } = memoryRig();
    const run = await RunBatch.load(api, deps, 'k/batch.json');

    // Act
    const ids = await Promise.all([run.id(), run.id()]);

    // Assess
    expect(ids).toEqual(['b-1', 'b-1']);
    expect(calls).toEqual(['create', 'put k/batch.json']);
    expect(JSON.parse(objects.get('k/batch.json')!)).toEqual({ batchId: 'b-1', status: 'loading' });
    expect(await run.id()).toBe('b-1');
  });

  it('should reuse the batch an earlier attempt saved, and complete it', async () => {
    // Prepare: an earlier attempt created b-7 and stopped before completing it
    const saved: BatchState = { batchId: 'b-7', status: 'loading' };
    const { api, deps, calls } = memoryRig(new Map([['k/batch.json', JSON.stringify(saved)]]));
    const run = await RunBatch.load(api, deps, 'k/batch.json');

    // Act
    const id = await run.id();
    const closed = await run.close('w');

    // Assess
    expect(id).toBe('b-7');
    expect(calls).not.toContain('create');
    expect(closed).toMatchObject({ batchId: 'b-7', status: 'success' });
    // The intent to complete is saved before COMPLETE is sent.
    expect(calls.slice(0, 3)).toEqual(['put k/batch.json', 'complete', 'status']);
  });

  it('should keep one batch when two invocations create it at once, and abort the other', async () => {
    // Prepare: two invocations of the same run (two partitions), each with its own RunBatch
    const { api, deps, calls, objects } = memoryRig();
    const [a, b] = await Promise.all([
      RunBatch.load(api, deps, 'k/batch.json'),
      RunBatch.load(api, deps, 'k/batch.json'),
    ]);

    // Act
    const ids = await Promise.all([a.id(), b.id()]);

    // Assess: both fill the saved batch; the one created in the race is aborted, never left open
    const saved = (JSON.parse(objects.get('k/batch.json')!) as BatchState).batchId;
    expect(ids).toEqual([saved, saved]);
    expect(calls.filter((c) => c === 'create')).toHaveLength(2);
    expect(calls.filter((c) => c.startsWith('abort'))).toEqual([`abort ${saved === 'b-1' ? 'b-2' : 'b-1'}`]);
  });

  it('should use the batch another invocation saved after this one loaded, without creating one', async () => {
    // Prepare: this invocation loaded before the notification's invocation opened the run's batch
    const { api, deps, calls, objects } = memoryRig();
    const run = await RunBatch.load(api, deps, 'k/batch.json');
    objects.set('k/batch.json', JSON.stringify({ batchId: 'b-9', status: 'loading' }));

    // Act
    const id = await run.id();

    // Assess
    expect(id).toBe('b-9');
    expect(calls).not.toContain('create');
  });

  it('should abort, not complete, the batch of a run that had nothing to send', async () => {
    // Prepare: the batch was opened before the fan-out; every partition then found only duplicates
    const saved: BatchState = { batchId: 'b-3', status: 'loading' };
    const { api, deps, calls, objects } = memoryRig(new Map([['k/batch.json', JSON.stringify(saved)]]));
    const run = await RunBatch.load(api, deps, 'k/batch.json');

    // Act
    const closed = await run.close('w', { empty: true });
    const again = await run.close('w', { empty: true });

    // Assess: one ABORT, no COMPLETE, and the saved state says so
    expect(closed).toMatchObject({ batchId: 'b-3', status: 'aborted' });
    expect(again).toMatchObject({ status: 'aborted' });
    expect(calls.filter((c) => c === 'complete' || c.startsWith('abort'))).toEqual(['abort b-3']);
    expect(JSON.parse(objects.get('k/batch.json')!)).toMatchObject({ status: 'aborted' });
  });

  it('should not send COMPLETE again when an earlier close stopped after sending it', async () => {
    // Prepare: the intent was saved, COMPLETE went through, the process died before completedAt was saved
    const saved: BatchState = { batchId: 'b-4', status: 'loading', completing: '2026-12-03T00:00:00.000Z' };
    const { api, deps, calls } = memoryRig(new Map([['k/batch.json', JSON.stringify(saved)]]));
    const run = await RunBatch.load(api, deps, 'k/batch.json');

    // Act
    const closed = await run.close('w');

    // Assess: Catalog says the batch is past loading, so COMPLETE is not sent a second time
    expect(closed).toMatchObject({ batchId: 'b-4', status: 'success' });
    expect(closed?.completedAt).toBeDefined();
    expect(calls).not.toContain('complete');
  });

  it('should try to create the batch again after a failed creation', async () => {
    // Prepare
    const { api, deps, calls } = memoryRig();
    const create = api.createBatch;
    api.createBatch = async () => {
      api.createBatch = create;
      throw new Error('Platform answered 503');
    };
    const run = await RunBatch.load(api, deps, 'k/batch.json');

    // Act
    const first = await run.id().catch((error: Error) => error.message);
    const second = await run.id();

    // Assess
    expect(first).toBe('Platform answered 503');
    expect(second).toBe('b-1');
    expect(calls.filter((c) => c === 'create')).toHaveLength(1);
  });
});

describe('closeBatch and the Catalog vocabulary', () => {
  it.each([
    ['active', 'succeeded'],
    ['failure', 'failed'],
    ['stalled', 'failed'],
  ])('should stop waiting at the final word %s', async (word) => {
    // Prepare: Platform walks documented in-progress words first
    const { api, deps, calls } = rig(['staging', 'retrying', 'queued', word]);

    // Act
    const state = await closeBatch(api, { batchId: 'b-1', status: 'loading' }, deps, 'k/batch.json', 'w');

    // Assess
    expect(state.status).toBe(word);
    expect(calls.filter((c) => c === 'status')).toHaveLength(4);
  });

  it('should keep waiting on a word the docs do not list, and log a failed batch', async () => {
    // Prepare
    const errors: unknown[] = [];
    const { api, deps, calls } = rig(['mystery', 'failure']);
    (deps as { log: unknown }).log = { ...quiet, error: (...args: unknown[]) => void errors.push(args) };

    // Act
    const state = await closeBatch(api, { batchId: 'b-1', status: 'loading' }, deps, 'k/batch.json', 'w');

    // Assess
    expect(state.status).toBe('failure');
    expect(calls.filter((c) => c === 'status')).toHaveLength(2);
    expect(JSON.stringify(errors)).toMatch(/Platform failed the batch.*"status":"failure"/);
  });
});
