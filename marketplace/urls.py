from core.routing import optional_slash
from marketplace.apis import WidgetDetailApi, WidgetInstallApi, WidgetListRegisterApi

urlpatterns = [
    *optional_slash("marketplace/widgets", WidgetListRegisterApi.as_view(), name="widget-list"),
    *optional_slash("marketplace/widgets/<str:slug>", WidgetDetailApi.as_view(), name="widget-detail"),
    *optional_slash("marketplace/widgets/<str:slug>/install", WidgetInstallApi.as_view(), name="widget-install"),
]
