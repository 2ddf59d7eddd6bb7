// The cart, shared by the header and the pages: one small external store.
import { useSyncExternalStore } from 'react';
import * as api from './api';
import type { Cart } from './cart';

export interface CartState {
  /** null until the first answer. */
  cart: Cart | null;
  /** Requests in flight: cart controls are disabled meanwhile. */
  busy: number;
  /** The last failure to read the cart, if the last read failed. */
  error: string | null;
}

let state: CartState = { cart: null, busy: 0, error: null };
const listeners = new Set<() => void>();
const set = (next: Partial<CartState>) => {
  state = { ...state, ...next };
  listeners.forEach((l) => l());
};
const subscribe = (l: () => void) => {
  listeners.add(l);
  return () => listeners.delete(l);
};

export const useCart = (): CartState => useSyncExternalStore(subscribe, () => state, () => state);

// Answers may arrive out of order: apply only an answer to a request started after the
// one whose answer is shown.
let started = 0;
let applied = 0;

/** Runs one cart call, keeps its answer as the cart, and returns it. Rejects with its ApiError. */
async function run(call: () => Promise<Cart>): Promise<Cart> {
  const mine = ++started;
  set({ busy: state.busy + 1 });
  try {
    const cart = await call();
    if (mine > applied) {
      applied = mine;
      set({ cart, error: null });
    }
    return cart;
  } finally {
    set({ busy: state.busy - 1 });
  }
}

export async function refreshCart(): Promise<Cart> {
  try {
    return await run(api.getCart);
  } catch (e) {
    set({ error: (e as Error).message });
    throw e;
  }
}
export const setQty = (id: string, qty: number): Promise<Cart> =>
  run(() => (qty > 0 ? api.putQty(id, qty) : api.removeLine(id)));
export const removeLine = (id: string): Promise<Cart> => run(() => api.removeLine(id));

/** After an order: the checkout service empties the cart; show it empty and read it back. */
export function orderPlaced(): void {
  applied = ++started;
  set({ cart: {} });
  refreshCart().catch(() => {});
}

/** For tests. */
export function resetCartStore(): void {
  started = applied = 0;
  state = { cart: null, busy: 0, error: null };
}
