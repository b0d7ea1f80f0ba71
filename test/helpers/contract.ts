/**
 * Checks answers against the contract: the status must be declared for the operation and the body
 * must validate against the declared schema of its content type. Every test request goes through it.
 */
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { specOperations, type ServiceName, type SpecOperation } from '../../openapi/spec.js';
import { addContractFormats } from '../../platform/formats.js';

const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

interface CompiledOperation {
  spec: SpecOperation;
  pattern: RegExp;
}

export class ContractChecker {
  private readonly ajv = new Ajv2020({ allErrors: true, strict: false });
  private readonly operations: CompiledOperation[];
  private readonly validators = new Map<object, ValidateFunction>();
  /** operationId → status codes seen, for the contract test's summary. */
  readonly seen = new Map<string, Set<number>>();

  constructor(readonly service: ServiceName) {
    addFormats(this.ajv);
    addContractFormats(this.ajv);
    this.operations = specOperations(service).map((spec) => ({
      spec,
      pattern: new RegExp(`^${spec.path.replace(/\{\w+\}/g, '[^/]+')}$`),
    }));
  }

  find(method: string, url: string): SpecOperation | undefined {
    const path = url.split('?')[0] ?? url;
    return this.operations.find((o) => o.spec.method === method.toLowerCase() && o.pattern.test(path))?.spec;
  }

  /** Returns a list of contract violations (empty when the answer conforms). */
  check(method: string, url: string, status: number, contentType: string | undefined, body: string): string[] {
    const spec = this.find(method, url);
    if (!spec) return [];
    const id = spec.operation.operationId;
    if (!this.seen.has(id)) this.seen.set(id, new Set());
    this.seen.get(id)?.add(status);
    const declared = spec.operation.responses[String(status)] ?? spec.operation.responses[`${String(status)[0]}XX`] ?? spec.operation.responses.default;
    if (!declared) return [`${id}: status ${status} is not declared in the spec (${method} ${url})`];
    if (!declared.content) return body.length > 0 && status !== 204 ? [] : [];
    const mediaType = (contentType ?? '').split(';')[0]?.trim() ?? '';
    const media = declared.content[mediaType];
    if (!media) return [`${id}: status ${status} answered ${mediaType || 'no content type'}, the spec declares ${Object.keys(declared.content).join(', ')}`];
    let validate = this.validators.get(media.schema);
    if (!validate) {
      validate = this.ajv.compile(media.schema);
      this.validators.set(media.schema, validate);
    }
    let parsed: unknown;
    try {
      // Text answers (the Prometheus metrics) are checked as the string they are.
      parsed = mediaType === 'text/plain' ? body : JSON.parse(body);
    } catch {
      return [`${id}: status ${status} body is not JSON`];
    }
    if (!validate(parsed)) return [`${id}: status ${status} body does not match the spec: ${this.ajv.errorsText(validate.errors)}`];
    return [];
  }
}
