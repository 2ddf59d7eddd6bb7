import type { Order } from './api';

// The last order, kept for the confirmation page so that it survives a reload.
export const ORDER_KEY = 'ecommerce.lastOrder';

export function saveOrder(order: Order, storage: Storage | undefined = globalThis.sessionStorage): void {
  try {
    storage?.setItem(ORDER_KEY, JSON.stringify(order));
  } catch {
    /* storage unavailable (private mode): the confirmation still shows from memory */
  }
  lastOrder = order;
}

let lastOrder: Order | null = null;

export function loadOrder(storage: Storage | undefined = globalThis.sessionStorage): Order | null {
  if (lastOrder) return lastOrder;
  try {
    const o = JSON.parse(storage?.getItem(ORDER_KEY) ?? 'null') as Order | null;
    return o && typeof o === 'object' && o.order_id != null ? o : null;
  } catch {
    return null;
  }
}

/** For tests. */
export function forgetOrder(): void {
  lastOrder = null;
}
