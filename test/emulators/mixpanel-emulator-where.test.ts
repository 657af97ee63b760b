import { describe, expect, it } from 'vitest';
import type { MixpanelEvent } from '../../emulators/mixpanel/generator.ts';
import { compileWhere, parseWhere, WhereSyntaxError } from '../../emulators/mixpanel/where.ts';

const EVENT: MixpanelEvent = {
  event: 'Order Completed',
  properties: {
    time: Date.UTC(2024, 2, 10, 12, 30, 0) / 1000,
    distinct_id: 'user-1',
    mp_processing_time_ms: 1_700_000_500_000,
    plan: 'pro',
    revenue: 129.99,
    quantity_text: '42',
    not_a_number: 'forty-two',
    paid: true,
    coupon: null,
    tags: ['sale', '🔥'],
    city: 'São Paulo',
  },
};

function matches(where: string, e: MixpanelEvent = EVENT): boolean {
  return parseWhere(where)(e);
}

function syntaxError(where: string): WhereSyntaxError {
  try {
    parseWhere(where);
  } catch (error) {
    if (error instanceof WhereSyntaxError) return error;
    throw error;
  }
  throw new Error(`expected a syntax error for ${where}`);
}

describe('where: the connector expression', () => {
  it('should select a half-open processing-time window and expose its bounds', () => {
    // Prepare
    const where =
      'number(properties["mp_processing_time_ms"]) >= 1700000000000 and number(properties["mp_processing_time_ms"]) < 1700003600000';
    const at = (ms: number): MixpanelEvent => ({ event: 'e', properties: { mp_processing_time_ms: ms } });
    // Act
    const compiled = compileWhere(where);
    // Assess
    expect(compiled.test(at(1_700_000_000_000))).toBe(true);
    expect(compiled.test(at(1_700_003_599_999))).toBe(true);
    expect(compiled.test(at(1_700_003_600_000))).toBe(false);
    expect(compiled.test(at(1_699_999_999_999))).toBe(false);
    expect(compiled.test({ event: 'e', properties: {} })).toBe(false);
    expect(compiled.processingTime).toEqual({ lo: 1_700_000_000_000, hi: 1_700_003_600_000 });
    expect([...compiled.properties]).toEqual(['mp_processing_time_ms']);
  });

  it('should derive bounds from flipped and strict comparisons, and none under or', () => {
    // Act
    const flipped = compileWhere(
      '1000 <= properties["mp_processing_time_ms"] and 2000 > properties["mp_processing_time_ms"]',
    );
    const strict = compileWhere(
      'properties["mp_processing_time_ms"] > 1000 and properties["mp_processing_time_ms"] <= 2000',
    );
    const either = compileWhere(
      'properties["mp_processing_time_ms"] < 1000 or properties["mp_processing_time_ms"] >= 2000',
    );
    // Assess
    expect(flipped.processingTime).toEqual({ lo: 1000, hi: 2000 });
    expect(strict.processingTime).toEqual({ lo: 1001, hi: 2001 });
    expect(either.processingTime).toEqual({ lo: Number.NEGATIVE_INFINITY, hi: Number.POSITIVE_INFINITY });
  });
});

describe('where: supported forms', () => {
  it('should compare strings, numbers and booleans, with typed equality', () => {
    expect(matches('properties["plan"] == "pro"')).toBe(true);
    expect(matches("properties['plan'] != 'free'")).toBe(true);
    expect(matches('properties["revenue"] > 100 and properties["revenue"] <= 129.99')).toBe(true);
    expect(matches('properties["paid"] == true')).toBe(true);
    expect(matches('properties["paid"] == false')).toBe(false);
    expect(matches('properties["city"] == "São Paulo"')).toBe(true);
    // Different types are never equal; ordering needs numbers
    expect(matches('properties["quantity_text"] == 42')).toBe(false);
    expect(matches('properties["plan"] > "a"')).toBe(false);
  });

  it('should cast with number() and string()', () => {
    expect(matches('number(properties["quantity_text"]) == 42')).toBe(true);
    expect(matches('number(properties["quantity_text"]) + 1 == 43')).toBe(true);
    expect(matches('number(properties["not_a_number"]) >= 0')).toBe(false);
    expect(matches('string(properties["revenue"]) == "129.99"')).toBe(true);
    expect(matches('string(properties["paid"]) == "true"')).toBe(true);
  });

  it('should compare event time with datetime() strings and epoch seconds, never with a bare number', () => {
    const t = EVENT.properties.time as number;
    expect(matches('event["$time"] >= datetime("2024-03-10T12:30:00")')).toBe(true);
    expect(matches('event["$time"] > datetime("2024-03-10T12:30:00")')).toBe(false);
    expect(matches(`properties["$time"] < datetime(${t + 1})`)).toBe(true);
    expect(matches(`properties["time"] == datetime(${t})`)).toBe(true);
    expect(matches(`properties["time"] >= ${t - 10}`)).toBe(false);
    // time_in_ms exports carry ms in `time`: still the same instant
    const inMs: MixpanelEvent = { event: 'e', properties: { time: t * 1000 + 250 } };
    expect(matches('event["$time"] >= datetime("2024-03-10T12:30:00")', inMs)).toBe(true);
  });

  it('should test presence with defined(), null counting as not set', () => {
    expect(matches('defined(properties["plan"])')).toBe(true);
    expect(matches('defined(properties["missing"])')).toBe(false);
    expect(matches('not defined(properties["missing"])')).toBe(true);
    expect(matches('defined(properties["coupon"])')).toBe(false);
  });

  it('should read the event name and membership with in', () => {
    expect(matches('event["$event_name"] == "Order Completed"')).toBe(true);
    expect(matches('"sale" in properties["tags"]')).toBe(true);
    expect(matches('"ro" in properties["plan"]')).toBe(true);
    expect(matches('properties["plan"] in ["free", "pro"]')).toBe(true);
    expect(matches('properties["plan"] in ["free", "team"]')).toBe(false);
  });
});

describe("where: the forms of Mixpanel's docs", () => {
  it('should read the operator words in capitals as in lowercase', () => {
    // Act
    const upper = [
      matches('properties["plan"] == "pro" AND properties["paid"] == true'),
      matches('properties["plan"] == "free" OR properties["revenue"] > 100'),
      matches('NOT defined(properties["city"])'),
      matches('"Paulo" IN properties["city"]'),
    ];

    // Assess
    expect(upper).toEqual([true, true, false, true]);
    expect(
      compileWhere(
        'number(properties["mp_processing_time_ms"]) >= 1 AND number(properties["mp_processing_time_ms"]) < 9',
      ).processingTime,
    ).toEqual({ lo: 1, hi: 9 });
  });

  it('should evaluate the examples of the segmentation expressions page', () => {
    // Act
    const examples = [
      matches('properties["quantity_text"] in ["1", "42"]'),
      matches('defined(properties["plan"])'),
      matches('not defined(properties["city"])'),
    ];

    // Assess
    expect(examples).toEqual([true, true, false]);
  });
});

/**
 * Every `where` form mixpanel/docs shows: the examples of reference/segmentation-expressions.mdx (its grammar, its
 * table of examples and its typecast section) and the `where` example of openapi/query.openapi.yaml. The raw export's
 * own reference (openapi/export.openapi.yaml) gives no example and points to that page.
 */
describe('where: every example of the docs', () => {
  const docs: MixpanelEvent = {
    event: 'Signed up',
    properties: {
      time: Date.UTC(2024, 2, 10, 12) / 1000,
      account_id: 3,
      'My Prop': 'x',
      $os: 'Linux',
      'signed up': 'true',
    },
  };

  it.each([
    ['properties["account_id"] in [1,2,3,4]', true],
    ['properties["account_id"] in [5,6]', false],
    ['user["$email"] == "allison@example.com"', false],
    ['not defined(user["$email"])', true],
    ['defined(properties["My Prop"])', true],
    ['not defined(properties["city"])', true],
    ['event["$time"] >= datetime("2024-03-10T00:00:00")', true],
    ['event["$time"] >= datetime("2024-03-11T00:00:00")', false],
    ['properties["$os"]=="Linux"', true],
    ['boolean(properties["signed up"])', true],
    ['number(properties["account_id"]) + 1 == 4 and string(properties["account_id"]) == "3"', true],
    ['floor(properties["account_id"] / 2) == 1 and ceil(1.5) == 2 and round(2.4) == 2', true],
    ['-properties["account_id"] < 0 or false', true],
  ])('should evaluate %s', (where, expected) => {
    expect(matches(where, docs)).toBe(expected);
  });
});

describe('where: precedence', () => {
  it('should bind and tighter than or, and not tighter than and but looser than comparisons', () => {
    // `true or false and false` is `true or (false and false)`
    expect(matches('properties["plan"] == "pro" or properties["plan"] == "x" and properties["paid"] == false')).toBe(
      true,
    );
    // `(true or false) and false`
    expect(matches('(properties["plan"] == "pro" or properties["plan"] == "x") and properties["paid"] == false')).toBe(
      false,
    );
    // `not a and b` is `(not a) and b`
    expect(matches('not properties["plan"] == "free" and properties["paid"] == true')).toBe(true);
    expect(matches('not (properties["plan"] == "pro" and properties["paid"] == true)')).toBe(false);
    // `not` of something undefined is true; `and`/`or` read undefined as false
    expect(matches('not properties["missing"]')).toBe(true);
    expect(matches('properties["missing"] or properties["plan"] == "pro"')).toBe(true);
    expect(matches('properties["missing"] and properties["plan"] == "pro"')).toBe(false);
  });

  it('should apply arithmetic before comparison', () => {
    expect(matches('properties["revenue"] * 100 == 12999')).toBe(true);
    expect(matches('1 + 2 * 3 == 7')).toBe(true);
    expect(matches('-properties["revenue"] < 0')).toBe(true);
  });
});

describe('where: errors', () => {
  it('should reject malformed expressions with a position', () => {
    // Act
    const cases = {
      empty: syntaxError('   '),
      assign: syntaxError('properties["plan"] = "pro"'),
      upper: syntaxError('PROPERTIES["plan"] == "pro"'),
      symbols: syntaxError('properties["plan"] == "pro" && true'),
      unquoted: syntaxError('properties[plan] == "pro"'),
      unclosed: syntaxError('(properties["plan"] == "pro"'),
      string: syntaxError('properties["plan"] == "pro'),
      date: syntaxError('event["$time"] > datetime("2024-02-30T00:00:00")'),
      profile: syntaxError('people["$email"] == "a@b.c"'),
      trailing: syntaxError('properties["plan"] == "pro" "x"'),
      unknown: syntaxError('frobnicate(properties["plan"])'),
    };
    // Assess
    expect(cases.empty.message).toMatch(/empty expression/);
    expect(cases.assign.message).toMatch(/use '==' to compare\) at position 19$/);
    expect(cases.upper.message).toMatch(/'PROPERTIES'.*lowercase/);
    expect(cases.symbols.message).toMatch(/use the keywords and, or, not/);
    expect(cases.unquoted.message).toMatch(/quoted property name/);
    expect(cases.unclosed.message).toMatch(/expected '\)'/);
    expect(cases.string.message).toMatch(/unterminated string/);
    expect(cases.date.message).toMatch(/invalid datetime/);
    expect(cases.profile.message).toMatch(/unknown identifier 'people' \(profile properties are read with user\[…\]\)/);
    expect(cases.trailing.message).toMatch(/unexpected string "x"/);
    expect(cases.unknown.message).toMatch(/unknown identifier 'frobnicate'/);
    expect(Object.values(cases).every((e) => Number.isInteger(e.position))).toBe(true);
  });
});
