/**
 * Free-text search over events: every word of the text must be the start of a word of the event's
 * name, description or venue, letters compared without case or accents. Full-text engines differ by
 * dialect, so this is the one place that knows them: SQLite's FTS5 table, or PostgreSQL's tsvector
 * index (both made in migrations/001-initial.ts). The store is given one, chosen at start-up.
 */
import { sql, type Expression, type SqlBool } from 'kysely';
import type { StoreDialect } from '../../platform/store/service-store.js';

export interface TextSearch {
  /** A condition on `events` that holds where every word of `text` matches; false when `text` has no words. */
  matches(text: string): Expression<SqlBool>;
}

/** The words of a query (q is at most 200 characters): runs of letters, digits and `_`, in NFKC form. */
export function searchWords(text: string): string[] {
  return text.normalize('NFKC').match(/[\p{L}\p{N}_]+/gu) ?? [];
}

const nothing = sql<SqlBool>`1 = 0`;

/** Each word as a prefix; quotes keep user text from being read as FTS5 syntax. */
const fts5Search: TextSearch = {
  matches(text) {
    const words = searchWords(text);
    if (words.length === 0) return nothing;
    const query = words.map((word) => `"${word}"*`).join(' ');
    return sql<SqlBool>`events.id IN (SELECT rowid FROM events_fts WHERE events_fts MATCH ${query})`;
  },
};

/** The same words, cut and folded by the database functions the index is built with. */
const tsvectorSearch: TextSearch = {
  matches(text) {
    const words = searchWords(text);
    if (words.length === 0) return nothing;
    return sql<SqlBool>`events.id IN (SELECT event_id FROM event_search WHERE document @@ event_search_query(${words.join(' ')}))`;
  },
};

export function textSearchFor(dialect: StoreDialect): TextSearch {
  return dialect === 'postgres' ? tsvectorSearch : fts5Search;
}
