// The shop's API (SPEC §5), through the web-gateway on the page's own origin.
import { normalizeCart, type Cart } from './cart';
import { parseRelation, type TotalRelation } from './count';
import { centsToAmount } from './money';
import { sessionId } from './session';

export interface Product {
  id: string;
  name: string;
  category: string | null;
  price: number;
  rating: number;
  reviews: number;
  filename: string;
  description: string | null;
  alcoholic: string | null;
  temperature: string | null;
  type: string | null;
}

export interface OrderItem {
  id: string;
  name: string;
  quantity: number;
  price: number;
  subtotal: number;
}

export interface Order {
  message: string;
  order_id: string;
  amount: number;
  items: OrderItem[];
}

export interface Address {
  street_1: string;
  street_2: string;
  city: string;
  state: string;
  postal_code: string;
  country: string;
}

export interface CardDetails {
  name: string;
  number: string;
  expiration: string;
  security_code: string;
  postal_code: string;
}

/**
 * A failed call: `status` is the HTTP status, 0 when the shop could not be reached;
 * `retryAfter` the seconds a 429's Retry-After asks to wait, when it says.
 */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly retryAfter: number | null = null,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** Retry-After (seconds, or an HTTP date) as whole seconds from `now`; null when absent or unreadable. */
export function retryAfterSeconds(value: string | null | undefined, now: number = Date.now()): number | null {
  const v = value?.trim();
  if (!v) return null;
  if (/^\d+$/.test(v)) return Number(v);
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - now) / 1000));
}

export const UNREACHABLE = 'Could not reach the shop. Check your connection and try again.';

/** A plain-language message for a failed response, using the API's `reason` when there is one. */
export function failureMessage(status: number, body: unknown): string {
  const reason =
    body && typeof body === 'object' && typeof (body as { reason?: unknown }).reason === 'string'
      ? (body as { reason: string }).reason.trim()
      : '';
  if (reason) return reason;
  if (status === 404) return 'We could not find that.';
  if (status === 502 || status === 503 || status === 504)
    return `The shop is not answering right now (HTTP ${status}). Please try again in a moment.`;
  if (status >= 500) return `The shop had a problem (HTTP ${status}). Please try again.`;
  return `The shop answered with an error (HTTP ${status}).`;
}

type Fetch = typeof fetch;
let fetchImpl: Fetch | null = null;
/** For tests: replace fetch (null restores the global one). */
export function setFetch(f: Fetch | null): void {
  fetchImpl = f;
}

const isAbort = (e: unknown) => (e as { name?: string } | null)?.name === 'AbortError';

/**
 * One JSON call. Resolves with the parsed body of a success, rejects with an ApiError (or the
 * AbortError of `signal`). `extraHeaders` are sent along with the JSON ones.
 */
export async function request<T>(
  method: string,
  path: string,
  body?: unknown,
  signal?: AbortSignal,
  extraHeaders?: Record<string, string>,
): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json', ...extraHeaders };
  const init: RequestInit = { method, headers, credentials: 'same-origin', signal };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res: Response;
  try {
    res = await (fetchImpl ?? fetch)(path, init);
  } catch (e) {
    if (isAbort(e)) throw e;
    throw new ApiError(UNREACHABLE, 0);
  }
  let text: string;
  try {
    text = await res.text();
  } catch (e) {
    // The connection broke (or the call was aborted) while the answer was being read.
    if (isAbort(e)) throw e;
    throw new ApiError(UNREACHABLE, 0);
  }
  let data: unknown = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  const failed = (data as { message?: unknown } | null)?.message === 'failure';
  if (!res.ok || failed) {
    const retryAfter = res.status === 429 ? retryAfterSeconds(res.headers?.get('Retry-After')) : null;
    throw new ApiError(failureMessage(res.status, data), res.status, retryAfter);
  }
  return data as T;
}

// ---- products ----

/** Every product seen so far, by id: cart and checkout need names and prices. */
export const products = new Map<string, Product>();
function remember(list: unknown): Product[] {
  const found = Array.isArray(list) ? (list as Product[]).filter((p) => p && typeof p.id === 'string') : [];
  for (const p of found) products.set(p.id, p);
  return found;
}

/** `total` matches, or at least `total` when `relation` is `gte` (the shop stopped counting). */
export interface SearchResult {
  total: number;
  relation: TotalRelation;
  results: Product[];
}
interface SearchBody {
  meta?: { page?: { total_results?: number; total_results_relation?: string } };
  results?: Product[];
}
async function searchAt(
  kind: 'search' | 'suggestions',
  query: string,
  size: number,
  signal?: AbortSignal,
): Promise<SearchResult> {
  const r = await request<SearchBody>('POST', `/api/v1/product/${kind}`, { query, page: { size } }, signal);
  const results = remember(r?.results);
  const page = r?.meta?.page;
  return {
    total: page?.total_results ?? results.length,
    relation: parseRelation(page?.total_results_relation),
    results,
  };
}

/** Best rated first; an empty query finds everything. */
export const search = (query: string, size: number): Promise<SearchResult> => searchAt('search', query, size);
export const suggestions = (query: string, size: number, signal?: AbortSignal): Promise<SearchResult> =>
  searchAt('suggestions', query, size, signal);

export async function product(id: string): Promise<Product> {
  const p = await request<Product>('GET', '/api/v1/product/products/' + encodeURIComponent(id));
  remember([p]);
  return p;
}

/** Makes sure `products` holds every one of `ids` that the catalog has. */
export async function loadProducts(ids: string[]): Promise<void> {
  const missing = ids.filter((id) => !products.has(id));
  if (missing.length) remember(await request<Product[]>('POST', '/api/v1/product/documents', missing));
}

export const imageUrl = (p: Pick<Product, 'filename'>): string => '/api/v1/content/' + encodeURIComponent(p.filename);

// ---- cart ----

const withSession = () => ({ session_id: sessionId() });
const cartCall = async (method: string, path = ''): Promise<Cart> =>
  normalizeCart((await request<{ data?: unknown }>(method, '/api/v1/cart' + path, withSession()))?.data);

export const getCart = (): Promise<Cart> => cartCall('POST');
export const putQty = (id: string, qty: number): Promise<Cart> => cartCall('PUT', `/${encodeURIComponent(id)}/${qty}`);
export const removeLine = (id: string): Promise<Cart> => cartCall('DELETE', '/' + encodeURIComponent(id));
export const clearCart = (): Promise<Cart> => cartCall('DELETE');

// ---- checkout ----

export const initiateCheckout = (): Promise<unknown> => request('POST', '/api/v1/checkout/initiate', {});

export interface CheckoutForm {
  amountCents: number;
  shipping: Address;
  billing: Address;
  card: Omit<CardDetails, 'postal_code'>;
}

/** The body of `POST /api/v1/checkout/process`, shaped as the original UI sent it. */
export function checkoutBody(f: CheckoutForm, session: string | null) {
  return {
    amount: centsToAmount(f.amountCents),
    shipping: { address: f.shipping },
    billing: {
      address: f.billing,
      card: {
        name: f.card.name.trim(),
        number: f.card.number.replace(/[\s-]/g, ''),
        expiration: f.card.expiration.trim(),
        security_code: f.card.security_code.trim(),
        postal_code: f.billing.postal_code,
      },
    },
    session_id: session,
  };
}

/** How long to wait for the order's answer (the payment alone takes up to a second). */
export const ORDER_TIMEOUT_MS = 30_000;
export const ORDER_TIMEOUT = 'The shop did not answer in time.';

/**
 * Places the order. `idempotencyKey` names the attempt (see ./idempotency): every submit of
 * the same attempt must pass the same key, so that a repeat answers the first one's order
 * instead of charging again. A network failure or no answer within `timeoutMs` rejects with
 * an ApiError of status 0: the order may or may not have been placed, and a retry with the
 * same key finds out safely.
 */
export async function placeOrder(
  f: CheckoutForm,
  idempotencyKey: string,
  timeoutMs: number = ORDER_TIMEOUT_MS,
): Promise<Order> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    return await request<Order>('POST', '/api/v1/checkout/process', checkoutBody(f, sessionId()), abort.signal, {
      'Idempotency-Key': idempotencyKey,
    });
  } catch (e) {
    if (isAbort(e)) throw new ApiError(ORDER_TIMEOUT, 0);
    throw e;
  } finally {
    clearTimeout(timer);
  }
}
