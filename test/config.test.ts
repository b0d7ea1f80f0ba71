/** Configuration from the environment (platform/config.ts): numbers are read strictly, and every bad variable is named at once. */
import t from 'tap';
import { ConfigError, loadConfig, TicketServiceConfigSchema } from '../platform/config.js';

const base = { SERVICE_TOKEN: 'a-service-token-of-some-length' };

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(TicketServiceConfigSchema, { ...base, ...env });
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

t.test('whole numbers and numbers are read from their usual spellings', async (t) => {
  const config = loadConfig(TicketServiceConfigSchema, { ...base, WEBHOOK_CONCURRENCY: '8', WORKERS: ' 2 ', SWEEP_INTERVAL_SECONDS: '0.5', WEBHOOK_RETENTION_DAYS: '2e-5', WEBHOOK_TIMEOUT_SECONDS: '+3' });
  t.match(config, { WEBHOOK_CONCURRENCY: 8, WORKERS: 2, SWEEP_INTERVAL_SECONDS: 0.5, WEBHOOK_RETENTION_DAYS: 0.00002, WEBHOOK_TIMEOUT_SECONDS: 3 });
  t.equal(loadConfig(TicketServiceConfigSchema, base).WEBHOOK_CONCURRENCY, 16, 'WEBHOOK_CONCURRENCY is 16 when not set');
});

t.test('a whole-number setting given a fraction, an exponent or hexadecimal is refused, not truncated', async (t) => {
  for (const value of ['1.5', '64.9', '1e1', '0x10', '16abc', 'abc', '0.5']) {
    t.same(problems({ WEBHOOK_CONCURRENCY: value }), [`WEBHOOK_CONCURRENCY = ${JSON.stringify(value)}: expected a whole number`], value);
  }
});

t.test('a number setting given something that is not a number is refused', async (t) => {
  for (const value of ['0x10', '5s', '.', 'Infinity']) {
    t.same(problems({ SWEEP_INTERVAL_SECONDS: value }), [`SWEEP_INTERVAL_SECONDS = ${JSON.stringify(value)}: expected a number`], value);
  }
});

t.test('a number out of its range names the variable, its value and the bound; all problems are reported together', async (t) => {
  t.match(problems({ WEBHOOK_CONCURRENCY: '0' }), [/^WEBHOOK_CONCURRENCY = 0: .*greater or equal to 1/]);
  t.match(problems({ WEBHOOK_CONCURRENCY: '65' }), [/^WEBHOOK_CONCURRENCY = 65: .*less or equal to 64/]);
  const both = problems({ WEBHOOK_CONCURRENCY: '1.5', WORKERS: '0' });
  t.equal(both.length, 2, both.join('; '));
  t.match(both, [/^WEBHOOK_CONCURRENCY = "1.5": expected a whole number$/, /^WORKERS = 0: /]);
});
