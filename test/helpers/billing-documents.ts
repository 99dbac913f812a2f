import { graphql } from '../generated/gql.js';

export const CreditPacksDocument = graphql(`
  query CreditPacks {
    creditPacks {
      id
      name
      creditsMicros
      priceCents
      currency
    }
  }
`);

export const CreateCheckoutSessionDocument = graphql(`
  mutation CreateCheckoutSession($input: CreateCheckoutSessionInput!) {
    createCheckoutSession(input: $input) {
      id
      url
    }
  }
`);

export const SubscribeDocument = graphql(`
  mutation Subscribe($input: SubscribeInput!) {
    subscribe(input: $input) {
      id
      url
    }
  }
`);

export const BillingPortalDocument = graphql(`
  mutation BillingPortal {
    billingPortal
  }
`);

export const MyBillingDocument = graphql(`
  query MyBilling {
    me {
      id
      plan
      pastDue
      subscriptionStatus
    }
  }
`);
