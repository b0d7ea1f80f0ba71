/** Dates: RFC 3339 in, UTC `Z` out. Stored as ISO strings with milliseconds so that they sort as text. */
import type { FieldError } from './errors.js';

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2})(?::(\d{2})(\.\d{1,9})?)?([Zz]|[+-]\d{2}:\d{2})?$/;

/**
 * Parses an RFC 3339 date-time; without an offset it is UTC (the original API's examples have none).
 * Returns undefined for impossible dates such as February 30th.
 */
export function parseDateTime(text: string): Date | undefined {
  const match = RFC3339.exec(text);
  if (!match) return undefined;
  const [, y, mo, d, h, mi, s = '00', fraction = '', offset = 'Z'] = match;
  const year = Number(y), month = Number(mo), day = Number(d), hour = Number(h), minute = Number(mi), second = Number(s);
  if (month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || second > 60) return undefined;
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (day > daysInMonth) return undefined;
  const millis = fraction ? Math.floor(Number(`0${fraction}`) * 1000) : 0;
  let time = Date.UTC(year, month - 1, day, hour, minute, Math.min(second, 59), millis);
  if (offset.toUpperCase() !== 'Z') {
    const sign = offset.startsWith('-') ? -1 : 1;
    const [oh, om] = offset.slice(1).split(':').map(Number);
    if ((oh ?? 0) > 23 || (om ?? 0) > 59) return undefined;
    time -= sign * ((oh ?? 0) * 60 + (om ?? 0)) * 60_000;
  }
  const date = new Date(time);
  return Number.isNaN(date.getTime()) || date.getUTCFullYear() > 9999 || date.getUTCFullYear() < 1 ? undefined : date;
}

/** Parses a date-time field of a request, collecting a field error instead of throwing. */
export function parseDateField(text: string, pointer: string, errors: FieldError[]): string | undefined {
  const date = parseDateTime(text);
  if (!date) {
    errors.push({ pointer, detail: 'must be a valid RFC 3339 date-time' });
    return undefined;
  }
  return date.toISOString();
}

/** Storage form (sortable, milliseconds) to API form, always to the second: `2025-06-15T09:00:00Z`. */
export function toApiDate(stored: string): string;
export function toApiDate(stored: string | null): string | null;
export function toApiDate(stored: string | null): string | null {
  return stored === null ? null : `${stored.slice(0, 19)}Z`;
}

export const nowIso = (): string => new Date().toISOString();
