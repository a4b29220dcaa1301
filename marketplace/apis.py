from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import serializers, status
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response

from core.pagination import NewestFirstCursorPagination
from core.serializers import StorableJSONField, StrictInputSerializer, UtcDateTimeField
from marketplace.selectors import (
    widget_get,
    widget_get_active,
    widget_get_for_tenant,
    widget_list_for_tenant,
)
from marketplace.services import widget_install, widget_register, widget_uninstall
from marketplace.validators import validate_widget_slug
from tenants.apis import TenantScopedApi
from tenants.permissions import ADMIN_AUTH, IsAdminCaller


@extend_schema_field({"type": "object", "additionalProperties": True})
class JSONObjectField(serializers.JSONField):
    """A JSON object (the model validators make sure of it)."""


class WidgetOutputSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    version = serializers.CharField()
    dashboard = JSONObjectField(help_text='What the dashboard shows, e.g. {"tile": {"title": "…", "size": "md"}}.')
    metadata = JSONObjectField()


class TenantWidgetOutputSerializer(WidgetOutputSerializer):
    """A widget with the current tenant's install, from `widget_list_for_tenant`."""

    installed = serializers.SerializerMethodField()
    installedAt = serializers.SerializerMethodField()
    enabled = serializers.SerializerMethodField()
    installedVersion = serializers.SerializerMethodField()
    config = serializers.SerializerMethodField()

    def _installed(self, widget) -> bool:
        return bool(widget.install_enabled) and widget.install_uninstalled_at is None

    def get_installed(self, widget) -> bool:
        return self._installed(widget)

    @extend_schema_field(UtcDateTimeField(allow_null=True))
    def get_installedAt(self, widget):  # noqa: N802
        value = widget.install_installed_at if self._installed(widget) else None
        return UtcDateTimeField().to_representation(value) if value else None

    def get_enabled(self, widget) -> bool:
        return bool(widget.install_enabled)

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_installedVersion(self, widget):  # noqa: N802
        return widget.install_version if self._installed(widget) else None

    @extend_schema_field({"type": ["object", "null"], "additionalProperties": True})
    def get_config(self, widget):
        return widget.install_config if self._installed(widget) else None


class AdminWidgetOutputSerializer(WidgetOutputSerializer):
    active = serializers.BooleanField()
    createdAt = UtcDateTimeField(source="created_at")
    updatedAt = UtcDateTimeField(source="updated_at")


@extend_schema_field({"type": "object", "additionalProperties": True})
class JSONObjectInputField(StorableJSONField):
    pass


class WidgetRegisterInputSerializer(StrictInputSerializer):
    """`name` and `version` are required to register a new widget; an update may send any subset."""

    slug = serializers.CharField(max_length=64, trim_whitespace=False)  # identifiers are taken as sent
    name = serializers.CharField(max_length=200, required=False)
    description = serializers.CharField(required=False, allow_blank=True)
    version = serializers.CharField(max_length=64, required=False, trim_whitespace=False)
    dashboard = JSONObjectInputField(required=False)
    metadata = JSONObjectInputField(required=False)
    active = serializers.BooleanField(required=False)


class WidgetListRegisterApi(TenantScopedApi):
    """GET: the marketplace for the current tenant. POST: register or update a widget (admin only)."""

    class Pagination(NewestFirstCursorPagination):
        ordering = ("slug",)

    pagination_class = Pagination

    def requires_tenant(self, method: str) -> bool:
        return method != "POST"

    def get_permissions(self):
        if self.request.method == "POST":
            return [IsAdminCaller()]
        return [IsAuthenticated()]

    @extend_schema(
        operation_id="marketplace_widgets_list",
        summary="List the marketplace's widgets, with your install status",
        responses=TenantWidgetOutputSerializer(many=True),
    )
    def get(self, request):
        return self.page(widget_list_for_tenant(tenant=self.tenant), serializer_class=TenantWidgetOutputSerializer)

    @extend_schema(
        operation_id="marketplace_widgets_register",
        summary="Register a widget, or update the one with this slug (admin only)",
        description="201 when the widget is new, 200 when it was updated. `name` and `version` are required "
        "for a new widget; an update may send any of the fields, the others are kept.",
        request=WidgetRegisterInputSerializer,
        responses={200: AdminWidgetOutputSerializer, 201: AdminWidgetOutputSerializer},
        auth=ADMIN_AUTH,
    )
    def post(self, request):
        data = WidgetRegisterInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = dict(data.validated_data)
        registered = widget_register(slug=fields.pop("slug"), **fields)
        return Response(
            AdminWidgetOutputSerializer(registered.widget).data,
            status=status.HTTP_201_CREATED if registered.created else status.HTTP_200_OK,
        )


SLUG_PARAMETER = OpenApiParameter(
    "slug",
    {"type": "string", "pattern": "^[a-z0-9]+(?:-[a-z0-9]+)*$", "maxLength": 64},
    OpenApiParameter.PATH,
    description="The widget's slug, e.g. revenue-radar",
)


def _checked_slug(slug: str) -> str:
    """A slug from the path: a malformed one is a 400 naming it (and never reaches the database)."""
    try:
        validate_widget_slug(slug)
    except DjangoValidationError as exc:
        raise serializers.ValidationError({"slug": exc.messages}) from None
    return slug


class WidgetDetailApi(TenantScopedApi):
    @extend_schema(
        operation_id="marketplace_widgets_retrieve",
        summary="Get a widget, with your install status",
        parameters=[SLUG_PARAMETER],
        responses=TenantWidgetOutputSerializer,
    )
    def get(self, request, slug: str):
        widget = self.get_or_404(widget_get_for_tenant, tenant=self.tenant, slug=_checked_slug(slug))
        return Response(TenantWidgetOutputSerializer(widget).data)


class WidgetInstallApi(TenantScopedApi):
    class InstallInputSerializer(StrictInputSerializer):
        config = JSONObjectInputField(required=False, help_text="Your settings for this widget.")

    def get_widget(self, slug: str):
        return self.get_or_404(widget_get_active, slug=_checked_slug(slug))

    @extend_schema(
        operation_id="marketplace_widgets_install",
        summary="Install a widget, or re-enable it",
        description="201 when it was installed (or its config changed), 200 when it already was as asked. "
        "`config` replaces the previous one.",
        parameters=[SLUG_PARAMETER],
        request=InstallInputSerializer,
        responses={200: TenantWidgetOutputSerializer, 201: TenantWidgetOutputSerializer},
    )
    def post(self, request, slug: str):
        widget = self.get_widget(slug)
        data = self.InstallInputSerializer(data=request.data)  # no body parses as {}
        data.is_valid(raise_exception=True)
        change = widget_install(tenant=self.tenant, widget=widget, config=data.validated_data.get("config"))
        return Response(
            TenantWidgetOutputSerializer(widget_get_for_tenant(tenant=self.tenant, slug=slug)).data,
            status=status.HTTP_201_CREATED if change.changed else status.HTTP_200_OK,
        )

    @extend_schema(
        operation_id="marketplace_widgets_uninstall",
        summary="Uninstall a widget",
        description="Idempotent: uninstalling a widget that is not installed is also a 204.",
        parameters=[SLUG_PARAMETER],
        responses={204: None},
    )
    def delete(self, request, slug: str):
        # Also a deactivated widget: uninstalling it stops its billing.
        widget = self.get_or_404(widget_get, slug=_checked_slug(slug))
        widget_uninstall(tenant=self.tenant, widget=widget)
        return Response(status=status.HTTP_204_NO_CONTENT)
