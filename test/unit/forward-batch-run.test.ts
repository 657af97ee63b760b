import type { S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { BATCH_STATUS_WAIT_MS, type BatchApi, closeBatch } from '#forward/batch-run';
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
