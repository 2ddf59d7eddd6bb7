import { describe, expect, it } from 'vitest';
import { route } from './router';

describe('routes', () => {
  it('maps the shop pages', () => {
    expect(route('/')).toEqual({ page: 'home' });
    expect(route('/cart')).toEqual({ page: 'cart' });
    expect(route('/cart/')).toEqual({ page: 'cart' });
    expect(route('/checkout')).toEqual({ page: 'checkout' });
    expect(route('/confirmation')).toEqual({ page: 'confirmation' });
    expect(route('/products/f95e2475')).toEqual({ page: 'product', id: 'f95e2475' });
    expect(route('/products/a%20b')).toEqual({ page: 'product', id: 'a b' });
    expect(route('/search?q=%20tea%20')).toEqual({ page: 'search', query: 'tea' });
    expect(route('/search')).toEqual({ page: 'search', query: '' });
    expect(route('/admin/faults')).toEqual({ page: 'faults' });
    expect(route('/admin/faults/')).toEqual({ page: 'faults' });
  });
  it('sends anything else to not found', () => {
    expect(route('/nope')).toEqual({ page: 'not-found' });
    expect(route('/products')).toEqual({ page: 'not-found' });
    expect(route('/products/a/b')).toEqual({ page: 'not-found' });
    expect(route('/admin')).toEqual({ page: 'not-found' });
  });
});
