import { builder } from './builder.js';
import './types/scalars.js';
import './types/user.js';
import './types/auth.js';
import './types/api-key.js';
import './types/model.js';
import './types/usage.js';
import './types/metering.js';
import './types/billing.js';
import './types/conversation.js';
import './types/attachment.js';
import './types/message.js';
import './types/message-tree.js';
import './types/message-attempt.js';
import './types/admin.js';
import './types/provider.js';
import './types/realtime.js';

export const schema = builder.toSchema({ sortSchema: true });
