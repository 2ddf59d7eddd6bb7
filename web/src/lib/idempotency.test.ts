import { describe, expect, it } from 'vitest';
import { IDEMPOTENCY_KEY, newIdempotencyKey } from './idempotency';

describe('idempotency keys', () => {
  it('uses crypto.randomUUID when there is one', () => {
    const key = newIdempotencyKey({
      randomUUID: () => '0b5c7a4e-2f1d-4c3b-9a8e-7d6c5b4a3f21',
      getRandomValues: () => {
        throw new Error('not used');
      },
    } as unknown as Crypto);
    expect(key).toBe('0b5c7a4e-2f1d-4c3b-9a8e-7d6c5b4a3f21');
    expect(key).toMatch(IDEMPOTENCY_KEY);
  });

  it('falls back to 32 hex digits from crypto.getRandomValues (no randomUUID outside a secure context)', () => {
    const fill = <T extends ArrayBufferView | null>(a: T): T => {
      const bytes = a as unknown as Uint8Array;
      bytes.forEach((_, i) => (bytes[i] = i * 17));
      return a;
    };
    const key = newIdempotencyKey({ getRandomValues: fill } as unknown as Crypto);
    expect(key).toBe('00112233445566778899aabbccddeeff');
    // randomUUID that throws is passed over too.
    const throwing = {
      randomUUID: () => {
        throw new TypeError('not a secure context');
      },
      getRandomValues: fill,
    } as unknown as Crypto;
    expect(newIdempotencyKey(throwing)).toBe(key);
  });

  it('still makes a valid key without Web Crypto', () => {
    const a = newIdempotencyKey(undefined);
    const b = newIdempotencyKey(undefined);
    expect(a).toMatch(IDEMPOTENCY_KEY);
    expect(a).not.toBe(b);
  });

  it('the real one is a valid key, new every time', () => {
    const keys = new Set(Array.from({ length: 100 }, () => newIdempotencyKey()));
    expect(keys.size).toBe(100);
    for (const k of keys) expect(k).toMatch(IDEMPOTENCY_KEY);
  });
});
