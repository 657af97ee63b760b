import { describe, expect, it } from 'vitest';
import { digest } from '#forward/ledger';
import { StagingLayout } from '#staging/layout';
import { idKey, readRefusal } from '#verify/platform';

describe("reading Platform's error files", () => {
  it('should read the _id and the first validation error of a failed streaming record', () => {
    const line = JSON.stringify({
      _id: 'abc',
      timestamp: '2026-01-01T00:00:00Z',
      _validationErrors: [
        { pointerToViolation: '#/_acme/plan', keyword: 'type', message: 'expected integer, found string' },
        { pointerToViolation: '#/x', keyword: 'required', message: 'x is required' },
      ],
    });
    expect(readRefusal(line, 'B1')).toEqual({
      id: 'abc',
      code: 'type',
      message: 'expected integer, found string at #/_acme/plan (+1 more)',
      batchId: 'B1',
    });
  });

  it('should read a row of the error diagnostics, with its code, and an _id inside a corrupt record', () => {
    const conversion = JSON.stringify({ _id: 'r1', _errors: [{ code: '1555', message: 'missing field' }] });
    expect(readRefusal(conversion, 'B2')).toMatchObject({ id: 'r1', code: '1555', message: 'missing field' });
    const corrupt = JSON.stringify({ _corrupt_record: '{"_id":"r\\"2","x":', _errors: [{ code: '1401' }] });
    expect(readRefusal(corrupt, 'B2')).toMatchObject({ id: 'r"2', code: '1401' });
    const nested = JSON.stringify({ _id: 'r3', _errors: { _streamingValidation: [{ message: 'bad' }] } });
    expect(readRefusal(nested, 'B3')).toMatchObject({ id: 'r3', code: 'unknown', message: 'bad' });
  });

  it('should skip blank or unreadable lines and say so when Platform gives no reason', () => {
    expect(readRefusal('', 'B')).toBeUndefined();
    expect(readRefusal('not json', 'B')).toBeUndefined();
    expect(readRefusal('[1]', 'B')).toBeUndefined();
    expect(readRefusal('{"_id":"z"}', 'B')).toMatchObject({ id: 'z', code: 'unknown' });
  });

  it('should key an _id the way the part ledgers store its digest', () => {
    const [hi, lo] = digest('some-id');
    expect(idKey('some-id')).toBe(`${hi | 0}:${lo | 0}`);
  });
});

describe('verify markers', () => {
  it('should name a pending run and read it back', () => {
    const layout = new StagingLayout('pre/');
    const ref = { projectId: '42', mode: 'event-time' as const, windowId: 'W1', runId: 'R1' };
    const key = layout.verifyPendingKey(ref);
    expect(key).toBe('pre/verify/pending/project=42/mode=event-time/window=W1/run=R1.json');
    expect(layout.parseVerifyPendingKey(key)).toEqual(ref);
    expect(layout.parseVerifyPendingKey('pre/verify/pending/other.json')).toBeUndefined();
    expect(layout.platformRejectedKey({ ...ref, part: 3 })).toBe(
      'pre/rejected/project=42/mode=event-time/window=W1/run=R1/platform-part-00003.jsonl.gz',
    );
  });
});
