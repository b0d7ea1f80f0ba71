/** The `webhook-signature` header (ticket-service/domain/webhooks-signing.ts): Standard Webhooks signatures a receiver verifies with `standardwebhooks`. */
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { Webhook } from 'standardwebhooks';
import { signatures } from '../ticket-service/domain/webhooks-signing.js';

const secret = () => `whsec_${randomBytes(32).toString('base64')}`;

t.test('each signature verifies with standardwebhooks, for any payload (non-ASCII and empty included)', async (t) => {
  const payloads = ['{"type":"ticket.reserved","data":{"id":1}}', '{"name":"Zoë – café ☕ 🎫"}', '', JSON.stringify({ note: 'x'.repeat(10_000) })];
  for (const payload of payloads) {
    const key = secret();
    const messageId = `msg_${randomBytes(8).toString('hex')}`;
    const timestamp = new Date();
    const headers = { 'webhook-id': messageId, 'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)), 'webhook-signature': signatures([key], messageId, timestamp, payload) };
    t.match(headers['webhook-signature'], /^v1,[A-Za-z0-9+/]{43}=$/, `payload of ${payload.length} characters: one v1 signature`);
    t.doesNotThrow(() => new Webhook(key).verify(payload, headers), `payload of ${payload.length} characters verifies`);
  }
});

t.test('a secret without the whsec_ prefix signs with the same key (as standardwebhooks reads it)', async (t) => {
  const bare = randomBytes(24).toString('base64');
  const timestamp = new Date();
  t.equal(signatures([bare], 'msg_1', timestamp, '{}'), signatures([`whsec_${bare}`], 'msg_1', timestamp, '{}'));
  t.equal(signatures([bare], 'msg_1', timestamp, '{}'), new Webhook(bare).sign('msg_1', timestamp, '{}'));
});

t.test('during a rotation both secrets sign, in order, and a receiver with either verifies the delivery', async (t) => {
  const [current, previous] = [secret(), secret()];
  const payload = '{"type":"ticket.confirmed"}';
  const timestamp = new Date();
  const header = signatures([current, previous], 'msg_rotation', timestamp, payload);
  t.equal(header.split(' ').length, 2, 'two signatures');
  t.equal(header.split(' ')[1], new Webhook(previous).sign('msg_rotation', timestamp, payload), 'the old secret signs second');
  const headers = { 'webhook-id': 'msg_rotation', 'webhook-timestamp': String(Math.floor(timestamp.getTime() / 1000)), 'webhook-signature': header };
  for (const key of [current, previous]) t.same(new Webhook(key).verify(payload, headers), JSON.parse(payload), 'verifies');
  t.throws(() => new Webhook(secret()).verify(payload, headers), 'another secret does not verify');
});

t.test('an empty secret is refused rather than signing with an empty key', async (t) => {
  t.throws(() => signatures(['whsec_'], 'msg_a', new Date(), '{}'), /empty/);
});
