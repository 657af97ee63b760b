/** Placeholder until batch-status's classifier lands. */
export function batchPhase(status: string): 'in-progress' | 'succeeded' | 'failed' | 'unknown' {
  if (status === 'success') return 'succeeded';
  if (['failed', 'failure', 'aborted', 'abandoned'].includes(status)) return 'failed';
  if (['loading', 'staging', 'processing', 'queued', 'retrying', 'stalled', 'active'].includes(status))
    return 'in-progress';
  return 'unknown';
}
