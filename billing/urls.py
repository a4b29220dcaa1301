from billing.apis import BillingUsageApi, StripeWebhookApi
from core.routing import optional_slash

urlpatterns = [
    *optional_slash("billing/usage", BillingUsageApi.as_view(), name="billing-usage"),
    *optional_slash("billing/webhook", StripeWebhookApi.as_view(), name="billing-webhook"),
]
