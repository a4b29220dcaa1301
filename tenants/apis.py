from django.http import Http404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.openapi import ApiAutoSchema
from core.pagination import NewestFirstCursorPagination, paginated_response
from core.serializers import StrictInputSerializer, UtcDateTimeField
from tenants.models import Tenant
from tenants.permissions import ADMIN_AUTH, IsAdminCaller
from tenants.selectors import tenant_for_caller
from tenants.services import tenant_create, tenant_update


class TenantScopedSchema(ApiAutoSchema):
    """Tenant operations also take the X-Tenant-Id header (staff, the admin key, members of several)."""

    def get_override_parameters(self):
        parameters = super().get_override_parameters()
        if self.view.requires_tenant(self.method):
            parameters = [*parameters, TENANT_HEADER]
        return parameters


TENANT_HEADER = OpenApiParameter(
    "X-Tenant-Id",
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="The tenant to act for. An API key acts for its own tenant and needs none; staff users and "
    "the admin key must name one; a user in several tenants picks one of theirs.",
)


class TenantScopedApi(APIView):
    """
    Base of every tenant endpoint. After authentication it resolves `self.tenant` once; views pass
    it to every selector and service they call, so another tenant's id is simply not found (404).
    """

    tenant: Tenant | None = None
    pagination_class = None  # list views set theirs
    schema = TenantScopedSchema()

    def requires_tenant(self, method: str) -> bool:
        """Whether requests with this method act for a tenant (an admin-only method may not)."""
        return True

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if self.requires_tenant(request.method):
            self.tenant = tenant_for_caller(
                user=request.user, requested_tenant_id=request.headers.get("X-Tenant-Id") or None
            )
            request.tenant = self.tenant

    @staticmethod
    def get_or_404(selector, **lookup):
        """`selector(**lookup)` — pass it `tenant=self.tenant` — or a 404 when it finds nothing."""
        found = selector(**lookup)
        if found is None:
            raise Http404
        return found

    def query(self, serializer_class) -> dict:
        """
        The request's query parameters, validated by `serializer_class` (a 400 names bad ones).
        A plain dict, not the QueryDict: DRF reads a blank form value as "not given", but `?type=`
        is a blank type, which is not a type.
        """
        serializer = serializer_class(data=self.request.query_params.dict())
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def page(self, queryset=None, *, fetch=None, serializer_class=None, represent=None, envelope: dict | None = None):
        """
        A page of `queryset`, or of what `fetch(after, reverse, limit)` reads, in the view's
        `pagination_class` envelope (which the schema documents), rendered by `serializer_class`,
        or by `represent(rows)` for plain rows.
        """
        return paginated_response(
            request=self.request,
            view=self,
            queryset=queryset,
            fetch=fetch,
            serializer_class=serializer_class,
            represent=represent,
            pagination_class=self.pagination_class,
            envelope=envelope,
        )


class TenantOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    slug = serializers.CharField()
    timezone = serializers.CharField(help_text="IANA zone; schedule rules read their cron in it unless they name one.")
    createdAt = UtcDateTimeField(source="created_at")


class CurrentTenantApi(TenantScopedApi):
    class TenantUpdateInputSerializer(StrictInputSerializer):
        name = serializers.CharField(max_length=200, required=False)
        timezone = serializers.CharField(max_length=64, required=False, trim_whitespace=False)

    @extend_schema(
        operation_id="tenant_current", summary="Get the tenant you act for", responses=TenantOutputSerializer
    )
    def get(self, request):
        return Response(TenantOutputSerializer(self.tenant).data)

    @extend_schema(
        operation_id="tenant_update",
        summary="Change your tenant's name or time zone",
        request=TenantUpdateInputSerializer,
        responses=TenantOutputSerializer,
    )
    def patch(self, request):
        data = self.TenantUpdateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        tenant = tenant_update(tenant=self.tenant, **data.validated_data)
        return Response(TenantOutputSerializer(tenant).data)


class TenantListCreateApi(APIView):
    """Provisioning for internal tooling: staff users or the admin key."""

    permission_classes = [IsAdminCaller]

    class TenantCreateInputSerializer(StrictInputSerializer):
        # Identifiers are taken as sent: "acme\n" is not quietly "acme".
        id = serializers.CharField(max_length=63, trim_whitespace=False)
        name = serializers.CharField(max_length=200)
        slug = serializers.SlugField(max_length=80, required=False, trim_whitespace=False)
        stripeCustomerId = serializers.CharField(max_length=255, required=False, trim_whitespace=False)
        timezone = serializers.CharField(max_length=64, required=False, trim_whitespace=False)

    class TenantAdminOutputSerializer(TenantOutputSerializer):
        stripeCustomerId = serializers.CharField(source="stripe_customer_id", allow_null=True)

    class Pagination(NewestFirstCursorPagination):
        ordering = ("id",)

    pagination_class = Pagination

    @extend_schema(
        operation_id="tenants_list",
        summary="List all tenants, by id (admin only)",
        responses=TenantAdminOutputSerializer(many=True),
        auth=ADMIN_AUTH,
    )
    def get(self, request):
        return paginated_response(
            request=request,
            view=self,
            queryset=Tenant.objects.all(),
            serializer_class=self.TenantAdminOutputSerializer,
            pagination_class=self.pagination_class,
        )

    @extend_schema(
        operation_id="tenants_create",
        summary="Create a tenant (admin only)",
        request=TenantCreateInputSerializer,
        responses={201: TenantAdminOutputSerializer},
        auth=ADMIN_AUTH,
    )
    def post(self, request):
        data = self.TenantCreateInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        tenant = tenant_create(
            id=data.validated_data["id"],
            name=data.validated_data["name"],
            slug=data.validated_data.get("slug"),
            stripe_customer_id=data.validated_data.get("stripeCustomerId"),
            timezone=data.validated_data.get("timezone", "UTC"),
        )
        return Response(self.TenantAdminOutputSerializer(tenant).data, status=status.HTTP_201_CREATED)
