/** Money in integer minor units; currencies and their minor-unit digits come from ICU (Intl). */
import type { FieldError } from '../../platform/errors.js';

export { isKnownCurrency } from '../../platform/formats.js';

/** The contract's largest amount (the Money schema's maximum). */
const MAX_MINOR_UNITS = 100_000_000_000;

/** Digits after the decimal point of a currency (2 for USD, 0 for JPY, 3 for BHD). */
export function minorUnitDigits(currency: string): number {
  return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
}

/** The deprecated `price_per_ticket` (major units) in minor units, or a field error if it has too many decimals. */
export function majorToMinor(amount: number, currency: string, pointer: string, errors: FieldError[]): number | undefined {
  const digits = minorUnitDigits(currency);
  const minor = Math.round(amount * 10 ** digits);
  if (Math.abs(minor - amount * 10 ** digits) > 1e-6) {
    errors.push({ pointer, detail: `must have at most ${digits} decimal places for ${currency}` });
    return undefined;
  }
  if (minor > MAX_MINOR_UNITS) {
    errors.push({ pointer, detail: `must be at most ${MAX_MINOR_UNITS / 10 ** digits} ${currency}` });
    return undefined;
  }
  return minor;
}
