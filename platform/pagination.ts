/** Keyset paging for list endpoints: an opaque cursor, and RFC 8288 `Link` headers as GitHub's API sends them. */
import type { FastifyRequest } from 'fastify';
import { ValidationError } from './errors.js';

export interface Cursor {
  /** Direction: the page after (`n`) or before (`p`) the position. */
  d: 'n' | 'p';
  /** Sort key value and id of the row at the position. */
  k: string | number | null;
  id: number | string;
}

export function encodeCursor(cursor: Cursor): string {
  return Buffer.from(JSON.stringify(cursor)).toString('base64url');
}

export function decodeCursor(text: string | undefined): Cursor | undefined {
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as Partial<Cursor>;
    const keyOk = value.k === null || typeof value.k === 'string' || typeof value.k === 'number';
    const idOk = typeof value.id === 'number' || typeof value.id === 'string';
    if ((value.d === 'n' || value.d === 'p') && keyOk && idOk) return value as Cursor;
  } catch {
    // fall through to the validation error
  }
  throw new ValidationError([{ pointer: 'cursor', detail: 'is not a cursor from a Link header' }]);
}

export interface PageLinks {
  next?: Record<string, string>;
  prev?: Record<string, string>;
}

/** The `Link` header for a page: the request's URL with its paging parameters replaced. */
export function linkHeader(request: FastifyRequest, links: PageLinks): string | undefined {
  const parts: string[] = [];
  for (const rel of ['prev', 'next'] as const) {
    const replace = links[rel];
    if (!replace) continue;
    const url = new URL(request.url, `${request.protocol}://${request.host}`);
    for (const name of ['cursor', 'offset']) url.searchParams.delete(name);
    for (const [name, value] of Object.entries(replace)) url.searchParams.set(name, value);
    parts.push(`<${url.toString()}>; rel="${rel}"`);
  }
  return parts.length > 0 ? parts.join(', ') : undefined;
}

/** A list answer's headers: `X-Total-Count` (the page's own length when no total was counted) and `Link`. */
export function listHeaders(request: FastifyRequest, page: Page<unknown>): Record<string, string> {
  const headers: Record<string, string> = { 'x-total-count': String(page.total ?? page.items.length) };
  const link = linkHeader(request, page.links);
  if (link) headers.link = link;
  return headers;
}

export interface Page<T> {
  items: T[];
  links: PageLinks;
  total?: number;
}

/**
 * Turns `limit + 1` rows fetched in the cursor's direction into a page and its links.
 * `position` gives the cursor key of a row.
 */
export function pageFromRows<T>(
  rows: T[],
  options: { limit: number; cursor: Cursor | undefined; offset: number; position: (row: T) => { k: Cursor['k']; id: Cursor['id'] } },
): Page<T> {
  const { limit, cursor, offset, position } = options;
  const more = rows.length > limit;
  const items = rows.slice(0, limit);
  const backwards = cursor?.d === 'p';
  if (backwards) items.reverse();
  const first = items[0];
  const last = items[items.length - 1];
  const links: PageLinks = {};
  const at = (d: 'n' | 'p', row: T) => ({ cursor: encodeCursor({ d, ...position(row) }) });
  if (last && (backwards || more)) links.next = at('n', last);
  if (first && (backwards ? more : cursor !== undefined)) links.prev = at('p', first);
  if (!cursor && offset > 0) links.prev = { offset: String(Math.max(0, offset - limit)) };
  return { items, links };
}

/** Where a page starts: after (or before) a cursor, or at an offset. */
interface PagePosition {
  cursor?: Cursor;
  offset: number;
}

/**
 * A page of a list ordered by id, from the query's `limit` (100 by default), `offset` and `cursor`:
 * `select` fetches `limit + 1` rows from the position, `count` gives the total.
 */
export async function pageById<T extends { id: number }>(
  query: { limit?: number; offset?: number; cursor?: string },
  select: (limit: number, position: PagePosition) => Promise<T[]>,
  count: () => Promise<number>,
): Promise<Page<T>> {
  const limit = query.limit ?? 100;
  const offset = query.offset ?? 0;
  const cursor = decodeCursor(query.cursor);
  const rows = await select(limit, { cursor, offset });
  const page = pageFromRows(rows, { limit, cursor, offset, position: (row) => ({ k: null, id: row.id }) });
  page.total = await count();
  return page;
}
