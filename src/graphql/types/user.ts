import { Kind, type GraphQLResolveInfo, type SelectionSetNode } from 'graphql';
import { updateProfile } from '../../auth/accounts.js';
import { assertNotApiKey } from '../../auth/viewer.js';
import { builder } from '../builder.js';
import { accountDeps, requireViewer } from '../context.js';
import { NO_ROW_ID } from '../../global-id.js';
import { isSelfOrAdmin } from '../ownership.js';

export const RoleEnum = builder.enumType('Role', { values: ['USER', 'ADMIN'] as const });
export const PlanEnum = builder.enumType('Plan', { values: ['FREE', 'PRO', 'TEAM'] as const });


export const UserRef = builder.prismaNode('User', {
  id: { field: 'id' },
  nullable: true,
  // node(id) finds only the viewer themself (admins: anyone); other ids resolve to null.
  findUnique: (id, ctx) => ({ id: ctx.viewer && isSelfOrAdmin(id, ctx) ? id : NO_ROW_ID }),
  authScopes: (user, ctx) => isSelfOrAdmin(user.id, ctx),
  fields: (t) => ({
    email: t.exposeString('email'),
    name: t.exposeString('name'),
    role: t.expose('role', { type: RoleEnum }),
    plan: t.expose('plan', { type: PlanEnum }),
    active: t.boolean({
      description: 'False once the account is deactivated.',
      select: { deactivatedAt: true },
      resolve: (user) => user.deactivatedAt === null,
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

// The plan is billing state (Stripe changes it without a notice), so it is read like credits.
const IDENTITY_FIELDS = new Set(['__typename', 'id', 'email', 'name', 'role', 'active', 'createdAt']);

/** Whether the field's selection, fragments included, names only fields of `allowed`. */
function selectsOnly(info: GraphQLResolveInfo, allowed: ReadonlySet<string>): boolean {
  const visit = (selectionSet: SelectionSetNode | undefined): boolean =>
    !selectionSet ||
    selectionSet.selections.every((selection) => {
      if (selection.kind === Kind.FIELD) return allowed.has(selection.name.value);
      if (selection.kind === Kind.INLINE_FRAGMENT) return visit(selection.selectionSet);
      const fragment = info.fragments[selection.name.value];
      return fragment !== undefined && visit(fragment.selectionSet);
    });
  return info.fieldNodes.every((node) => visit(node.selectionSet));
}

builder.queryField('me', (t) =>
  t.prismaField({
    type: 'User',
    nullable: true,
    description: 'The signed-in user, or null when anonymous.',
    resolve: (query, _root, _args, ctx, info) => {
      if (!ctx.viewer) return null;
      // Who the user is comes from the row that authenticated the request (up to AUTH_CACHE_TTL_MS
      // old); anything else, such as credits, quota, plan or billing state, is read now.
      if (Object.keys(query).length === 0 && selectsOnly(info, IDENTITY_FIELDS)) return ctx.viewer.user;
      return ctx.services.prisma.user.findUnique({ ...query, where: { id: ctx.viewer.id } });
    },
  }),
);

const UpdateProfileInput = builder.inputType('UpdateProfileInput', {
  fields: (t) => ({
    name: t.string({ required: false }),
    currentPassword: t.string({ required: false, description: 'Required to set a new password.' }),
    newPassword: t.string({
      required: false,
      description:
        'Signs out every session, this one included. Not allowed with an API key, nor for accounts that sign in through an identity provider.',
    }),
  }),
});

builder.mutationField('updateProfile', (t) =>
  t.prismaField({
    type: 'User',
    authScopes: { authenticated: true },
    args: { input: t.arg({ type: UpdateProfileInput, required: true }) },
    resolve: async (query, _root, { input }, ctx) => {
      const viewer = requireViewer(ctx);
      if (input.newPassword != null) assertNotApiKey(viewer, 'change the password');
      await updateProfile(accountDeps(ctx), viewer.id, input);
      return ctx.services.prisma.user.findUniqueOrThrow({ ...query, where: { id: viewer.id } });
    },
  }),
);
