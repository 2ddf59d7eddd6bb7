import { toCents } from './money';
import type { Product } from './api';

/** Quantities by product id, as `data` of the cart API. */
export type Cart = Record<string, number>;
export const MAX_QTY = 999;

/** Keeps the lines with a positive integer quantity (the API never sends others, but be safe). */
export function normalizeCart(data: unknown): Cart {
  const cart: Cart = {};
  if (data && typeof data === 'object' && !Array.isArray(data)) {
    for (const [id, q] of Object.entries(data as Record<string, unknown>)) {
      const n = typeof q === 'number' ? q : Number(q);
      if (Number.isInteger(n) && n > 0) cart[id] = n;
    }
  }
  return cart;
}

/** Items in the cart: the sum of the quantities (what the header's cart button shows). */
export const cartCount = (cart: Cart): number => Object.values(cart).reduce((a, n) => a + n, 0);

export interface Line {
  id: string;
  qty: number;
  product?: Product;
}

/** The cart's lines in a stable order (by product name, unknown products last). */
export function cartLines(cart: Cart, products: Map<string, Product>): Line[] {
  return Object.entries(cart)
    .map(([id, qty]) => ({ id, qty, product: products.get(id) }))
    .sort((a, b) => {
      if (!a.product || !b.product) return a.product ? -1 : b.product ? 1 : a.id.localeCompare(b.id);
      return a.product.name.localeCompare(b.product.name) || a.id.localeCompare(b.id);
    });
}

export const lineCents = (line: Line): number => (line.product ? toCents(line.product.price) * line.qty : 0);
export const totalCents = (lines: Line[]): number => lines.reduce((a, l) => a + lineCents(l), 0);

/** A quantity typed by a person, or null when it is not 1..=999. */
export function parseQty(text: string): number | null {
  if (!/^\s*\d+\s*$/.test(text)) return null;
  const n = Number(text);
  return n >= 1 && n <= MAX_QTY ? n : null;
}

/** A sentence about a drink when the catalog's description says no more than its name. */
export function describe(p: Pick<Product, 'name' | 'description' | 'temperature' | 'alcoholic' | 'type'>): string {
  const d = p.description?.trim();
  if (d && d.toLowerCase() !== p.name.trim().toLowerCase()) return d;
  const adjectives = [p.temperature, p.alcoholic].map((w) => w?.trim()).filter((w): w is string => !!w);
  const noun = p.type?.trim() || 'drink';
  if (!adjectives.length && !p.type?.trim()) return '';
  const phrase = adjectives.length ? `${adjectives.join(', ')} ${noun}` : noun;
  const article = /^[aeiou]/i.test(phrase) ? 'An' : 'A';
  return `${article} ${phrase}.`;
}
