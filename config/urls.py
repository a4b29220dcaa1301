from django.contrib import admin
from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from core.routing import optional_slash
from core.views import HealthApi, route_not_found

handler400 = "core.views.bad_request"
handler403 = "core.views.permission_denied"
handler404 = "core.views.route_not_found"
handler500 = "core.views.server_error"

urlpatterns = [
    *optional_slash("health", HealthApi.as_view(), name="health"),
    *optional_slash("api/schema", SpectacularAPIView.as_view(), name="schema"),
    *optional_slash("api/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("admin/", admin.site.urls),
    path("api-auth/", include("rest_framework.urls")),
    path("", include("tenants.urls")),
    path("", include("proactive.urls")),
    path("", include("alerts.urls")),
    path("", include("marketplace.urls")),
    path("", include("billing.urls")),
    # Unknown paths get the API's JSON error shape, also with DEBUG on.
    re_path(r"^(?!static/).*$", route_not_found),
]
