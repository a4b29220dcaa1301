from core.routing import optional_slash
from tenants.apis import CurrentTenantApi, TenantListCreateApi

urlpatterns = [
    *optional_slash("tenant", CurrentTenantApi.as_view(), name="tenant-current"),
    *optional_slash("tenants", TenantListCreateApi.as_view(), name="tenant-list"),
]
