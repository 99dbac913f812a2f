import { graphql } from '../generated/gql.js';

export const AdminUsersDocument = graphql(`
  query AdminUsers($first: Int, $after: String, $search: String) {
    users(first: $first, after: $after, search: $search) {
      totalCount
      pageInfo {
        hasNextPage
        endCursor
      }
      edges {
        node {
          id
          email
          name
          role
          plan
          active
        }
      }
    }
  }
`);

export const AdjustCreditsDocument = graphql(`
  mutation AdjustCredits($input: AdjustCreditsInput!) {
    adjustCredits(input: $input) {
      id
      kind
      amountMicros
      balanceAfterMicros
      reason
    }
  }
`);

export const SetUserRoleDocument = graphql(`
  mutation SetUserRole($input: SetUserRoleInput!) {
    setUserRole(input: $input) {
      id
      role
    }
  }
`);

export const SetUserPlanDocument = graphql(`
  mutation SetUserPlan($input: SetUserPlanInput!) {
    setUserPlan(input: $input) {
      id
      plan
    }
  }
`);

export const DeactivateUserDocument = graphql(`
  mutation DeactivateUser($userId: ID!) {
    deactivateUser(userId: $userId) {
      id
      active
    }
  }
`);

export const ReactivateUserDocument = graphql(`
  mutation ReactivateUser($userId: ID!) {
    reactivateUser(userId: $userId) {
      id
      active
    }
  }
`);

export const UsageReportDocument = graphql(`
  query UsageReport($from: Date!, $to: Date!, $groupBy: UsageGroupBy!) {
    usageReport(from: $from, to: $to, groupBy: $groupBy) {
      key
      user {
        id
        email
      }
      model
      day
      promptTokens
      cachedTokens
      cacheWriteTokens
      completionTokens
      reasoningTokens
      totalTokens
      costMicros
      requests
    }
  }
`);

export const AuditLogDocument = graphql(`
  query AuditLog($first: Int, $after: String) {
    auditLog(first: $first, after: $after) {
      totalCount
      edges {
        node {
          id
          action
          actor {
            id
            email
          }
          target {
            id
            email
          }
          reason
          details
          createdAt
        }
      }
    }
  }
`);

/** A user's account as an admin sees it through node(id). */
export const UserAccountDocument = graphql(`
  query UserAccount($id: ID!) {
    node(id: $id) {
      __typename
      id
      ... on User {
        email
        role
        plan
        active
        credits {
          balanceMicros
          heldMicros
          ledger(first: 20) {
            edges {
              node {
                kind
                amountMicros
                balanceAfterMicros
                reason
              }
            }
          }
        }
        quota {
          usedTokens
          reservedTokens
        }
        usage {
          totals {
            totalTokens
            costMicros
            requests
          }
        }
      }
    }
  }
`);
