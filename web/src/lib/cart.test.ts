import { describe as suite, expect, it } from 'vitest';
import type { Product } from './api';
import { cartCount, cartLines, describe, lineCents, normalizeCart, parseQty, totalCents } from './cart';

const drink = (id: string, name: string, price: number, more: Partial<Product> = {}): Product => ({
  id,
  name,
  price,
  category: null,
  rating: 4.5,
  reviews: 10,
  filename: id + '.jpeg',
  description: null,
  alcoholic: 'non-alcoholic',
  temperature: 'cold',
  type: 'tea',
  ...more,
});

suite('cart', () => {
  it('counts items as the sum of quantities', () => {
    expect(cartCount({})).toBe(0);
    expect(cartCount({ a: 1 })).toBe(1);
    expect(cartCount({ a: 2, b: 3 })).toBe(5);
  });
  it('keeps only positive integer quantities from the API', () => {
    expect(normalizeCart({ a: 2, b: 0, c: -1, d: 1.5, e: '3', f: 'x' })).toEqual({ a: 2, e: 3 });
    expect(normalizeCart(null)).toEqual({});
    expect(normalizeCart([1, 2])).toEqual({});
  });
  it('totals lines in cents: 3 × $3.50 is $10.50 exactly', () => {
    const products = new Map([
      ['t', drink('t', 'Sweet Tea', 3.5)],
      ['c', drink('c', 'Coffee', 4.1)],
    ]);
    const lines = cartLines({ t: 3, c: 3 }, products);
    expect(lines.map((l) => lineCents(l))).toEqual([1230, 1050]);
    expect(totalCents(lines)).toBe(2280);
  });
  it('orders lines by name, unknown products last, priced at zero', () => {
    const products = new Map([
      ['b', drink('b', 'Zinger', 1)],
      ['a', drink('a', 'Apple Juice', 2)],
    ]);
    const lines = cartLines({ b: 1, gone: 2, a: 1 }, products);
    expect(lines.map((l) => l.id)).toEqual(['a', 'b', 'gone']);
    expect(lines[2].product).toBeUndefined();
    expect(totalCents(lines)).toBe(300);
  });
  it('parses quantities typed by a person', () => {
    expect(parseQty('1')).toBe(1);
    expect(parseQty(' 999 ')).toBe(999);
    expect(parseQty('0')).toBeNull();
    expect(parseQty('1000')).toBeNull();
    expect(parseQty('2.5')).toBeNull();
    expect(parseQty('-1')).toBeNull();
    expect(parseQty('')).toBeNull();
  });
  it('describes a drink whose description only repeats its name', () => {
    expect(describe(drink('x', 'Sweet Tea', 3.5, { description: 'Sweet Tea' }))).toBe('A cold, non-alcoholic tea.');
    expect(describe(drink('x', 'Juice', 3, { description: 'A blast of fruit flavors.' }))).toBe(
      'A blast of fruit flavors.',
    );
    expect(describe(drink('x', 'Hot', 3, { temperature: null, alcoholic: 'alcoholic', type: 'wine' }))).toBe(
      'An alcoholic wine.',
    );
    expect(describe(drink('x', 'Odd', 3, { temperature: null, alcoholic: null, type: null }))).toBe('');
  });
});
