import { beforeEach, describe, expect, it } from 'vitest';
import { forgetOrder, loadOrder, ORDER_KEY, saveOrder } from './order';

class MemoryStorage {
  data = new Map<string, string>();
  getItem = (k: string) => this.data.get(k) ?? null;
  setItem = (k: string, v: string) => void this.data.set(k, v);
}

const order = { message: 'success', order_id: 'o-1', amount: 3.5, items: [] };

describe('last order', () => {
  beforeEach(forgetOrder);
  it('survives a reload through sessionStorage', () => {
    const s = new MemoryStorage() as unknown as Storage;
    saveOrder(order, s);
    forgetOrder(); // a reload forgets memory
    expect(loadOrder(s)).toEqual(order);
    expect(JSON.parse((s as unknown as MemoryStorage).data.get(ORDER_KEY)!)).toEqual(order);
  });
  it('is null when nothing or garbage is stored', () => {
    const s = new MemoryStorage() as unknown as Storage;
    expect(loadOrder(s)).toBeNull();
    s.setItem(ORDER_KEY, '{not json');
    expect(loadOrder(s)).toBeNull();
    s.setItem(ORDER_KEY, '{"amount": 1}');
    expect(loadOrder(s)).toBeNull();
  });
  it('still shows from memory when storage throws', () => {
    const s = { setItem: () => { throw new Error('quota'); }, getItem: () => null } as unknown as Storage;
    saveOrder(order, s);
    expect(loadOrder(s)).toEqual(order);
  });
});
