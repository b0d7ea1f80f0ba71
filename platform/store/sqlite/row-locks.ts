/**
 * Row locks (`FOR UPDATE`, `FOR SHARE`, `SKIP LOCKED`, …) are PostgreSQL's way of making a read inside
 * a change hold until the change commits. SQLite has no such clause and needs none: every change runs
 * inside the one write transaction (platform/store/sqlite/group-commit.ts), so what it read cannot
 * change under it. This plugin drops those clauses on SQLite, so the services' queries say what
 * PostgreSQL needs and stay the same for both engines.
 */
import { OperationNodeTransformer, type KyselyPlugin, type PluginTransformQueryArgs, type PluginTransformResultArgs, type QueryResult, type RootOperationNode, type SelectQueryNode, type UnknownRow } from 'kysely';

const ROW_LOCKS = new Set(['ForUpdate', 'ForNoKeyUpdate', 'ForShare', 'ForKeyShare', 'NoWait', 'SkipLocked']);

class RowLockRemover extends OperationNodeTransformer {
  protected override transformSelectQuery(node: SelectQueryNode): SelectQueryNode {
    const transformed = super.transformSelectQuery(node);
    const kept = transformed.endModifiers?.filter((modifier) => modifier.modifier === undefined || !ROW_LOCKS.has(modifier.modifier));
    if (kept === undefined || kept.length === transformed.endModifiers?.length) return transformed;
    return Object.freeze({ ...transformed, endModifiers: kept.length > 0 ? kept : undefined });
  }
}

export class WithoutRowLocks implements KyselyPlugin {
  readonly #remover = new RowLockRemover();

  transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
    return this.#remover.transformNode(args.node);
  }

  async transformResult(args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> {
    return args.result;
  }
}
