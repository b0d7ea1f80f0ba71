/** PostgreSQL errors by what a service should do about them. */

/**
 * SQLSTATEs of a connection the server ended or lost (pg_terminate_backend, a restart, the network), a
 * database that went away, or a connection the server refused because its connection slots (or the
 * database's or role's CONNECTION LIMIT) are all taken (53300): the request is answered 503, not 500.
 */
const CONNECTION_LOST = new Set(['57P01', '57P02', '57P03', '57P04', '08000', '08001', '08003', '08004', '08006', '08007', '3D000', '53300']);


/** The node errors and pg messages of a connection that is gone or never came. */
const NETWORK_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH']);

const codeOf = (error: unknown): string | undefined =>
  typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string' ? error.code : undefined;

/** Serialisation failure or deadlock: PostgreSQL aborted this side, and running it again is safe. */
export const isRetryableConflict = (error: unknown): boolean => {
  const code = codeOf(error);
  return code === '40001' || code === '40P01';
};

/** The database could not be reached or dropped the connection: a 503, never a wrong answer. */
export function isConnectionLost(error: unknown): boolean {
  const code = codeOf(error);
  if (code !== undefined && (CONNECTION_LOST.has(code) || NETWORK_CODES.has(code))) return true;
  const message = error instanceof Error ? error.message : '';
  return /Connection terminated|connection timeout|timeout exceeded when trying to connect|Client has encountered a connection error|is not queryable|terminating connection/i.test(message);
}
