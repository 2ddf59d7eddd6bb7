// Money is counted in integer cents in the UI, as in the shop: 3.5 × 3 is exactly 1050 cents.

/** Cents of a decimal price as the API sends it (a JSON number, or a numeric string). */
export function toCents(price: unknown): number {
  const n = typeof price === 'number' ? price : typeof price === 'string' ? Number(price) : NaN;
  if (!Number.isFinite(n)) return 0;
  return Math.round(n * 100);
}

/** "$1,234.50" from 123450 cents; negative amounts get a leading minus. */
export function formatCents(cents: number): string {
  const c = Math.round(cents);
  const sign = c < 0 ? '-' : '';
  const abs = Math.abs(c);
  const dollars = Math.floor(abs / 100)
    .toString()
    .replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const rest = String(abs % 100).padStart(2, '0');
  return `${sign}$${dollars}.${rest}`;
}

/** Formats a decimal price from the API. */
export const formatPrice = (price: unknown): string => formatCents(toCents(price));

/** The decimal number the API expects for an amount in cents (1050 → 10.5). */
export const centsToAmount = (cents: number): number => Math.round(cents) / 100;
