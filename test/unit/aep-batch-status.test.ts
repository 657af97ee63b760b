import { describe, expect, it } from 'vitest';
import { BATCH_STATUS_PHASES, batchPhase } from '#aep/batch-status';
import { PROMOTION_STATES } from '#emulators/aep/batch';

/**
 * The `status` enum of Catalog's `batchResponse` (AdobeDocs/experience-platform-apis static/swagger-specs/catalog.yaml)
 * and the extra states of the "Batch States" table (help/ingestion/batch-ingestion/troubleshooting.md).
 */
const CATALOG_ENUM = [
  'processing',
  'success',
  'failure',
  'queued',
  'retrying',
  'stalled',
  'aborted',
  'abandoned',
  'inactive',
  'failed',
  'loading',
  'loaded',
  'staged',
  'active',
  'staging',
  'deleted',
];
const TROUBLESHOOTING_ONLY = ['archived', 'retained'];

describe('batchPhase', () => {
  it('should classify every status word of the Catalog docs, and no other', () => {
    expect(Object.keys(BATCH_STATUS_PHASES).sort()).toEqual([...CATALOG_ENUM, ...TROUBLESHOOTING_ONLY].sort());
    for (const word of [...CATALOG_ENUM, ...TROUBLESHOOTING_ONLY]) expect(batchPhase(word)).not.toBe('unknown');
  });

  it.each([
    ['loading', 'in-progress'],
    ['loaded', 'in-progress'],
    ['staged', 'in-progress'],
    ['staging', 'in-progress'],
    ['processing', 'in-progress'],
    ['queued', 'in-progress'],
    ['retrying', 'in-progress'],
    ['success', 'succeeded'],
    ['active', 'succeeded'],
    ['inactive', 'succeeded'],
    ['archived', 'succeeded'],
    ['retained', 'succeeded'],
    ['failed', 'failed'],
    ['failure', 'failed'],
    ['aborted', 'failed'],
    ['abandoned', 'failed'],
    ['stalled', 'failed'],
    ['deleted', 'failed'],
  ])('should read %s as %s', (word, phase) => {
    expect(batchPhase(word)).toBe(phase);
  });

  it('should read the words in any case, and anything else as unknown', () => {
    expect([batchPhase('Active'), batchPhase('FAILURE'), batchPhase('Staging')]).toEqual([
      'succeeded',
      'failed',
      'in-progress',
    ]);
    expect([batchPhase(''), batchPhase('done'), batchPhase('toString'), batchPhase('unknown')]).toEqual([
      'unknown',
      'unknown',
      'unknown',
      'unknown',
    ]);
  });

  it('should know every word the AEP emulator can report', () => {
    for (const word of [...PROMOTION_STATES, 'loading', 'aborted']) expect(batchPhase(word)).not.toBe('unknown');
  });
});
