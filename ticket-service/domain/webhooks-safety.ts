/**
 * Where webhooks may be sent. Unless WEBHOOK_ALLOW_PRIVATE_URLS is true: `https` only, and no address
 * outside public unicast (loopback, private, link-local, CGNAT, IPv4-mapped, unique-local and the other
 * special ranges ipaddr.js maintains). Names are checked where the connection is made (the socket's
 * `lookup`), so a name that resolves to a public address when checked and a private one when used
 * (DNS rebinding) cannot pass.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';

/** Why an address may not be a webhook target, or undefined for a public unicast address. */
function addressRefusal(address: string): string | undefined {
  if (!ipaddr.isValid(address)) return 'is not a valid address';
  const range = ipaddr.parse(address).range();
  if (range === 'unicast') return undefined;
  const names: Record<string, string> = {
    loopback: 'a loopback address',
    private: 'a private address',
    linkLocal: 'a link-local address',
    carrierGradeNat: 'a carrier-grade NAT (CGNAT) address',
    ipv4Mapped: 'an IPv4-mapped address',
    uniqueLocal: 'a unique-local address',
    unspecified: 'the unspecified address',
  };
  return `points at ${names[range] ?? `a special-purpose address (${range})`}`;
}

/** Why a URL may not be a webhook target (without resolving names), or undefined. */
export function urlRefusal(text: string, allowPrivate: boolean): string | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return 'is not a URL';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return 'must be an https URL';
  if (allowPrivate) return undefined;
  if (url.protocol !== 'https:') return 'must be https (http only with WEBHOOK_ALLOW_PRIVATE_URLS=true)';
  const host = url.hostname.replace(/^\[|\]$/g, '');
  if (isIP(host) !== 0) return addressRefusal(host);
  if (host === 'localhost' || host.endsWith('.localhost')) return 'points at a loopback address';
  return undefined;
}

class RefusedAddressError extends Error {
  readonly code = 'EWEBHOOKADDRESS';
  constructor(hostname: string, address: string, reason: string) {
    super(`${hostname} resolved to ${address}, which ${reason}`);
    this.name = 'RefusedAddressError';
  }
}

/** A socket `lookup` that refuses a name when any of its addresses may not be a webhook target. */
export const checkedLookup: LookupFunction = (hostname, options, callback) => {
  dnsLookup(hostname, { ...options, all: true }, (error, addresses: LookupAddress[]) => {
    if (error) {
      callback(error, '', undefined);
      return;
    }
    for (const { address } of addresses) {
      const reason = addressRefusal(address);
      if (reason) {
        callback(new RefusedAddressError(hostname, address, reason), '', undefined);
        return;
      }
    }
    const first = addresses[0];
    if (options.all) callback(null, addresses);
    else if (first) callback(null, first.address, first.family);
    else callback(Object.assign(new Error(`${hostname} has no address`), { code: 'ENOTFOUND' }), '', undefined);
  });
};
