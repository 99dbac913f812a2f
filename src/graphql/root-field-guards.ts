import SchemaBuilder, { BasePlugin, type PothosOutputFieldConfig, type SchemaTypes } from '@pothos/core';
import type { GraphQLFieldResolver } from 'graphql';
import { assertApiKeyScope } from '../auth/api-key-scopes.js';
import { rateChecksFor } from '../rate-limit/rules.js';
import type { GraphQLContext } from './context.js';

type RootKind = 'Query' | 'Mutation' | 'Subscription';

/**
 * Guards every root field before it runs, over HTTP, SSE and graphql-ws alike: an API key must
 * have the scope the field needs, then the call counts against the caller's rate limits
 * (ctx.services.rateLimiter). Subscriptions are guarded once, when they start.
 */
export class RootFieldGuardsPlugin<Types extends SchemaTypes> extends BasePlugin<Types> {
  override wrapResolve(
    resolver: GraphQLFieldResolver<unknown, Types['Context'], object>,
    fieldConfig: PothosOutputFieldConfig<Types>,
  ): GraphQLFieldResolver<unknown, Types['Context'], object> {
    if (fieldConfig.kind !== 'Query' && fieldConfig.kind !== 'Mutation') return resolver;
    return guarded(fieldConfig.kind, fieldConfig.name, resolver);
  }

  override wrapSubscribe(
    subscribe: GraphQLFieldResolver<unknown, Types['Context'], object> | undefined,
    fieldConfig: PothosOutputFieldConfig<Types>,
  ): GraphQLFieldResolver<unknown, Types['Context'], object> | undefined {
    if (!subscribe || fieldConfig.kind !== 'Subscription') return subscribe;
    return guarded('Subscription', fieldConfig.name, subscribe);
  }
}

function guarded<C>(rootType: RootKind, field: string, next: GraphQLFieldResolver<unknown, C, object>) {
  return async (parent: unknown, args: object, context: C, info: Parameters<GraphQLFieldResolver<unknown, C>>[3]) => {
    const ctx = context as unknown as GraphQLContext;
    assertApiKeyScope(ctx.viewer, rootType, field);
    await ctx.services.rateLimiter.check(rateChecksFor(rootType, field, args as Record<string, unknown>, ctx));
    return next(parent, args, context, info);
  };
}

declare global {
  export namespace PothosSchemaTypes {
    interface Plugins<Types extends SchemaTypes> {
      rootFieldGuards: RootFieldGuardsPlugin<Types>;
    }
  }
}

const pluginName = 'rootFieldGuards';
SchemaBuilder.registerPlugin(pluginName, RootFieldGuardsPlugin);
export default pluginName;
