import type { Plan, Role } from '../generated/prisma/client.js';
import type { ReadProviderHealth } from '../providers/provider-health.js';
import { adjustCredits, type CreditAdjustment } from './credit-adjustments.js';
import { providerStatus } from './provider-status.js';
import { usageReport, type UsageGroupBy } from './usage-report.js';
import { deactivateUser, reactivateUser, setUserPlan, setUserRole, type UserManagementDeps } from './user-management.js';

export type Admin = ReturnType<typeof createAdmin>;

/**
 * The admin use cases. Each change writes its audit entry in its own transaction; the caller
 * has checked that the actor is an admin.
 */
export function createAdmin(deps: UserManagementDeps & { readProviderHealth: ReadProviderHealth }) {
  return {
    adjustCredits: (actorUserId: string, input: CreditAdjustment) => adjustCredits(deps.prisma, actorUserId, input),
    setUserRole: (actorUserId: string, userId: string, role: Role) => setUserRole(deps, actorUserId, userId, role),
    setUserPlan: (actorUserId: string, userId: string, plan: Plan) => setUserPlan(deps, actorUserId, userId, plan),
    deactivateUser: (actorUserId: string, userId: string) => deactivateUser(deps, actorUserId, userId),
    reactivateUser: (actorUserId: string, userId: string) => reactivateUser(deps, actorUserId, userId),
    usageReport: (range: { from: Date; to: Date; groupBy: UsageGroupBy }) => usageReport(deps.prisma, range),
    providers: () => providerStatus(deps.prisma, deps.readProviderHealth),
  };
}
