import SchemaBuilder, { BasePlugin, type PothosOutputFieldConfig, type SchemaTypes } from '@pothos/core';
import type { GraphQLFieldResolver } from 'graphql';
import { rateChecksFor } from '../rate-limit/rules.js';
import type { GraphQLContext } from './context.js';

type RootKind = 'Query' | 'Mutation' | 'Subscription';

/**
 * Counts every root field against the caller's rate limits (graphql-rate-limit, through
 * ctx.services.rateLimiter) before it runs. Subscriptions count once, when they start.
 */
export class RateLimitPlugin<Types extends SchemaTypes> extends BasePlugin<Types> {
  override wrapResolve(
    resolver: GraphQLFieldResolver<unknown, Types['Context'], object>,
    fieldConfig: PothosOutputFieldConfig<Types>,
  ): GraphQLFieldResolver<unknown, Types['Context'], object> {
    if (fieldConfig.kind !== 'Query' && fieldConfig.kind !== 'Mutation') return resolver;
    return limited(fieldConfig.kind, fieldConfig.name, resolver);
  }

  override wrapSubscribe(
    subscribe: GraphQLFieldResolver<unknown, Types['Context'], object> | undefined,
    fieldConfig: PothosOutputFieldConfig<Types>,
  ): GraphQLFieldResolver<unknown, Types['Context'], object> | undefined {
    if (!subscribe || fieldConfig.kind !== 'Subscription') return subscribe;
    return limited('Subscription', fieldConfig.name, subscribe);
  }
}

function limited<C>(rootType: RootKind, field: string, next: GraphQLFieldResolver<unknown, C, object>) {
  return async (parent: unknown, args: object, context: C, info: Parameters<GraphQLFieldResolver<unknown, C>>[3]) => {
    const ctx = context as unknown as GraphQLContext;
    await ctx.services.rateLimiter.check(rateChecksFor(rootType, field, args as Record<string, unknown>, ctx));
    return next(parent, args, context, info);
  };
}

declare global {
  export namespace PothosSchemaTypes {
    interface Plugins<Types extends SchemaTypes> {
      rateLimit: RateLimitPlugin<Types>;
    }
  }
}

const pluginName = 'rateLimit';
SchemaBuilder.registerPlugin(pluginName, RateLimitPlugin);
export default pluginName;
