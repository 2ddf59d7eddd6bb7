import { describe, expect, it } from 'vitest';
import { centsToAmount, formatCents, formatPrice, toCents } from './money';

describe('money in integer cents', () => {
  it('turns API prices into cents without float drift', () => {
    expect(toCents(3.5)).toBe(350);
    expect(toCents(4)).toBe(400);
    expect(toCents(0.1 + 0.2)).toBe(30);
    expect(toCents(19.99)).toBe(1999);
    expect(toCents('2.75')).toBe(275);
  });
  it('counts 3.5 × 3 as exactly 1050 cents', () => {
    expect(toCents(3.5) * 3).toBe(1050);
    expect(formatCents(toCents(3.5) * 3)).toBe('$10.50');
  });
  it('treats missing or bad prices as zero', () => {
    expect(toCents(null)).toBe(0);
    expect(toCents(undefined)).toBe(0);
    expect(toCents('abc')).toBe(0);
    expect(toCents(NaN)).toBe(0);
    expect(toCents(Infinity)).toBe(0);
  });
  it('formats dollars with two decimals and thousands separators', () => {
    expect(formatCents(0)).toBe('$0.00');
    expect(formatCents(5)).toBe('$0.05');
    expect(formatCents(350)).toBe('$3.50');
    expect(formatCents(123456789)).toBe('$1,234,567.89');
    expect(formatCents(-1050)).toBe('-$10.50');
    expect(formatPrice(3.5)).toBe('$3.50');
  });
  it('sends amounts as decimal numbers', () => {
    expect(centsToAmount(1050)).toBe(10.5);
    expect(centsToAmount(350)).toBe(3.5);
    expect(centsToAmount(1)).toBe(0.01);
  });
});
