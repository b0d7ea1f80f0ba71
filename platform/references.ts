/**
 * New references (a ticket's `reference`, which is also its hold's id; a waiting-list entry's).
 *
 * A reference is a UUIDv7 (RFC 9562): 48 bits of time, then random bits. Being time-ordered, a new
 * reference lands at the right-hand edge of every B-tree keyed by it (`tickets.reference`,
 * `claimed_references`, event-service's `holds`) instead of on a random page: a commit writes one
 * page of each such index to the WAL, not one per purchase in the batch, and the pages it touches
 * stay in the cache. (`npm run bench`'s storm, and `node dist/bench/ab.js`, measure it.)
 *
 * A reference is also a bearer secret (`X-Ticket-Reference` reads and cancels a ticket), so every bit
 * after the time is fresh randomness from the `uuid` library's CSPRNG: 73 random bits. The library's
 * default for v7, a counter within the millisecond, would make a neighbour's reference guessable
 * from one's own; passing options takes the sequence from the random bytes instead. The bytes come
 * from a pool refilled from the CSPRNG (platform/random-pool.ts): the library asks the CSPRNG for
 * 16 bytes per id, a system call each time.
 */
import { v7 } from 'uuid';
import { takeRandom } from './random-pool.js';

export const newReference = (): string => v7({ random: takeRandom(16) });
