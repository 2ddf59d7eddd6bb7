// One key per order attempt, sent as `Idempotency-Key` with POST /api/v1/checkout/process
// (SPEC §5 checkout): the shop answers a repeat of a key it has already processed with the
// same order and charges nothing, and a repeat that arrives while the first is still being
// processed waits for it. So every submit of one attempt (a double click, a retry after a
// network error or a timeout) carries the same key, and the next order gets a new one.

/** What the shop accepts: 1-128 characters of [A-Za-z0-9_-]. */
export const IDEMPOTENCY_KEY = /^[A-Za-z0-9_-]{1,128}$/;

type Random = Pick<Crypto, 'getRandomValues'> & { randomUUID?: () => string };

const hex = (bytes: Uint8Array): string => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');

/**
 * A new random key: a UUID from crypto.randomUUID() where the browser has it (only in a
 * secure context: https or localhost), else 32 hex digits from crypto.getRandomValues()
 * (there in every context).
 */
export function newIdempotencyKey(random: Random | undefined = globalThis.crypto): string {
  if (typeof random?.randomUUID === 'function') {
    try {
      return random.randomUUID();
    } catch {
      /* not allowed here: fall back to getRandomValues */
    }
  }
  if (typeof random?.getRandomValues === 'function') return hex(random.getRandomValues(new Uint8Array(16)));
  // No Web Crypto at all (a very old browser): still unique enough for one shopper's retries.
  let s = Date.now().toString(16);
  while (s.length < 40) s += Math.floor(Math.random() * 0x100000000).toString(16).padStart(8, '0');
  return s;
}
