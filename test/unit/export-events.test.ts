import { describe, expect, it } from 'vitest';
import { BadExportEventError, parseExportEvent } from '#export/events';

describe('parseExportEvent', () => {
  it('should read the Scheduler target input', () => {
    expect(parseExportEvent({ source: 'schedule', scheduledTime: '2024-05-01T12:00:00Z' })).toEqual({
      kind: 'scheduled',
      scheduledMs: Date.parse('2024-05-01T12:00:00Z'),
    });
  });

  it('should read a plain EventBridge rule event', () => {
    const event = {
      version: '0',
      id: 'x',
      'detail-type': 'Scheduled Event',
      source: 'aws.events',
      time: '2024-05-01T12:00:00Z',
      detail: {},
    };
    expect(parseExportEvent(event)).toEqual({ kind: 'scheduled', scheduledMs: Date.parse('2024-05-01T12:00:00Z') });
  });

  it('should read a manual backfill with defaults', () => {
    expect(parseExportEvent({ from: '2024-05-01', to: '2024-05-03T00:00:00Z', mode: 'event-time' })).toEqual({
      kind: 'manual',
      from: Date.parse('2024-05-01T00:00:00Z'),
      to: Date.parse('2024-05-03T00:00:00Z'),
      mode: 'event-time',
      dryRun: false,
      force: false,
    });
  });

  it.each([
    [{ from: '2024-05-03T00:00:00Z', to: '2024-05-01T00:00:00Z' }, /"from" must be before "to"/],
    [{ from: 'yesterday', to: '2024-05-01T00:00:00Z' }, /"from" must be an ISO-8601 time/],
    [{ from: '2024-05-01T00:00:00', to: '2024-05-02T00:00:00Z' }, /"from" must be an ISO-8601 time with a zone/],
    [{ from: '2024-05-01T00:00:00Z', to: '2024-05-02T00:00:00Z', window: 'x' }, /unknown field\(s\) "window"/],
    [
      { from: '2024-05-01T00:00:00Z', to: '2024-05-02T00:00:00Z', mode: 'ingest-time' },
      /"mode" must be "processing-time" or "event-time"/,
    ],
    [{ from: '2024-05-01T00:00:00Z', to: '2024-05-02T00:00:00Z', force: 'yes' }, /"force" must be true or false/],
    [{ source: 'schedule' }, /scheduledTime/],
    ['hello', /must be a JSON object/],
    [null, /must be a JSON object/],
  ])('should refuse %j with a message naming the problem', (event, message) => {
    expect(() => parseExportEvent(event)).toThrow(BadExportEventError);
    expect(() => parseExportEvent(event)).toThrow(message);
  });
});
