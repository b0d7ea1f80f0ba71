/**
 * Request validation as DESIGN.md's Errors section asks: bodies are validated without type coercion,
 * unknown fields are rejected and every error is reported; query, path and header parameters are
 * coerced from strings. Fastify's default Ajv does the opposite for bodies, so each HTTP part gets
 * its own Ajv (JSON Schema 2020-12, the dialect of OpenAPI 3.1).
 */
import { Ajv2020, type ErrorObject, type Options } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { FastifySchemaCompiler } from 'fastify';
import type { FieldError } from './errors.js';
import { addContractFormats, CONTRACT_FORMATS } from './formats.js';

// ajv-formats is CommonJS; under NodeNext its default import is the module object.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

/** OpenAPI keywords that are annotations, not validation. */
const OPENAPI_VOCABULARY = ['example', 'xml', 'externalDocs', 'discriminator'];

function makeAjv(options: Options): Ajv2020 {
  const ajv = new Ajv2020({ allErrors: true, strict: true, strictRequired: false, verbose: true, ...options });
  ajv.addVocabulary(OPENAPI_VOCABULARY);
  addFormats(ajv);
  addContractFormats(ajv);
  return ajv;
}

export function createValidatorCompiler(): FastifySchemaCompiler<Record<string, unknown>> {
  const bodyAjv = makeAjv({ coerceTypes: false, useDefaults: true, removeAdditional: false });
  const parameterAjv = makeAjv({ coerceTypes: 'array', useDefaults: true, removeAdditional: false });
  return ({ schema, httpPart }) => (httpPart === 'body' ? bodyAjv : parameterAjv).compile(schema);
}

/** A readable detail for one Ajv error. */
function describe(error: ErrorObject): string {
  switch (error.keyword) {
    case 'required':
      return 'is required';
    case 'additionalProperties':
      return 'is not a known field';
    case 'pattern': {
      const description = (error.parentSchema as { description?: string } | undefined)?.description;
      // Lower-case the first word unless it is an acronym (RFC, ISO).
      const lead = description && /^[A-Z][a-z]/.test(description) ? description.charAt(0).toLowerCase() + description.slice(1) : description;
      return lead ? `must be ${lead}` : (error.message ?? 'is invalid');
    }
    case 'format': {
      const format = (error.params as { format: string }).format;
      return CONTRACT_FORMATS[format]?.message ?? `must be a valid ${format}`;
    }
    case 'enum':
      return `must be one of ${(error.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(', ')}`;
    default:
      return error.message ?? 'is invalid';
  }
}

const COMBINATORS = new Set(['oneOf', 'anyOf', 'if']);

/**
 * One entry per invalid field: a JSON pointer into the body (`#/quantity`), or a parameter's name for
 * query, path and header parameters. The most specific message wins over `oneOf` summaries.
 */
export function fieldErrors(errors: ErrorObject[], context: string): FieldError[] {
  const byPointer = new Map<string, { detail: string; combinator: boolean }>();
  for (const error of errors) {
    let path = error.instancePath;
    const params = error.params as { missingProperty?: string; additionalProperty?: string };
    if (error.keyword === 'required' && params.missingProperty) path += `/${params.missingProperty}`;
    if (error.keyword === 'additionalProperties' && params.additionalProperty) path += `/${params.additionalProperty}`;
    const pointer = context === 'body' ? `#${path}` : path.replace(/^\//, '').split('/')[0] || context;
    const combinator = COMBINATORS.has(error.keyword);
    const known = byPointer.get(pointer);
    if (!known || (known.combinator && !combinator)) byPointer.set(pointer, { detail: describe(error), combinator });
  }
  return [...byPointer].map(([pointer, { detail }]) => ({ pointer, detail }));
}
