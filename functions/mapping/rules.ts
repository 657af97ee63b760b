/**
 * The per-event-name part of the mapper, precompiled: `eventType`, the constants of the standard events table
 * (event-types.ts), the commerce fields (commerce.ts) and the fields derived from several properties
 * (environment.ts). Property values are read from the mapper's slots, so `drop` and `hash` apply to them too.
 */
import type { MappingPlan } from './config.ts';
import {
  COMMERCE_COUNTERS,
  type CommercePlan,
  currencyCode,
  IAP_PROPERTIES,
  lineItem,
  type ProductListItem,
  productItem,
} from './commerce.ts';
import { connectionType, deviceType, environmentType } from './environment.ts';

interface CompiledConstant {
  container: number;
  key: string;
  value: unknown;
}

export interface CompiledRule {
  eventType: string;
  constants: readonly CompiledConstant[];
  /** Index in COMMERCE_COUNTERS, or -1. */
  commerce: number;
  /** `$ae_iap`: one product from its own properties. */
  iap: boolean;
}

interface CommerceSlots {
  plan: CommercePlan;
  orderId: number;
  priceTotal: number;
  currency: number;
  items: number;
  product: number;
  quantity: number;
  iapName: number;
  iapQuantity: number;
  iapPrice: number;
  order: number;
}

interface EnvironmentSlots {
  lib: number;
  device: number;
  model: number;
  wifi: number;
  radio: number;
  environment: number;
  deviceContainer: number;
}

export interface CompiledRules {
  byName: ReadonlyMap<string, CompiledRule>;
  fallback: CompiledRule;
  commerce: CommerceSlots | null;
  environment: EnvironmentSlots | null;
}

const PURCHASES = COMMERCE_COUNTERS.indexOf('purchases');

/**
 * Compiles the plan's event rules against the mapper's slot and container allocators; null when the records carry no
 * eventType (preset adobe-source without `eventTypes`).
 */
export function compileRules(
  plan: MappingPlan,
  slot: (key: string) => number,
  container: (path: readonly string[]) => number,
): CompiledRules | null {
  if (plan.eventRules === null) return null;
  const byName = new Map<string, CompiledRule>();
  for (const [name, rule] of plan.eventRules) {
    byName.set(name, {
      eventType: rule.eventType,
      constants: rule.constants.map((c) => {
        const path = c.path.split('.');
        return { container: container(path.slice(0, -1)), key: path[path.length - 1] as string, value: c.value };
      }),
      commerce: rule.commerce === null ? -1 : COMMERCE_COUNTERS.indexOf(rule.commerce),
      iap: name === '$ae_iap' && rule.commerce !== null,
    });
  }
  const c = plan.commerce;
  const derive = plan.preset === 'default';
  return {
    byName,
    fallback: { eventType: plan.fallbackEventType, constants: [], commerce: -1, iap: false },
    commerce:
      c === null
        ? null
        : {
            plan: c,
            orderId: slot(c.properties.orderId),
            priceTotal: slot(c.properties.priceTotal),
            currency: slot(c.properties.currency),
            items: slot(c.properties.items),
            product: slot(c.properties.product),
            quantity: slot(c.properties.quantity),
            iapName: slot(IAP_PROPERTIES.name),
            iapQuantity: slot(IAP_PROPERTIES.quantity),
            iapPrice: slot(IAP_PROPERTIES.price),
            order: container(['commerce', 'order']),
          },
    environment: derive
      ? {
          lib: slot('mp_lib'),
          device: slot('$device'),
          model: slot('$model'),
          wifi: slot('$wifi'),
          radio: slot('$radio'),
          environment: container(['environment']),
          deviceContainer: container(['device']),
        }
      : null,
  };
}

/** The rule of an event name (the fallback for names in no table). */
export function ruleOf(rules: CompiledRules, name: string): CompiledRule {
  return rules.byName.get(name) ?? rules.fallback;
}

/** Writes a rule's constants, commerce fields and derived fields into the record being built. */
export function writeRule(
  rules: CompiledRules,
  rule: CompiledRule,
  record: Record<string, unknown>,
  values: readonly unknown[],
  ensure: (container: number) => Record<string, unknown>,
): void {
  for (const c of rule.constants) ensure(c.container)[c.key] = c.value;
  const env = rules.environment;
  if (env !== null) {
    const lib = values[env.lib];
    const envType = environmentType(lib);
    if (envType !== undefined) ensure(env.environment).type = envType;
    const devType = deviceType(lib, values[env.device], values[env.model]);
    if (devType !== undefined) ensure(env.deviceContainer).type = devType;
    const connection = connectionType(values[env.wifi], values[env.radio]);
    if (connection !== undefined) ensure(env.environment).connectionType = connection;
  }
  const c = rules.commerce;
  if (c !== null && rule.commerce >= 0) writeCommerce(c, rule, record, values, ensure);
}

function writeCommerce(
  c: CommerceSlots,
  rule: CompiledRule,
  record: Record<string, unknown>,
  values: readonly unknown[],
  ensure: (container: number) => Record<string, unknown>,
): void {
  const currency = currencyCode(values[c.currency]);
  const items: ProductListItem[] = [];
  if (rule.iap) {
    const item = lineItem(undefined, values[c.iapName], values[c.iapQuantity], values[c.iapPrice], currency);
    if (item !== undefined) items.push(item);
  } else {
    const list = values[c.items];
    if (Array.isArray(list)) {
      for (const entry of list) {
        const item = productItem(entry, c.plan.itemKeys, undefined, currency);
        if (item !== undefined) items.push(item);
      }
    } else {
      const item = productItem(values[c.product], c.plan.itemKeys, values[c.quantity], currency);
      if (item !== undefined) items.push(item);
    }
  }
  if (rule.commerce === PURCHASES) {
    // data/order.schema.json: purchaseID string, priceTotal number, currencyCode ^[A-Z]{3}$.
    const orderId = values[c.orderId];
    const id = typeof orderId === 'string' || typeof orderId === 'number' ? String(orderId) : '';
    if (id.length > 0) ensure(c.order).purchaseID = id;
    let total = toTotal(values[c.priceTotal]);
    if (total === undefined && items.length > 0) total = sumItems(items);
    if (total !== undefined) ensure(c.order).priceTotal = total;
    if (currency !== undefined && total !== undefined) ensure(c.order).currencyCode = currency;
  }
  if (items.length > 0) record.productListItems = items;
}

function toTotal(value: unknown): number | undefined {
  if (typeof value === 'string' && value.length === 0) return undefined;
  const n = typeof value === 'number' ? value : typeof value === 'string' ? Number(value) : Number.NaN;
  return Number.isFinite(n) ? n : undefined;
}

function sumItems(items: readonly ProductListItem[]): number | undefined {
  let total = 0;
  for (const item of items) {
    if (item.priceTotal === undefined) return undefined;
    total += item.priceTotal;
  }
  return Math.round(total * 1e6) / 1e6;
}
