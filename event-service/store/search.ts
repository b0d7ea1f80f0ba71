/**
 * Free-text search over events. Full-text engines differ by dialect, so this is the one place that
 * knows SQLite's FTS5; a PostgreSQL store would implement `matchesText` with tsvector instead.
 */
import { sql, type Expression, type SqlBool } from 'kysely';

/** Every word must match (q is at most 200 characters), as a prefix; quotes keep user text from being read as FTS5 syntax. */
export function ftsQuery(text: string): string | undefined {
  const words = text.normalize('NFKC').match(/[\p{L}\p{N}_]+/gu) ?? [];
  if (words.length === 0) return undefined;
  return words.map((word) => `"${word}"*`).join(' ');
}

export function matchesText(text: string): Expression<SqlBool> {
  const query = ftsQuery(text);
  if (query === undefined) return sql<SqlBool>`0`;
  return sql<SqlBool>`events.id IN (SELECT rowid FROM events_fts WHERE events_fts MATCH ${query})`;
}
