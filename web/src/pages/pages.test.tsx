// @vitest-environment happy-dom
// The pages against a fake shop (a mocked fetch), rendered with React DOM.
import { act } from 'react';
import { createRoot, type Root } from 'react-dom/client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { App } from '../App';
import * as api from '../lib/api';
import { forgetOrder } from '../lib/order';
import { resetCartStore } from '../lib/store';

(globalThis as { IS_REACT_ACT_ENVIRONMENT?: boolean }).IS_REACT_ACT_ENVIRONMENT = true;

const tea = { id: 'f95e2475', name: 'Sweet Tea', price: 3.5, rating: 4.7, reviews: 12, filename: 'sweet-tea.jpeg',
  description: 'Sweet Tea', category: null, alcoholic: 'non-alcoholic', temperature: 'cold', type: 'tea' };

/** A tiny fake of the API: one cart, one drink; cards ending in 2 are declined. */
function fakeShop(opts: { cartDown?: boolean } = {}) {
  const cart: Record<string, number> = {};
  const seen: string[] = [];
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
      return json(200, { meta: { page: { total_results: 1 } }, results: [tea] });
    if (url === '/api/v1/product/documents') return json(200, [tea]);
    if (url === `/api/v1/product/products/${tea.id}`) return json(200, tea);
    if (url.startsWith('/api/v1/product/products/')) return json(404, { message: 'failure', reason: 'No such product' });
    if (url === '/api/v1/checkout/initiate') return json(200, { message: 'success' });
    if (url === '/api/v1/checkout/process') {
      if (body.billing.card.number.endsWith('2')) return json(400, { message: 'failure', reason: 'Invalid card number' });
      const qty = cart[tea.id];
      Object.keys(cart).forEach((k) => delete cart[k]);
      return json(200, { message: 'success', order_id: 'order-42', amount: 3.5 * qty,
        items: [{ id: tea.id, name: tea.name, quantity: qty, price: 3.5, subtotal: 3.5 * qty }] });
    }
    return json(404, { message: 'failure', reason: 'unknown' });
  };
  api.setFetch(fetch as unknown as typeof globalThis.fetch);
  return { cart, seen };
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
});
