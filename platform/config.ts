/** Configuration from environment variables, validated at start-up (TypeBox: outside the public contract). */
import { Type, type Static, type TObject } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

const Port = (fallback: number) => Type.Integer({ minimum: 0, maximum: 65535, default: fallback });
const Seconds = (fallback: number) => Type.Number({ minimum: 0, maximum: 31_536_000, default: fallback });
const Token = Type.String({ minLength: 16, maxLength: 512, pattern: '^[\\x21-\\x7E]+$' });

const Common = {
  HOST: Type.String({ minLength: 1, default: '127.0.0.1' }),
  SERVICE_TOKEN: Token,
  ADMIN_TOKEN: Type.Optional(Token),
  /** A token that may read /metrics (besides the admin token) when ADMIN_TOKEN is set. */
  METRICS_TOKEN: Type.Optional(Token),
  /** off: no metrics are kept at all and GET /metrics answers 404 (to measure what they cost). */
  METRICS: Type.Union([Type.Literal('on'), Type.Literal('off')], { default: 'on' }),
  EVENT_SERVICE_PORT: Port(5001),
  TICKET_SERVICE_PORT: Port(5002),
  SWEEP_INTERVAL_SECONDS: Type.Number({ exclusiveMinimum: 0, maximum: 86_400, default: 5 }),
  RATE_LIMIT_WRITES_PER_MINUTE: Type.Integer({ minimum: 0, maximum: 1_000_000, default: 0 }),
  SQLITE_SYNCHRONOUS: Type.Union([Type.Literal('FULL'), Type.Literal('EXTRA'), Type.Literal('NORMAL')], { default: 'FULL' }),
  CORS_ORIGINS: Type.Optional(Type.String()),
  LOG_LEVEL: Type.Union(
    ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'].map((level) => Type.Literal(level)),
    { default: 'info' },
  ),
  /** Processes of the service on one port; more than 1 needs PostgreSQL. */
  WORKERS: Type.Integer({ minimum: 1, maximum: 64, default: 1 }),
  /** PostgreSQL connections each process may open (WORKERS × this, per service, must fit the server's max_connections); migrations hold one while they use another. */
  DATABASE_POOL_SIZE: Type.Integer({ minimum: 2, maximum: 1000, default: 10 }),
  /** Largest accepted request body in bytes. */
  BODY_LIMIT_BYTES: Type.Integer({ minimum: 1024, maximum: 10_485_760, default: 65_536 }),
};

export const EventServiceConfigSchema = Type.Object({
  ...Common,
  EVENT_DB_PATH: Type.String({ minLength: 1, default: 'data/event_data.db' }),
  /** postgres://… puts event-service on PostgreSQL; unset, it uses EVENT_DB_PATH. */
  EVENT_DATABASE_URL: Type.Optional(Type.String({ minLength: 1 })),
  HOLD_GRACE_SECONDS: Seconds(60),
  DEFAULT_TICKET_PRICE: Type.Integer({ minimum: 0, maximum: 100_000_000_000, default: 10_000 }),
  DEFAULT_CURRENCY: Type.String({ pattern: '^[A-Z]{3}$', default: 'USD' }),
});
export type EventServiceConfig = Static<typeof EventServiceConfigSchema>;

export const TicketServiceConfigSchema = Type.Object({
  ...Common,
  TICKET_DB_PATH: Type.String({ minLength: 1, default: 'data/ticket_data.db' }),
  /** postgres://… puts ticket-service on PostgreSQL; unset, it uses TICKET_DB_PATH. */
  TICKET_DATABASE_URL: Type.Optional(Type.String({ minLength: 1 })),
  /** One event-service URL, or several (comma-separated replicas) balanced by undici's BalancedPool. */
  EVENT_SERVICE_URL: Type.String({ pattern: '^\\s*https?://[^,\\s]+(\\s*,\\s*https?://[^,\\s]+)*\\s*$', default: 'http://127.0.0.1:5001' }),
  RESERVATION_TTL_SECONDS: Type.Number({ exclusiveMinimum: 0, maximum: 31_536_000, default: 900 }),
  RECONCILE_SETTLE_SECONDS: Seconds(30),
  MAX_TICKETS_PER_ORDER: Type.Integer({ minimum: 1, maximum: 1000, default: 10 }),
  /** How long a waiting-list offer's ticket stays RESERVED. */
  WAITLIST_OFFER_TTL_SECONDS: Type.Number({ exclusiveMinimum: 0, maximum: 31_536_000, default: 3600 }),
  /** A token that may confirm (and read) tickets, for a payment integration, when ADMIN_TOKEN is set. */
  PAYMENT_TOKEN: Type.Optional(Token),
  /** Connect + answer budget for one call to event-service. */
  EVENT_SERVICE_TIMEOUT_SECONDS: Type.Number({ exclusiveMinimum: 0, maximum: 300, default: 5 }),
  /** One webhook delivery attempt's budget (connect, answer and body). */
  WEBHOOK_TIMEOUT_SECONDS: Type.Number({ exclusiveMinimum: 0, maximum: 300, default: 10 }),
  /**
   * Attempts in flight to one webhook endpoint, per process. Each attempt's outcome waits for its
   * durable commit before the endpoint's next delivery goes, so this bounds how fast deliveries keep
   * up under load (node dist/bench/deliveries.js); lower it for a receiver that cannot take as many.
   */
  WEBHOOK_CONCURRENCY: Type.Integer({ minimum: 1, maximum: 64, default: 16 }),
  /** How long a delivery is retried before it is `failed`, and how long an endpoint fails everything before it is disabled. */
  WEBHOOK_RETRY_HOURS: Type.Number({ exclusiveMinimum: 0, maximum: 8760, default: 72 }),
  /** The first retry's delay; each next one is three times longer (with jitter). Lowered by tests. */
  WEBHOOK_RETRY_BASE_SECONDS: Type.Number({ exclusiveMinimum: 0, maximum: 3600, default: 5 }),
  /** How long delivered and failed deliveries stay in the delivery log. */
  WEBHOOK_RETENTION_DAYS: Type.Number({ exclusiveMinimum: 0, maximum: 3650, default: 7 }),
  /** http and private addresses as webhook targets; unset: true without ADMIN_TOKEN, false with it. */
  WEBHOOK_ALLOW_PRIVATE_URLS: Type.Optional(Type.Boolean()),
});
export type TicketServiceConfig = Static<typeof TicketServiceConfigSchema>;

/** Whether webhooks may target http and private addresses: as configured, else only in development mode. */
export const webhookPrivateUrlsAllowed = (config: TicketServiceConfig): boolean => config.WEBHOOK_ALLOW_PRIVATE_URLS ?? config.ADMIN_TOKEN === undefined;

/** The URL a local client reaches a service on (a wildcard listen address means loopback). */
export function localUrl(host: string, port: number): string {
  const reachable = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}`;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
  }
}

const WHOLE_NUMBER = /^[-+]?\d+$/;
const DECIMAL_NUMBER = /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i;

/**
 * Reads the variables a schema names from `env`, applies defaults, converts strings to numbers and
 * reports every invalid variable at once.
 */
export function loadConfig<T extends TObject>(schema: T, env: Record<string, string | undefined>): Static<T> {
  const raw: Record<string, unknown> = {};
  /** Numbers that do not read as one: the problem, by variable. */
  const unreadable = new Map<string, string>();
  for (const [key, property] of Object.entries(schema.properties) as Array<[string, { type?: unknown }]>) {
    const value = env[key];
    if (value === undefined || value === '') continue;
    // Numbers are read strictly here: TypeBox's Convert would read "1.5" or "1e1" as the integer 1 and "0x10" as 16.
    if (property.type === 'integer' || property.type === 'number') {
      const pattern = property.type === 'integer' ? WHOLE_NUMBER : DECIMAL_NUMBER;
      if (!pattern.test(value.trim())) {
        unreadable.set(key, `${key} = ${JSON.stringify(value)}: expected ${property.type === 'integer' ? 'a whole number' : 'a number'}`);
        continue;
      }
      raw[key] = Number(value);
    } else {
      raw[key] = value;
    }
  }
  const withDefaults = Value.Default(schema, raw);
  const converted = Value.Convert(schema, withDefaults);
  // A number that did not read as one is reported as such, not by what its default or conversion made of it.
  const errors = [...Value.Errors(schema, converted)].map((error) => ({ name: error.path.replace(/^\//, ''), message: error.message })).filter(({ name }) => !unreadable.has(name));
  const problems = [
    ...unreadable.values(),
    ...errors.map(({ name, message }) => {
      if (name === 'SERVICE_TOKEN' && raw[name] === undefined) {
        return 'SERVICE_TOKEN is not set: start both services with `npm start` (which generates one) or set the same SERVICE_TOKEN (at least 16 characters) for both services';
      }
      const shown = name.endsWith('TOKEN') ? '(hidden)' : JSON.stringify(raw[name]);
      return `${name} = ${shown}: ${message}`;
    }),
  ];
  if (problems.length > 0) throw new ConfigError([...new Set(problems)]);
  return converted as Static<T>;
}

/** The origins allowed to call a service from a browser: the two services' own URLs unless configured. */
export function corsOrigins(config: Static<typeof EventServiceConfigSchema> | Static<typeof TicketServiceConfigSchema>): string[] {
  if (config.CORS_ORIGINS) return config.CORS_ORIGINS.split(',').map((origin) => origin.trim()).filter(Boolean);
  const hosts = new Set(['127.0.0.1', 'localhost', config.HOST]);
  const origins: string[] = [];
  for (const host of hosts) {
    for (const port of [config.EVENT_SERVICE_PORT, config.TICKET_SERVICE_PORT]) origins.push(`http://${host}:${port}`);
  }
  return origins;
}
