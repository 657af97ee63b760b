/**
 * Commerce events → `commerce.*` counters, `commerce.order` and `productListItems` (adobe/xdm
 * components/fieldgroups/experience-event/experienceevent-commerce.schema.json; data types
 * components/datatypes/marketing/commerce.schema.json, data/order.schema.json, productlistitem.schema.json).
 *
 * Mixpanel has no fixed e-commerce events; its docs use "Added to Cart" / "Purchase Completed"
 * (mixpanel/docs docs/pricing.mdx), "Add to Cart" and "Order Completed" with a list of items carrying name and price
 * (docs/data-structure/events-and-properties.mdx) and a purchase value as a `price` property
 * (docs/features/revenue-analytics.mdx). The defaults below follow those names; all of them are configurable.
 * The in-app purchase event `$ae_iap` carries `$ae_iap_name`, `$ae_iap_quantity`, `$ae_iap_price`
 * (docs/tracking-methods/sdks/ios.mdx).
 */
import * as z from 'zod';
import { toInteger, toNumber, identityText } from './convert.ts';

/** `commerce` measures an event can count (time-series eventType `commerce.<name>`). */
export const COMMERCE_COUNTERS = ['purchases', 'productListAdds', 'checkouts', 'productViews'] as const;
export type CommerceCounter = (typeof COMMERCE_COUNTERS)[number];

const names = z.array(z.string().min(1, { error: 'must be a non-empty string' }));
const key = z.string().min(1, { error: 'must be a non-empty string' });

/** The `commerce` block of a mapping config; every key is optional (defaults: {@link DEFAULT_COMMERCE}). */
export const CommerceSchema = z.strictObject({
  events: z
    .strictObject({
      purchases: names.optional(),
      productListAdds: names.optional(),
      checkouts: names.optional(),
      productViews: names.optional(),
    })
    .optional(),
  /** Event properties read on commerce events. */
  properties: z
    .strictObject({
      orderId: key.optional(),
      priceTotal: key.optional(),
      currency: key.optional(),
      items: key.optional(),
      product: key.optional(),
      quantity: key.optional(),
    })
    .optional(),
  /** Keys read inside each item object (the first present wins). */
  itemKeys: z
    .strictObject({
      sku: names.optional(),
      name: names.optional(),
      quantity: names.optional(),
      price: names.optional(),
    })
    .optional(),
});
export type CommerceConfig = z.infer<typeof CommerceSchema>;

export interface CommercePlan {
  events: Record<CommerceCounter, readonly string[]>;
  properties: Record<'orderId' | 'priceTotal' | 'currency' | 'items' | 'product' | 'quantity', string>;
  itemKeys: { sku: readonly string[]; name: readonly string[]; quantity: readonly string[]; price: readonly string[] };
}

export const DEFAULT_COMMERCE: CommercePlan = {
  events: {
    purchases: ['Purchase Completed', 'Order Completed', 'Purchase'],
    productListAdds: ['Added to Cart', 'Add to Cart', 'Add To Cart'],
    checkouts: ['Checkout Started', 'Checkout'],
    productViews: ['Product Viewed'],
  },
  properties: {
    orderId: 'order_id',
    priceTotal: 'revenue',
    currency: 'currency',
    items: 'items',
    product: 'product',
    quantity: 'quantity',
  },
  itemKeys: { sku: ['sku', 'id', 'product_id'], name: ['name'], quantity: ['quantity'], price: ['price'] },
};

/** The `$ae_iap` event reads its own properties (one product). */
export const IAP_EVENT = '$ae_iap';
export const IAP_PROPERTIES = { name: '$ae_iap_name', quantity: '$ae_iap_quantity', price: '$ae_iap_price' } as const;

/** A config's `commerce` block over the defaults (lists replace, keys override). */
export function commercePlan(config: CommerceConfig | undefined): CommercePlan {
  return {
    events: { ...DEFAULT_COMMERCE.events, ...config?.events },
    properties: { ...DEFAULT_COMMERCE.properties, ...config?.properties },
    itemKeys: { ...DEFAULT_COMMERCE.itemKeys, ...config?.itemKeys },
  };
}

/** ISO 4217 code (order and productlistitem `currencyCode`: pattern `^[A-Z]{3}$`); lower case is upper-cased. */
export function currencyCode(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length !== 3) return undefined;
  const upper = value.toUpperCase();
  return /^[A-Z]{3}$/.test(upper) ? upper : undefined;
}

export interface ProductListItem {
  SKU?: string;
  name?: string;
  quantity?: number;
  priceTotal?: number;
  currencyCode?: string;
}

function first(item: Record<string, unknown>, keys: readonly string[]): unknown {
  for (const k of keys) if (item[k] !== undefined && item[k] !== null) return item[k];
  return undefined;
}

/**
 * One productListItems entry from a product object, or undefined when nothing converts. `priceTotal` is the line's
 * total (productlistitem: "the final price for the product line item"): unit price × quantity (1 when absent).
 */
export function productItem(
  item: unknown,
  keys: CommercePlan['itemKeys'],
  fallbackQuantity: unknown,
  currency: string | undefined,
): ProductListItem | undefined {
  if (item === null || typeof item !== 'object' || Array.isArray(item)) return undefined;
  const obj = item as Record<string, unknown>;
  const quantity = first(obj, keys.quantity) ?? fallbackQuantity;
  return lineItem(first(obj, keys.sku), first(obj, keys.name), quantity, first(obj, keys.price), currency);
}

/** A productListItems entry from loose values (also used for `$ae_iap`). */
export function lineItem(
  sku: unknown,
  name: unknown,
  quantity: unknown,
  price: unknown,
  currency: string | undefined,
): ProductListItem | undefined {
  const out: ProductListItem = {};
  const skuText = identityText(sku);
  if (skuText !== undefined) out.SKU = skuText;
  const nameText = identityText(name);
  if (nameText !== undefined) out.name = nameText;
  // productlistitem.schema.json: quantity is an integer, priceTotal a number.
  const q = toInteger(quantity);
  if (q !== undefined && q >= 0) out.quantity = q;
  const unit = toNumber(price);
  if (unit !== undefined) out.priceTotal = Math.round(unit * (q ?? 1) * 1e6) / 1e6;
  if (out.SKU === undefined && out.name === undefined) return undefined;
  if (currency !== undefined && out.priceTotal !== undefined) out.currencyCode = currency;
  return out;
}
