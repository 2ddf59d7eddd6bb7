/** Digits of a card number as typed ("4111 1111-1111 1111" → "4111111111111111"). */
export const cardDigits = (number: string): string => number.replace(/\D/g, '');

/** The Luhn check, as the payment service applies it to the digits of the number. */
export function luhnValid(number: string): boolean {
  const digits = cardDigits(number);
  if (digits.length < 12 || digits.length > 19) return false;
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = digits.charCodeAt(digits.length - 1 - i) - 48;
    if (i % 2 === 1) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
  }
  return sum % 10 === 0;
}

/** MM/YY with a real month. */
export const validExpiry = (value: string): boolean => /^(0[1-9]|1[0-2])\s*\/\s*(\d{2}|\d{4})$/.test(value.trim());
