import { DEFAULT_REALTIME_VOICE, REALTIME_VOICES, type RealtimeSession } from '../../realtime/realtime-sessions.js';
import { builder } from '../builder.js';
import { requireViewer } from '../context.js';

const RealtimeSessionRef = builder.objectRef<RealtimeSession>('RealtimeSession').implement({
  description:
    "A short-lived client secret for OpenAI's Realtime API: the browser connects to OpenAI with it (WebRTC or WebSocket), never with the server's key.",
  fields: (t) => ({
    clientSecret: t.exposeString('clientSecret', { description: 'Use as the bearer token when opening the session.' }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', description: 'Open the session before this instant.' }),
    model: t.exposeString('model'),
  }),
});

const CreateRealtimeSessionInput = builder.inputType('CreateRealtimeSessionInput', {
  fields: (t) => ({
    model: t.string({ description: 'A Realtime model the server allows; defaults to its configured one.' }),
    voice: t.string({ description: `One of ${REALTIME_VOICES.join(', ')}; defaults to ${DEFAULT_REALTIME_VOICE}.` }),
  }),
});

builder.mutationField('createRealtimeSession', (t) =>
  t.field({
    type: RealtimeSessionRef,
    description:
      'Mints a client secret for one Realtime session, charged a fixed price per session (the server does not see the audio).',
    authScopes: { authenticated: true },
    args: { input: t.arg({ type: CreateRealtimeSessionInput, defaultValue: {} }) },
    resolve: (_root, { input }, ctx) => ctx.services.realtime.create(requireViewer(ctx), input ?? {}),
  }),
);
