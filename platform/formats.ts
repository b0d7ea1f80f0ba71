/** String formats of the contract that JSON Schema does not define, checked in the same pass as the schema. */
import { parseDateTime } from './time.js';

const knownCurrencies = new Set(Intl.supportedValuesOf('currency'));

export const isKnownCurrency = (code: string): boolean => knownCurrencies.has(code);

export function isKnownTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** Format name → check and the message an invalid value gets. */
export const CONTRACT_FORMATS: Record<string, { validate: (value: string) => boolean; message: string }> = {
  'date-time-input': { validate: (value) => parseDateTime(value) !== undefined, message: 'must be a valid RFC 3339 date-time (no offset means UTC), e.g. 2025-06-15T09:00:00' },
  'iso-4217': { validate: isKnownCurrency, message: 'must be an ISO 4217 currency code such as USD or EUR' },
  'iana-time-zone': { validate: isKnownTimeZone, message: 'must be an IANA time zone such as Europe/Paris' },
};

interface FormatRegistry {
  addFormat(name: string, format: { type: 'string'; validate: (value: string) => boolean }): unknown;
}

export function addContractFormats(ajv: FormatRegistry): void {
  for (const [name, { validate }] of Object.entries(CONTRACT_FORMATS)) ajv.addFormat(name, { type: 'string', validate });
}
