// @vitest-environment happy-dom
// The pages against a fake shop (a mocked fetch), rendered with React DOM.
import { act } from 'react';
import { createRoot, type Root } from 'react-dom/client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { App } from '../App';
import * as api from '../lib/api';
import { IDEMPOTENCY_KEY } from '../lib/idempotency';
import { forgetOrder } from '../lib/order';
import { resetCartStore } from '../lib/store';

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

const tea = { id: 'f95e2475', name: 'Sweet Tea', price: 3.5, rating: 4.7, reviews: 12, filename: 'sweet-tea.jpeg',
  description: 'Sweet Tea', category: null, alcoholic: 'non-alcoholic', temperature: 'cold', type: 'tea' };

/**
 * A tiny fake of the API: one cart, one drink; cards ending in 2 are declined. Orders are
 * kept by Idempotency-Key, as the shop does: a repeat of a key answers the same order.
 * `unreachable` process calls fail before reaching the shop; `lost` ones place the order and
 * then lose the answer (both look like a network error to the page). `searchPage` is the
 * `meta.page` that searches answer (default: exactly 1 result).
 */
function fakeShop(
  opts: { cartDown?: boolean; unreachable?: number; lost?: number; searchPage?: Record<string, unknown> } = {},
) {
  const cart: Record<string, number> = {};
  const seen: string[] = [];
  const keys: (string | null)[] = [];
  const orders = new Map<string, unknown>();
  let unreachable = opts.unreachable ?? 0;
  let lost = opts.lost ?? 0;
  let nextOrder = 42;
  const json = (status: number, body: unknown) =>
    new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json' } });
  const fetch = async (url: string, init: RequestInit) => {
    const method = init.method ?? 'GET';
    seen.push(`${method} ${url}`);
    const body = init.body ? JSON.parse(init.body as string) : undefined;
    if (url.startsWith('/api/v1/cart')) {
      if (opts.cartDown) return json(503, { message: 'failure', reason: 'cart-data is unavailable' });
      if (body?.session_id !== 'sid.sig') return json(403, { message: 'failure', reason: 'bad session' });
      const [, id, qty] = url.slice('/api/v1/cart'.length).split('/');
      if (method === 'PUT') cart[id] = Number(qty);
      if (method === 'DELETE') id ? delete cart[id] : Object.keys(cart).forEach((k) => delete cart[k]);
      return json(200, { message: 'success', data: cart });
    }
    if (url === '/api/v1/product/search' || url === '/api/v1/product/suggestions')
      return json(200, { meta: { page: opts.searchPage ?? { total_results: 1 } }, results: [tea] });
    if (url === '/api/v1/product/documents') return json(200, [tea]);
    if (url === `/api/v1/product/products/${tea.id}`) return json(200, tea);
    if (url.startsWith('/api/v1/product/products/')) return json(404, { message: 'failure', reason: 'No such product' });
    if (url === '/api/v1/checkout/initiate') return json(200, { message: 'success' });
    if (url === '/api/v1/checkout/process') {
      const key = new Headers(init.headers).get('Idempotency-Key');
      keys.push(key);
      if (unreachable > 0 && unreachable--) throw new TypeError('Failed to fetch');
      if (key && orders.has(key)) return json(200, orders.get(key));
      if (body.billing.card.number.endsWith('2')) return json(400, { message: 'failure', reason: 'Invalid card number' });
      const qty = cart[tea.id];
      if (!qty) return json(400, { message: 'failure', reason: 'Your cart is empty' });
      Object.keys(cart).forEach((k) => delete cart[k]);
      const order = { message: 'success', order_id: `order-${nextOrder++}`, amount: 3.5 * qty,
        items: [{ id: tea.id, name: tea.name, quantity: qty, price: 3.5, subtotal: 3.5 * qty }] };
      if (key) orders.set(key, order);
      if (lost > 0 && lost--) throw new TypeError('Failed to fetch');
      return json(200, order);
    }
    return json(404, { message: 'failure', reason: 'unknown' });
  };
  api.setFetch(fetch as unknown as typeof globalThis.fetch);
  return { cart, seen, keys, orders };
}

let root: Root;
let el: HTMLElement;
const text = () => el.textContent ?? '';
const $ = <T extends Element = HTMLElement>(sel: string) => el.querySelector<T>(sel);

async function settle() {
  for (let i = 0; i < 10; i++) await act(async () => await new Promise((r) => setTimeout(r, 0)));
}
async function open(path: string) {
  window.history.replaceState(null, '', path);
  await act(async () => root.render(<App />));
  await settle();
}
async function click(node: Element | null) {
  expect(node).not.toBeNull();
  await act(async () => (node as HTMLElement).click());
  await settle();
}
async function until(check: () => boolean, what: string) {
  for (let i = 0; i < 50 && !check(); i++) await settle();
  expect(check(), what).toBe(true);
}

beforeEach(() => {
  document.cookie = 'session_id=sid.sig';
  sessionStorage.clear();
  api.products.clear();
  resetCartStore();
  forgetOrder();
  el = document.createElement('div');
  document.body.append(el);
  root = createRoot(el);
});
afterEach(() => {
  act(() => root.unmount());
  el.remove();
  api.setFetch(null);
});

describe('pages', () => {
  it('home shows the best-rated drinks and an empty cart count', async () => {
    fakeShop();
    await open('/');
    expect(text()).toContain('Our best-rated drinks');
    expect($('.grid img')?.getAttribute('alt')).toBe('Sweet Tea');
    expect($('[data-testid=cart-count]')?.textContent).toBe('0');
  });

  it('adding to the cart updates the header count', async () => {
    const shop = fakeShop();
    await open('/products/f95e2475');
    expect($('h1')?.textContent).toBe('Sweet Tea');
    expect(text()).toContain('A cold, non-alcoholic tea.');
    await click($('form.add button'));
    await until(() => $('[data-testid=cart-count]')?.textContent === '1', 'count 1');
    expect(shop.cart).toEqual({ f95e2475: 1 });
    expect($('.cart-link')?.getAttribute('aria-label')).toBe('Cart, 1 item');
  });

  it('the cart shows lines and a subtotal in cents, and + and remove work', async () => {
    const shop = fakeShop();
    shop.cart[tea.id] = 3;
    await open('/cart');
    expect($('[data-testid=cart-line]')?.textContent).toContain('Sweet Tea');
    expect($('[data-testid=subtotal]')?.textContent).toBe('$10.50');
    await click($('button[aria-label="One more Sweet Tea"]'));
    await until(() => $('[data-testid=subtotal]')?.textContent === '$14.00', 'subtotal after +');
    await click($('button.remove'));
    await until(() => text().includes('Your cart is empty'), 'empty cart');
    expect(shop.seen).toContain('DELETE /api/v1/cart/f95e2475');
  });

  it('a declined card is shown on the form and the cart is kept; a good card confirms', async () => {
    const shop = fakeShop();
    shop.cart[tea.id] = 1;
    await open('/checkout');
    expect(text()).toContain('This store is a simulation');
    const number = $<HTMLInputElement>('#card-number')!;
    expect(number.value).toBe('4111 1111 1111 1111');
    const type = async (value: string) => {
      const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value')!.set!;
      await act(async () => {
        setter.call(number, value);
        number.dispatchEvent(new Event('input', { bubbles: true }));
      });
    };
    await type('4111 1111 1111 1112');
    expect(text()).toContain('fails the card check digit');
    await click($('button.pay'));
    await until(() => !!$('[data-testid=checkout-error]'), 'error shown');
    expect($('[data-testid=checkout-error]')?.textContent).toContain('Invalid card number');
    expect(shop.cart).toEqual({ f95e2475: 1 });
    expect($('button.pay')?.hasAttribute('disabled')).toBe(false);

    await type('4111 1111 1111 1111');
    await click($('button.pay'));
    await until(() => window.location.pathname === '/confirmation', 'confirmation');
    await until(() => text().includes('order-42'), 'order id');
    expect($('[data-testid=order-amount]')?.textContent).toBe('$3.50');
    expect($('[data-testid=cart-count]')?.textContent).toBe('0');

    // A reload keeps the confirmation (sessionStorage).
    act(() => root.unmount());
    forgetOrder();
    root = createRoot(el);
    await open('/confirmation');
    expect(text()).toContain('order-42');
  });

  it('an API failure shows a message and a retry, never a blank page', async () => {
    fakeShop({ cartDown: true });
    await open('/cart');
    expect($('[role=alert]')?.textContent).toContain('cart-data is unavailable');
    expect($('[role=alert] button')?.textContent).toBe('Try again');
    expect($('[data-testid=cart-count]')?.textContent).toBe('–');
  });

  it('an unknown product and an unknown page are not found', async () => {
    fakeShop();
    await open('/products/nope');
    expect($('h1')?.textContent).toBe('Page not found');
    expect(text()).toContain('could not find that drink');
    await open('/no/such/page');
    expect($('h1')?.textContent).toBe('Page not found');
  });

  it('search results count a capped total as "1,000+" and an exact one as it is', async () => {
    fakeShop({ searchPage: { total_results: 1000, total_results_relation: 'gte', size: 100 } });
    await open('/search?q=tea');
    expect($('h1')?.textContent).toBe('Drinks matching “tea”');
    expect($('[data-testid=result-count]')?.textContent).toBe('Showing 1 of 1,000+ drinks');
    expect($('.grid img')?.getAttribute('alt')).toBe('Sweet Tea');

    act(() => root.unmount());
    root = createRoot(el);
    fakeShop({ searchPage: { total_results: 1234, total_results_relation: 'eq', size: 100 } });
    await open('/search?q=te');
    expect($('[data-testid=result-count]')?.textContent).toBe('Showing 1 of 1,234 drinks');

    act(() => root.unmount());
    root = createRoot(el);
    fakeShop(); // an older server: no relation, and every match on the page
    await open('/search?q=sweet');
    expect($('[data-testid=result-count]')?.textContent).toBe('1 drink');
  });

  it('typing in the search box suggests drinks', async () => {
    const shop = fakeShop();
    await open('/');
    const input = $<HTMLInputElement>('input[type=search]')!;
    const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value')!.set!;
    await act(async () => {
      setter.call(input, 'swe');
      input.dispatchEvent(new Event('input', { bubbles: true }));
    });
    await act(async () => await new Promise((r) => setTimeout(r, 250)));
    await settle();
    expect($('[role=listbox]')?.textContent).toContain('Sweet Tea');
    expect(input.getAttribute('aria-expanded')).toBe('true');
    expect(shop.seen).toContain('POST /api/v1/product/suggestions');
  });
  it('checkout sends an Idempotency-Key: the same for every submit of one attempt, a new one after an order', async () => {
    const shop = fakeShop({ unreachable: 1 });
    shop.cart[tea.id] = 1;
    await open('/checkout');
    // The first submit does not reach the shop: the form says so and keeps the order.
    await click($('button.pay'));
    await until(() => !!$('[data-testid=checkout-error]'), 'error shown');
    expect($('[data-testid=checkout-error]')?.textContent).toContain('not be charged twice');
    expect(shop.orders.size).toBe(0);
    // The retry is the same attempt: same key.
    await click($('button.pay'));
    await until(() => window.location.pathname === '/confirmation', 'confirmation');
    expect(shop.keys).toHaveLength(2);
    expect(shop.keys[0]).toMatch(IDEMPOTENCY_KEY);
    expect(shop.keys[1]).toBe(shop.keys[0]);
    expect(text()).toContain('order-42');

    // The next order is a new attempt: a new key.
    shop.cart[tea.id] = 2;
    await open('/checkout');
    await click($('button.pay'));
    await until(() => text().includes('order-43'), 'second order');
    expect(shop.keys).toHaveLength(3);
    expect(shop.keys[2]).toMatch(IDEMPOTENCY_KEY);
    expect(shop.keys[2]).not.toBe(shop.keys[0]);
    expect(shop.orders.size).toBe(2);
  });

  it('a retry after a lost answer shows the order that was placed, and charges once', async () => {
    const shop = fakeShop({ lost: 1 });
    shop.cart[tea.id] = 3;
    await open('/checkout');
    await click($('button.pay'));
    await until(() => !!$('[data-testid=checkout-error]'), 'error shown');
    // The shop did place the order (the cart is empty now), but the page could not know:
    // the form stays, with the amount of the order being paid.
    expect(shop.cart).toEqual({});
    expect($('[data-testid=checkout-error]')?.textContent).toContain('We could not confirm your order');
    expect($('button.pay')?.textContent).toContain('$10.50');
    await click($('button.pay'));
    await until(() => window.location.pathname === '/confirmation', 'confirmation');
    expect(shop.keys).toEqual([shop.keys[0], shop.keys[0]]);
    expect(shop.orders.size).toBe(1);
    expect(text()).toContain('order-42');
    expect($('[data-testid=order-amount]')?.textContent).toBe('$10.50');
  });

  it('a declined card keeps the key; the pay button cannot submit twice while the order is in flight', async () => {
    const shop = fakeShop();
    shop.cart[tea.id] = 1;
    await open('/checkout');
    const number = $<HTMLInputElement>('#card-number')!;
    const setter = Object.getOwnPropertyDescriptor(HTMLInputElement.prototype, 'value')!.set!;
    await act(async () => {
      setter.call(number, '4111 1111 1111 1112');
      number.dispatchEvent(new Event('input', { bubbles: true }));
    });
    await click($('button.pay'));
    await until(() => !!$('[data-testid=checkout-error]'), 'declined');
    await act(async () => {
      setter.call(number, '4111 1111 1111 1111');
      number.dispatchEvent(new Event('input', { bubbles: true }));
    });
    // A double click: both clicks land before React renders the disabled button.
    const pay = $('button.pay')!;
    await act(async () => {
      pay.click();
      pay.click();
    });
    await until(() => window.location.pathname === '/confirmation', 'confirmation');
    expect(shop.seen.filter((s) => s === 'POST /api/v1/checkout/process')).toHaveLength(2);
    expect(shop.keys[1]).toBe(shop.keys[0]);
    expect(shop.orders.size).toBe(1);
  });
});
