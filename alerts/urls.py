from alerts.apis import (
    AlertAcknowledgeApi,
    AlertDetailApi,
    AlertListApi,
    AlertResolveApi,
    AlertSnoozeApi,
    ChannelDetailApi,
    ChannelListCreateApi,
    ChannelTestApi,
    DeliveryListApi,
    NotificationListApi,
    NotificationReadApi,
)
from core.routing import optional_slash

urlpatterns = [
    *optional_slash("alerts", AlertListApi.as_view(), name="alert-list"),
    *optional_slash("alerts/<int:alert_id>", AlertDetailApi.as_view(), name="alert-detail"),
    *optional_slash("alerts/<int:alert_id>/acknowledge", AlertAcknowledgeApi.as_view(), name="alert-acknowledge"),
    *optional_slash("alerts/<int:alert_id>/resolve", AlertResolveApi.as_view(), name="alert-resolve"),
    *optional_slash("alerts/<int:alert_id>/snooze", AlertSnoozeApi.as_view(), name="alert-snooze"),
    *optional_slash("channels", ChannelListCreateApi.as_view(), name="channel-list"),
    *optional_slash("channels/<int:channel_id>", ChannelDetailApi.as_view(), name="channel-detail"),
    *optional_slash("channels/<int:channel_id>/test", ChannelTestApi.as_view(), name="channel-test"),
    *optional_slash("deliveries", DeliveryListApi.as_view(), name="delivery-list"),
    *optional_slash("notifications", NotificationListApi.as_view(), name="notification-list"),
    *optional_slash(
        "notifications/<int:notification_id>/read", NotificationReadApi.as_view(), name="notification-read"
    ),
]
