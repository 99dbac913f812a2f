import { login, logout, logoutEverywhere, refreshSession, register, type AuthSession } from '../../auth/accounts.js';
import { assertNotApiKey } from '../../auth/viewer.js';
import { builder } from '../builder.js';
import { accountDeps, requireViewer, type GraphQLContext } from '../context.js';
import { UserRef } from './user.js';

const AuthPayload = builder.objectRef<AuthSession>('AuthPayload').implement({
  description: 'A new session: a short-lived access token and a single-use refresh token.',
  fields: (t) => ({
    accessToken: t.exposeString('accessToken'),
    refreshToken: t.exposeString('refreshToken'),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', description: 'When the access token expires.' }),
    user: t.field({ type: UserRef, resolve: (session) => session.user }),
  }),
});

const RegisterInput = builder.inputType('RegisterInput', {
  fields: (t) => ({
    email: t.string({ required: true }),
    password: t.string({ required: true, description: 'At least 10 characters, not a common password.' }),
    name: t.string({ required: true }),
  }),
});

const LoginInput = builder.inputType('LoginInput', {
  fields: (t) => ({
    email: t.string({ required: true }),
    password: t.string({ required: true }),
  }),
});


// The session's own user is readable by whoever just proved to be them.
const asViewer = (ctx: GraphQLContext, session: AuthSession) => {
  ctx.viewer = { id: session.user.id, role: session.user.role, via: 'access_token', user: session.user };
  return session;
};

builder.mutationFields((t) => ({
  register: t.field({
    type: AuthPayload,
    args: { input: t.arg({ type: RegisterInput, required: true }) },
    resolve: async (_root, { input }, ctx) => asViewer(ctx, await register(accountDeps(ctx), input)),
  }),
  login: t.field({
    type: AuthPayload,
    args: { input: t.arg({ type: LoginInput, required: true }) },
    resolve: async (_root, { input }, ctx) => asViewer(ctx, await login(accountDeps(ctx), input)),
  }),
  refreshToken: t.field({
    type: AuthPayload,
    description: 'Exchanges a refresh token for a new session. Each refresh token works once.',
    args: { refreshToken: t.arg.string({ required: true }) },
    resolve: async (_root, args, ctx) => asViewer(ctx, await refreshSession(accountDeps(ctx), args.refreshToken)),
  }),
  logout: t.boolean({
    description: 'Revokes the session of this refresh token. False when the token is unknown.',
    args: { refreshToken: t.arg.string({ required: true }) },
    resolve: (_root, args, ctx) => logout(accountDeps(ctx), args.refreshToken),
  }),
  logoutEverywhere: t.boolean({
    description:
      'Signs out every session of the signed-in user, this one included: revokes all refresh tokens and ' +
      'refuses access tokens issued before now. API keys stay valid. Not allowed with an API key.',
    authScopes: { authenticated: true },
    resolve: async (_root, _args, ctx) => {
      const viewer = requireViewer(ctx);
      assertNotApiKey(viewer, 'sign out sessions');
      await logoutEverywhere(accountDeps(ctx), viewer.id);
      return true;
    },
  }),
}));
