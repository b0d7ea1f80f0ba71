/** Domain errors as values with a type; one error handler maps them to RFC 9457 problem+json. */

export const PROBLEM_KINDS = {
  validation: { status: 400, title: 'Invalid request' },
  'malformed-body': { status: 400, title: 'Malformed request body' },
  'malformed-request': { status: 400, title: 'Malformed HTTP request' },
  unauthorized: { status: 401, title: 'Authentication required' },
  forbidden: { status: 403, title: 'Not allowed' },
  'not-found': { status: 404, title: 'Not found' },
  'sold-out': { status: 409, title: 'Not enough seats' },
  'sales-closed': { status: 409, title: 'Sales are closed' },
  'seats-available': { status: 409, title: 'Seats are available' },
  'hold-state': { status: 409, title: 'Hold is in the wrong state' },
  'in-use': { status: 409, title: 'Resource is in use' },
  'capacity-exceeded': { status: 409, title: 'Venue capacity exceeded' },
  conflict: { status: 409, title: 'Conflict with the current state' },
  'invalid-transition': { status: 409, title: 'Status transition not allowed' },
  'reservation-expired': { status: 409, title: 'Reservation expired' },
  'idempotency-in-flight': { status: 409, title: 'A request with this Idempotency-Key is in progress' },
  'idempotency-key-reused': { status: 422, title: 'Idempotency-Key reused with another body' },
  'precondition-failed': { status: 412, title: 'The resource changed' },
  'request-timeout': { status: 408, title: 'Request not received in time' },
  'payload-too-large': { status: 413, title: 'Request body too large' },
  'headers-too-large': { status: 431, title: 'Request headers too large' },
  'unsupported-media-type': { status: 415, title: 'Unsupported media type' },
  'webhook-url-refused': { status: 400, title: 'Webhook URL not allowed' },
  'rate-limited': { status: 429, title: 'Too many requests' },
  unavailable: { status: 503, title: 'Service unavailable' },
  internal: { status: 500, title: 'Internal error' },
} as const;

export type ProblemKind = keyof typeof PROBLEM_KINDS;

export interface FieldError {
  pointer: string;
  detail: string;
}

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail?: string;
  errors?: FieldError[];
  allowed_transitions?: string[];
  [extension: string]: unknown;
}

export const problemType = (kind: ProblemKind): string => `urn:eventsync:problem:${kind}`;

export class ProblemError extends Error {
  readonly status: number;
  constructor(
    readonly kind: ProblemKind,
    detail: string,
    readonly extensions: Record<string, unknown> = {},
  ) {
    super(detail);
    this.name = 'ProblemError';
    this.status = PROBLEM_KINDS[kind].status;
  }

  toBody(): ProblemBody {
    return {
      type: problemType(this.kind),
      title: PROBLEM_KINDS[this.kind].title,
      status: this.status,
      detail: this.message,
      ...this.extensions,
    };
  }
}

/** An answer stored earlier (an idempotent replay) or relayed from another service, sent as it was. */
export class StoredProblemError extends ProblemError {
  constructor(
    private readonly body: ProblemBody,
    readonly headers: Record<string, string> = {},
  ) {
    super('conflict', body.detail ?? body.title);
    (this as { status: number }).status = body.status;
  }

  override toBody(): ProblemBody {
    return this.body;
  }
}

export class ValidationError extends ProblemError {
  constructor(readonly errors: FieldError[]) {
    super(
      'validation',
      errors.length === 1 ? `${errors[0]?.pointer} ${errors[0]?.detail}` : `${errors.length} fields are invalid`,
      { errors },
    );
  }
}

export class NotFoundError extends ProblemError {
  constructor(detail: string) {
    super('not-found', detail);
  }
}

export class ConflictError extends ProblemError {
  constructor(kind: Extract<ProblemKind, `${string}`> & ConflictKind, detail: string, extensions: Record<string, unknown> = {}) {
    super(kind, detail, extensions);
  }
}
type ConflictKind =
  | 'sold-out'
  | 'sales-closed'
  | 'seats-available'
  | 'hold-state'
  | 'in-use'
  | 'capacity-exceeded'
  | 'conflict'
  | 'invalid-transition'
  | 'reservation-expired'
  | 'idempotency-in-flight';

export class UnauthorizedError extends ProblemError {
  constructor(detail: string) {
    super('unauthorized', detail);
  }
}

export class ForbiddenError extends ProblemError {
  constructor(detail: string) {
    super('forbidden', detail);
  }
}

export class UnavailableError extends ProblemError {
  constructor(detail: string) {
    super('unavailable', detail);
  }
}
