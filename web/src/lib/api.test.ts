// @vitest-environment happy-dom
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import * as api from './api';

type Call = { url: string; init: RequestInit };
let calls: Call[] = [];
const respond = (status: number, body: unknown, raw = false) =>
  vi.fn(async (url: string, init: RequestInit) => {
    calls.push({ url, init });
    return new Response(raw ? (body as string) : JSON.stringify(body), {
      status,
      headers: { 'Content-Type': raw ? 'text/plain' : 'application/json' },
    });
  });

beforeEach(() => {
  calls = [];
  api.products.clear();
  document.cookie = 'session_id=sid123.c2lnbmF0dXJl%3D';
});
afterEach(() => api.setFetch(null));

const address = { street_1: 's', street_2: '', city: 'c', state: 'st', postal_code: '1', country: 'US' };
const form: api.CheckoutForm = {
  amountCents: 350,
  shipping: address,
  billing: address,
  card: { name: 'n', number: '4111 1111 1111 1111', expiration: '12/30', security_code: '123' },
};

describe('API calls', () => {
  it('search sends the query and page size and remembers products', async () => {
    api.setFetch(
      respond(200, {
        meta: { page: { total_results: 7 } },
        results: [{ id: 'f95e2475', name: 'Sweet Tea', price: 3.5 }],
      }) as unknown as typeof fetch,
    );
    const r = await api.suggestions('swe', 6);
    expect(r.total).toBe(7);
    expect(r.relation).toBe('eq'); // no total_results_relation: an older server, an exact count
    expect(r.results[0].name).toBe('Sweet Tea');
    expect(calls[0].url).toBe('/api/v1/product/suggestions');
    expect(calls[0].init.method).toBe('POST');
    expect(JSON.parse(calls[0].init.body as string)).toEqual({ query: 'swe', page: { size: 6 } });
    expect(api.products.get('f95e2475')?.price).toBe(3.5);
  });

  it('search reads a capped count: total_results is then a lower bound', async () => {
    api.setFetch(
      respond(200, {
        meta: { page: { total_results: 1000, total_results_relation: 'gte', size: 6 } },
        results: [{ id: 'f95e2475', name: 'Sweet Tea', price: 3.5 }],
      }) as unknown as typeof fetch,
    );
    expect(await api.search('tea', 6)).toMatchObject({ total: 1000, relation: 'gte' });
  });

  it('cart calls carry the decoded session id from the cookie', async () => {
    api.setFetch(respond(200, { message: 'success', data: { f95e2475: 2 } }) as unknown as typeof fetch);
    expect(await api.putQty('f95e2475', 2)).toEqual({ f95e2475: 2 });
    expect(calls[0].url).toBe('/api/v1/cart/f95e2475/2');
    expect(calls[0].init.method).toBe('PUT');
    expect(JSON.parse(calls[0].init.body as string)).toEqual({ session_id: 'sid123.c2lnbmF0dXJl=' });
  });

  it('a declined card rejects with the API reason and status', async () => {
    api.setFetch(respond(400, { message: 'failure', reason: 'Invalid card number' }) as unknown as typeof fetch);
    const err = await api
      .placeOrder(
        {
          amountCents: 350,
          shipping: { street_1: 's', street_2: '', city: 'c', state: 'st', postal_code: '1', country: 'US' },
          billing: { street_1: 's', street_2: '', city: 'c', state: 'st', postal_code: '9', country: 'US' },
          card: { name: 'n', number: '4111 1111 1111 1112', expiration: '12/30', security_code: '123' },
        },
        'k',
      )
      .catch((e) => e);
    expect(err).toBeInstanceOf(api.ApiError);
    expect(err.status).toBe(400);
    expect(err.message).toBe('Invalid card number');
    const body = JSON.parse(calls[0].init.body as string);
    expect(body.amount).toBe(3.5);
    expect(body.billing.card).toEqual({
      name: 'n',
      number: '4111111111111112',
      expiration: '12/30',
      security_code: '123',
      postal_code: '9',
    });
    expect(body.session_id).toBe('sid123.c2lnbmF0dXJl=');
  });

  it('placeOrder sends the Idempotency-Key it is given, with the JSON headers', async () => {
    api.setFetch(
      respond(200, { message: 'success', order_id: 'o-1', amount: 3.5, items: [] }) as unknown as typeof fetch,
    );
    const order = await api.placeOrder(form, 'attempt-1');
    expect(order.order_id).toBe('o-1');
    expect(calls[0].url).toBe('/api/v1/checkout/process');
    expect(calls[0].init.method).toBe('POST');
    const headers = new Headers(calls[0].init.headers);
    expect(headers.get('Idempotency-Key')).toBe('attempt-1');
    expect(headers.get('Content-Type')).toBe('application/json');
    await api.placeOrder(form, 'attempt-1');
    expect(new Headers(calls[1].init.headers).get('Idempotency-Key')).toBe('attempt-1');
  });

  it('placeOrder gives up after its timeout with a status-0 error, so the page can retry the same attempt', async () => {
    api.setFetch(((_url: string, init: RequestInit) =>
      new Promise((_, reject) =>
        init.signal?.addEventListener('abort', () => reject(new DOMException('aborted', 'AbortError'))),
      )) as unknown as typeof fetch);
    const err = await api.placeOrder(form, 'attempt-2', 20).catch((e) => e);
    expect(err).toBeInstanceOf(api.ApiError);
    expect(err.status).toBe(0);
    expect(err.message).toBe(api.ORDER_TIMEOUT);
  });

  it('a connection that breaks while the answer is read is a status-0 error', async () => {
    api.setFetch((async () => ({
      ok: true,
      status: 200,
      text: () => Promise.reject(new TypeError('network error')),
    })) as unknown as typeof fetch);
    await expect(api.placeOrder(form, 'attempt-3')).rejects.toMatchObject({ message: api.UNREACHABLE, status: 0 });
  });

  it('a failure body with status 200 is still a failure', async () => {
    api.setFetch(respond(200, { message: 'failure', reason: 'nope' }) as unknown as typeof fetch);
    await expect(api.getCart()).rejects.toMatchObject({ message: 'nope', status: 200 });
  });

  it('a gateway error without JSON gets a plain message', async () => {
    api.setFetch(respond(502, '<html>Bad Gateway</html>', true) as unknown as typeof fetch);
    await expect(api.search('', 6)).rejects.toMatchObject({
      status: 502,
      message: expect.stringContaining('not answering right now (HTTP 502)'),
    });
  });

  it('a 404 without a reason says what was not found', async () => {
    api.setFetch(respond(404, '', true) as unknown as typeof fetch);
    await expect(api.product('nope')).rejects.toMatchObject({ status: 404, message: 'We could not find that.' });
  });

  it('an unreachable shop is status 0 with a connection message', async () => {
    api.setFetch(vi.fn(async () => Promise.reject(new TypeError('Failed to fetch'))) as unknown as typeof fetch);
    await expect(api.getCart()).rejects.toMatchObject({ status: 0, message: api.UNREACHABLE });
  });

  it('loads only products it does not know yet', async () => {
    api.products.set('a', { id: 'a' } as api.Product);
    api.setFetch(respond(200, [{ id: 'b', name: 'B' }]) as unknown as typeof fetch);
    await api.loadProducts(['a', 'b']);
    expect(JSON.parse(calls[0].init.body as string)).toEqual(['b']);
    expect(api.products.has('b')).toBe(true);
    await api.loadProducts(['a', 'b']);
    expect(calls).toHaveLength(1);
  });
});
