from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.pagination import NewestFirstCursorPagination, paginated_response
from core.serializers import StrictInputSerializer
from tenants.models import Tenant
from tenants.permissions import ADMIN_AUTH, IsAdminCaller
from tenants.selectors import tenant_for_caller
from tenants.services import tenant_create


class TenantScopedApi(APIView):
    """
    Base of every tenant endpoint. After authentication it resolves `self.tenant` once; views pass
    it to every selector and service they call, so another tenant's id is simply not found (404).
    """

    tenant: Tenant | None = None

    def requires_tenant(self, request) -> bool:
        """Whether this request acts for a tenant (an admin-only method of the view may not)."""
        return True

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        if self.requires_tenant(request):
            self.tenant = tenant_for_caller(
                user=request.user, requested_tenant_id=request.headers.get("X-Tenant-Id") or None
            )
            request.tenant = self.tenant

    def query(self, serializer_class) -> dict:
        """The request's query parameters, validated by `serializer_class` (a 400 names bad ones)."""
        serializer = serializer_class(data=self.request.query_params)
        serializer.is_valid(raise_exception=True)
        return serializer.validated_data

    def page(self, queryset, *, serializer_class, pagination_class=NewestFirstCursorPagination):
        return paginated_response(
            request=self.request, view=self, queryset=queryset,
            serializer_class=serializer_class, pagination_class=pagination_class,
        )


class TenantOutputSerializer(serializers.Serializer):
    id = serializers.CharField()
    name = serializers.CharField()
    slug = serializers.CharField()
    createdAt = serializers.DateTimeField(source="created_at")


class CurrentTenantApi(TenantScopedApi):
    @extend_schema(operation_id="tenant_current", responses=TenantOutputSerializer)
    def get(self, request):
        return Response(TenantOutputSerializer(self.tenant).data)


class TenantListCreateApi(APIView):
    """Provisioning for internal tooling: staff users or the admin key."""

    permission_classes = [IsAdminCaller]

    class TenantCreateInputSerializer(StrictInputSerializer):
        id = serializers.CharField(max_length=63)
        name = serializers.CharField(max_length=200)
        slug = serializers.SlugField(max_length=80, required=False)
        stripeCustomerId = serializers.CharField(max_length=255, required=False)

    class TenantAdminOutputSerializer(TenantOutputSerializer):
        stripeCustomerId = serializers.CharField(source="stripe_customer_id", allow_null=True)

    class Pagination(NewestFirstCursorPagination):
        ordering = ("id",)

    @extend_schema(
        operation_id="tenants_list", responses=TenantAdminOutputSerializer(many=True), auth=ADMIN_AUTH
    )
    def get(self, request):
        return paginated_response(
            request=request,
            view=self,
            queryset=Tenant.objects.all(),
            serializer_class=self.TenantAdminOutputSerializer,
            pagination_class=self.Pagination,
        )

    @extend_schema(
        operation_id="tenants_create",
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
        )
        return Response(self.TenantAdminOutputSerializer(tenant).data, status=status.HTTP_201_CREATED)
