import { describe, expect, it } from 'vitest';
import {
  checkStreamingMessage,
  checkXdmRecord,
  MAX_PROBLEMS_PER_RECORD,
  MAX_RECORD_BYTES,
  parseDateTime,
  XDM_FULL_CONTENT_TYPE,
} from '../../emulators/aep/xdm-checks.ts';

const NOW = Date.parse('2024-06-01T12:00:00.000Z');
const SCHEMA = 'https://ns.adobe.com/acme/schemas/0123456789abcdef';
const ORG = 'ORG1@AdobeOrg';

function record(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    _id: 'evt-1',
    timestamp: '2024-05-31T23:59:59.123Z',
    eventType: 'mixpanel.event',
    identityMap: { MixpanelDistinctId: [{ id: 'user@example.com', primary: true, authenticatedState: 'ambiguous' }] },
    web: { webPageDetails: { URL: 'https://example.com/' } },
    _acme: { mixpanel: { eventName: 'Sign in', properties: { plan: 'pro' } } },
    ...overrides,
  };
}

const check = (value: unknown, extra: Partial<Parameters<typeof checkXdmRecord>[1]> = {}) =>
  checkXdmRecord(value, { tenant: 'acme', nowMs: NOW, ...extra });

describe('AEP emulator XDM checks', () => {
  it('should find nothing wrong with a well-formed ExperienceEvent', () => {
    // Prepare
    const valid = record();

    // Act
    const problems = check(valid);

    // Assess
    expect(problems).toEqual([]);
  });

  it('should name the path of every null, empty string, empty array and empty object', () => {
    // Prepare
    const bad = record({
      web: { webPageDetails: { URL: '' } },
      _acme: { mixpanel: { plan: null, tags: [], extra: {}, list: ['a', { deep: null }] } },
    });

    // Act
    const problems = check(bad);

    // Assess
    expect(problems.map((p) => p.pointerToViolation).sort()).toEqual([
      '#/_acme/mixpanel/extra',
      '#/_acme/mixpanel/list/1/deep',
      '#/_acme/mixpanel/plan',
      '#/_acme/mixpanel/tags',
      '#/web/webPageDetails/URL',
    ]);
  });

  it('should refuse custom fields outside the tenant object and unknown top-level keys', () => {
    // Prepare
    const bad = record({ _other: { x: 1 }, plan: 'pro' });

    // Act
    const messages = check(bad).map((p) => p.message);

    // Assess
    expect(messages).toEqual([
      'extraneous key [_other] is not permitted (custom fields belong under _acme)',
      'extraneous key [plan] is not permitted',
    ]);
  });

  it('should require _id as a non-empty string and timestamp as an XDM date-time in the past', () => {
    // Prepare
    const cases = [
      record({ _id: undefined }),
      record({ _id: '' }),
      record({ _id: 42 }),
      record({ timestamp: undefined }),
      record({ timestamp: '2024-02-30T10:00:00Z' }),
      record({ timestamp: '2024-05-31 10:00:00' }),
      record({ timestamp: 1717200000000 }),
      record({ timestamp: '2024-06-01T12:10:00Z' }),
    ];

    // Act
    const results = cases.map((c) =>
      check(JSON.parse(JSON.stringify(c))).map((p) => `${p.keyword} ${p.pointerToViolation}`),
    );

    // Assess
    expect(results).toEqual([
      ['required #'],
      ['minLength #/_id'],
      ['type #/_id'],
      ['required #'],
      ['format #/timestamp'],
      ['format #/timestamp'],
      ['type #/timestamp'],
      ['future #/timestamp'],
    ]);
  });

  it('should accept every date-time form Platform lists, and epoch milliseconds only where batch ingestion converts them', () => {
    // Prepare
    const forms = [
      '2024-05-31T10:00:00Z',
      '2024-05-31T10:00:00.123456789Z',
      '2024-05-31T10:00:00+02:00',
      '2024-05-31T10:00:00.5-07:30',
      '2024-02-29T00:00:00Z',
    ];

    // Act
    const parsed = forms.map(parseDateTime);
    const epoch = check(record({ timestamp: 1717200000000 - 86_400_000 }), { allowEpochMillisTimestamp: true });

    // Assess
    expect(parsed.every((ms) => typeof ms === 'number')).toBe(true);
    expect(parsed[2]).toBe(Date.parse('2024-05-31T08:00:00Z'));
    expect(parseDateTime('2023-02-29T00:00:00Z')).toBeUndefined();
    expect(epoch).toEqual([]);
  });

  it('should check identityMap: non-empty arrays of {id, primary?, authenticatedState?} with at most one primary', () => {
    // Prepare
    const bad = record({
      identityMap: {
        A: [{ id: 'a', primary: true }],
        B: [{ id: 'b', primary: true, authenticatedState: 'signedIn' }],
        C: [],
        D: [{ primary: false, extra: 1 }],
      },
    });

    // Act
    const problems = check(bad).map((p) => `${p.pointerToViolation} ${p.keyword}`);

    // Assess
    expect(problems).toEqual([
      '#/identityMap/B/0/authenticatedState enum',
      '#/identityMap/C minItems',
      '#/identityMap/D/0 additionalProperties',
      '#/identityMap/D/0/id required',
      '#/identityMap enum',
    ]);
  });

  it('should stop at five problems, like Platform, and survive deep nesting', () => {
    // Prepare
    let deep: unknown = null;
    for (let i = 0; i < 100_000; i += 1) deep = [deep];
    const many = record({ _acme: { a: null, b: null, c: null, d: null, e: null, f: null, g: null } });

    // Act
    const manyProblems = check(many);
    const deepProblems = check(record({ _acme: { deep } }));

    // Assess
    expect(manyProblems).toHaveLength(MAX_PROBLEMS_PER_RECORD);
    expect(deepProblems).toHaveLength(1);
    expect(deepProblems[0]?.pointerToViolation).toMatch(/^#\/_acme\/deep(\/0){100000}$/);
  });

  it('should refuse a record over the 1 MB record limit when its size is known', () => {
    // Prepare
    const valid = record();

    // Act
    const problems = check(valid, { sizeBytes: MAX_RECORD_BYTES + 1 });

    // Assess
    expect(problems.map((p) => p.keyword)).toEqual(['maxLength']);
  });

  it('should check the streaming envelope with DCS wording', () => {
    // Prepare
    const ref = { id: SCHEMA, contentType: XDM_FULL_CONTENT_TYPE };
    const envelope = {
      datasets: new Map([['ds1', SCHEMA]]),
      orgIds: new Set([ORG]),
      flows: new Map([['flow-1', { connectionId: 'inlet-1', datasetId: 'ds1' }]]),
      connectionId: 'inlet-1',
    };
    const message = (
      header: Record<string, unknown>,
      body: Record<string, unknown> = { xdmMeta: { schemaRef: ref }, xdmEntity: record() },
    ) => ({
      header: { schemaRef: ref, imsOrgId: ORG, datasetId: 'ds1', flowId: 'flow-1', source: { name: 'src' }, ...header },
      body,
    });
    const options = { tenant: 'acme', nowMs: NOW };

    // Act
    const results = [
      message({}),
      message({ imsOrgId: 'OTHER@AdobeOrg' }),
      message({ datasetId: 'nope' }),
      message({ schemaRef: { id: 'https://ns.adobe.com/acme/schemas/other', contentType: XDM_FULL_CONTENT_TYPE } }),
      message({ schemaRef: { id: SCHEMA, contentType: 'application/json' } }),
      message({}, { xdmMeta: { schemaRef: ref } }),
      { header: { schemaRef: ref, imsOrgId: ORG, datasetId: 'ds1', flowId: 'flow-1' } },
    ].map((m) => checkStreamingMessage(m, envelope, options));

    // Assess
    expect(results[0]).toMatchObject({ ok: true, datasetId: 'ds1' });
    expect(results.slice(1).map((r) => (r.ok ? 'ok' : r.message.split(':')[0]))).toEqual([
      'Message has an absent or wrong ims org in the header',
      'Dataset [nope] does not exist',
      'Message has unknown xdm format',
      'Message has unknown xdm format',
      'Payload body is missing xdmEntity',
      'Message has unknown xdm format',
    ]);
  });
});
