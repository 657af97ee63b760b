import { describe, expect, it } from 'vitest';
import { checkXdmRecord } from '../../emulators/aep/xdm-checks.ts';
import { generateDataset } from '../../emulators/mixpanel/generator.ts';
import { compileMapper, presetConfig } from '#mapping/index';

const NOW = Date.parse('2024-06-02T00:00:00.000Z');
const check = (value: unknown) => checkXdmRecord(value, { tenant: 'acme', nowMs: NOW });

function record(fields: Record<string, unknown>): Record<string, unknown> {
  return { _id: 'evt-1', timestamp: '2024-05-31T23:59:59.123Z', eventType: 'commerce.purchases', ...fields };
}

describe('AEP emulator standard field types', () => {
  it('should accept the standard fields with their official types', () => {
    const valid = record({
      web: {
        webPageDetails: { URL: 'https://example.com/', pageViews: { value: 1 } },
        webInteraction: { type: 'other' },
      },
      environment: { type: 'application', connectionType: 'mobile_lte', browserDetails: { viewportWidth: 1280 } },
      device: { type: 'phablet', screenWidth: 393 },
      placeContext: { geo: { countryCode: 'SE', stateProvince: 'Skåne' } },
      application: { sessionLength: 43, closeType: 'close', launches: { value: 1 }, isLaunch: true },
      commerce: { purchases: { value: 1 }, order: { purchaseID: 'ORD-1', priceTotal: 12.5, currencyCode: 'EUR' } },
      productListItems: [{ SKU: 'sku-1', quantity: 2, priceTotal: 25, currencyCode: 'EUR' }],
    });

    // `device.type` is an open list (meta:enum) and stateProvince's official pattern is unanchored: both pass.
    expect(check(valid)).toEqual([]);
  });

  it('should refuse a number where XDM wants an integer, text where it wants a number, and closed-enum misses', () => {
    const problems = check(
      record({
        device: { screenWidth: 393.5 },
        web: { webPageDetails: { pageViews: { value: '1' } } },
        environment: { connectionType: '5g' },
        application: { closeType: 'crash' },
      }),
    );

    expect(problems.map((p) => [p.pointerToViolation, p.keyword])).toEqual([
      ['#/web/webPageDetails/pageViews/value', 'type'],
      ['#/environment/connectionType', 'enum'],
      ['#/device/screenWidth', 'type'],
      ['#/application/closeType', 'enum'],
    ]);
  });

  it('should refuse bad country and currency codes, a negative session length and bad product lines', () => {
    const problems = check(
      record({
        placeContext: { geo: { countryCode: 'USA' } },
        application: { sessionLength: -1 },
        commerce: { order: { currencyCode: 'eur' } },
        productListItems: [{ quantity: 1.5, priceTotal: 'free' }],
      }),
    );

    expect(problems.map((p) => [p.pointerToViolation, p.keyword])).toEqual([
      ['#/placeContext/geo/countryCode', 'pattern'],
      ['#/application/sessionLength', 'minimum'],
      ['#/commerce/order/currencyCode', 'pattern'],
      ['#/productListItems/0/quantity', 'type'],
      ['#/productListItems/0/priceTotal', 'type'],
    ]);
  });

  it('should accept every record the default mapping makes of a demo dataset', () => {
    const mapper = compileMapper(presetConfig('default'), {
      projectId: '1',
      tenant: 'acme',
      projectTimezone: 'UTC',
      legacyLocalTime: false,
    });
    const start = Date.parse('2024-06-01T00:00:00Z');
    const refused: string[] = [];
    let count = 0;
    for (const event of generateDataset({ seed: 5, count: 3000, start, end: start + 3_600_000, largeFraction: 0 })) {
      const out = mapper(event);
      if (!out.ok) continue;
      count++;
      const problems = check(out.record);
      if (problems.length > 0) refused.push(`${event.event}: ${JSON.stringify(problems)}`);
    }

    expect(count).toBeGreaterThan(2900);
    expect(refused).toEqual([]);
  });
});
