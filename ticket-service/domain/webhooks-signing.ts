/**
 * The `webhook-signature` header of a delivery, as Standard Webhooks defines it: `v1,` and the
 * base64 HMAC-SHA256, under the secret's key, of `{webhook-id}.{webhook-timestamp}.{body}`, one per
 * secret in use (both sign during a rotation), separated by spaces.
 *
 * Computed with node:crypto rather than `standardwebhooks`' `sign`, which hashes in JavaScript
 * (fast-sha256) and decodes the secret again on every call: 12.6 ms of ticket-service's CPU per
 * 1,000 deliveries, the most of any one function of the dispatcher (`node dist/bench/deliveries.js
 * --backlog 20000 --profile DIR`). The library stays the reference: receivers verify with it, and
 * test/webhooks-signing.test.ts checks that both sign alike.
 */
import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';

const PREFIX = 'whsec_';
/** Keys decoded so far, by secret (a service has a few subscriptions; the cache is bounded all the same). */
const keys = new Map<string, KeyObject>();
const KEYS_KEPT = 1024;

function keyOf(secret: string): KeyObject {
  let key = keys.get(secret);
  if (!key) {
    const bytes = Buffer.from(secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret, 'base64');
    if (bytes.length === 0) throw new Error("a webhook secret can't be empty");
    key = createSecretKey(bytes);
    if (keys.size >= KEYS_KEPT) keys.clear();
    keys.set(secret, key);
  }
  return key;
}

/** The `webhook-signature` header: one `v1,…` signature per secret, in the order given. */
export function signatures(secrets: string[], messageId: string, timestamp: Date, payload: string): string {
  const signed = `${messageId}.${Math.floor(timestamp.getTime() / 1000)}.${payload}`;
  return secrets.map((secret) => `v1,${createHmac('sha256', keyOf(secret)).update(signed, 'utf8').digest('base64')}`).join(' ');
}
