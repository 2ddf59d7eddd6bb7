import { describe, expect, it } from 'vitest';
import { cardDigits, luhnValid, validExpiry } from './card';

describe('Luhn check', () => {
  it('accepts the test card prefilled at checkout, with or without separators', () => {
    expect(luhnValid('4111111111111111')).toBe(true);
    expect(luhnValid('4111 1111 1111 1111')).toBe(true);
    expect(luhnValid('5555-5555-5555-4444')).toBe(true);
    expect(luhnValid('4242424242424242')).toBe(true);
  });
  it('declines a wrong check digit, as the payment service does', () => {
    expect(luhnValid('4111 1111 1111 1112')).toBe(false);
    expect(luhnValid('4242424242424241')).toBe(false);
  });
  it('needs 12 to 19 digits', () => {
    expect(luhnValid('79927398713')).toBe(false); // Luhn-valid but 11 digits
    expect(luhnValid('000000000000')).toBe(true);
    expect(luhnValid('0'.repeat(20))).toBe(false);
    expect(luhnValid('')).toBe(false);
  });
  it('ignores everything but digits', () => {
    expect(cardDigits(' 4111-1111 1111.1111 ')).toBe('4111111111111111');
  });
  it('checks MM/YY', () => {
    expect(validExpiry('12/30')).toBe(true);
    expect(validExpiry('01 / 2031')).toBe(true);
    expect(validExpiry('13/30')).toBe(false);
    expect(validExpiry('1230')).toBe(false);
  });
});
