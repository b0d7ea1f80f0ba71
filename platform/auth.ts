/**
 * Who is calling. The spec's `security` of each operation says which credentials it accepts:
 * - `serviceToken`: the token shared by the services (`SERVICE_TOKEN`);
 * - `adminToken`: `ADMIN_TOKEN`; without one configured (development mode) admin operations are open;
 * - `paymentToken`: `PAYMENT_TOKEN`, for a payment integration that confirms paid tickets;
 * - `metricsToken`: `METRICS_TOKEN`, for a metrics scraper (`GET /metrics` only);
 * - `ticketReference`: a ticket's `reference` in `X-Ticket-Reference`, checked by the route;
 * - `{}`: anonymous.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { ForbiddenError, UnauthorizedError } from './errors.js';

export type Principal = 'service' | 'admin' | 'payment' | 'metrics' | 'anonymous';

export interface AccessRule {
  service: boolean;
  admin: boolean;
  payment: boolean;
  metrics: boolean;
  reference: boolean;
  anonymous: boolean;
}

export function accessRule(security: Array<Record<string, string[]>> | undefined): AccessRule {
  const schemes = (security ?? [{}]).map((requirement) => Object.keys(requirement));
  return {
    service: schemes.some((names) => names.includes('serviceToken')),
    admin: schemes.some((names) => names.includes('adminToken')),
    payment: schemes.some((names) => names.includes('paymentToken')),
    metrics: schemes.some((names) => names.includes('metricsToken')),
    reference: schemes.some((names) => names.includes('ticketReference')),
    anonymous: schemes.some((names) => names.length === 0),
  };
}

const digest = (value: string): Buffer => createHash('sha256').update(value).digest();
/** Compares secrets in constant time (hashing first makes the lengths equal). */
export const sameSecret = (given: string, expected: string): boolean => timingSafeEqual(digest(given), digest(expected));

export interface Tokens {
  serviceToken: string;
  adminToken: string | undefined;
  paymentToken?: string | undefined;
  metricsToken?: string | undefined;
}

/** The configured tokens, hashed once at start-up: a check then hashes only the token given. */
export interface KnownTokens {
  service: Buffer;
  admin: Buffer | undefined;
  payment: Buffer | undefined;
  metrics: Buffer | undefined;
}

export const knownTokens = (tokens: Tokens): KnownTokens => ({
  service: digest(tokens.serviceToken),
  admin: tokens.adminToken === undefined ? undefined : digest(tokens.adminToken),
  payment: tokens.paymentToken === undefined ? undefined : digest(tokens.paymentToken),
  metrics: tokens.metricsToken === undefined ? undefined : digest(tokens.metricsToken),
});

/**
 * The caller's principal, or an error when the operation is refused. A route that accepts a ticket
 * reference learns `needsReference` and checks it against the ticket itself.
 */
export function authenticate(request: FastifyRequest, rule: AccessRule, tokens: KnownTokens): { principal: Principal; needsReference: boolean } {
  const header = request.headers.authorization;
  let principal: Principal = 'anonymous';
  if (header !== undefined) {
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
    const token = match?.[1];
    if (!token) throw new UnauthorizedError("The Authorization header must be 'Bearer <token>'.");
    const given = digest(token);
    if (timingSafeEqual(given, tokens.service)) principal = 'service';
    else if (tokens.admin !== undefined && timingSafeEqual(given, tokens.admin)) principal = 'admin';
    else if (tokens.payment !== undefined && timingSafeEqual(given, tokens.payment)) principal = 'payment';
    else if (tokens.metrics !== undefined && timingSafeEqual(given, tokens.metrics)) principal = 'metrics';
    else throw new UnauthorizedError('The bearer token is not valid.');
  }
  const developmentMode = tokens.admin === undefined;
  if (principal === 'service' && rule.service) return { principal, needsReference: false };
  if (principal === 'admin' && rule.admin) return { principal, needsReference: false };
  if (principal === 'payment' && rule.payment) return { principal, needsReference: false };
  if (principal === 'metrics' && rule.metrics) return { principal, needsReference: false };
  const openToAll = rule.anonymous && !rule.admin && !rule.reference;
  const openInDevelopment = rule.admin && developmentMode;
  if (openToAll || openInDevelopment) return { principal, needsReference: false };
  if (principal === 'anonymous' && rule.reference) return { principal, needsReference: true };
  if (principal === 'anonymous') {
    const wanted = rule.service && !rule.admin ? 'the service token' : rule.metrics ? 'the admin token or METRICS_TOKEN' : 'the admin token';
    throw new UnauthorizedError(`This operation needs ${wanted} ('Authorization: Bearer <token>')${rule.reference ? " or the ticket's reference in X-Ticket-Reference" : ''}.`);
  }
  throw new ForbiddenError(`The ${principal} token does not grant this operation.`);
}
