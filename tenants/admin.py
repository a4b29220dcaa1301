from django.contrib import admin, messages
from django.template.response import TemplateResponse

from tenants.models import ApiKey, Membership, Tenant
from tenants.services import TENANT_SETTINGS, api_key_create, api_key_revoke, tenant_update


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]
    readonly_fields = ["created_at"]


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    extra = 0
    can_delete = False
    fields = ["name", "prefix", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = fields
    show_change_link = True

    def has_add_permission(self, request, obj=None):
        return False  # keys are made on the API key page, which shows the raw key once


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ["id", "name", "slug", "stripe_customer_id", "created_at"]
    search_fields = ["id", "name", "slug", "stripe_customer_id"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["created_at"]
    inlines = [MembershipInline, ApiKeyInline]

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "id"] if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        settings = {name: form.cleaned_data[name] for name in TENANT_SETTINGS if name in form.changed_data}
        if change and settings:
            # Through the service first: a new time zone moves the next runs of the tenant's schedule rules.
            tenant_update(tenant=obj, **settings)
        super().save_model(request, obj, form, change)


@admin.action(description="Revoke selected API keys")
def revoke_api_keys(modeladmin, request, queryset):
    revoked = 0
    for api_key in queryset.filter(revoked_at__isnull=True):
        api_key_revoke(api_key=api_key)
        revoked += 1
    modeladmin.message_user(request, f"Revoked {revoked} API key(s).", messages.SUCCESS)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "tenant", "display_prefix", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter), "tenant"]
    search_fields = ["name", "prefix", "tenant__id", "tenant__name"]
    autocomplete_fields = ["tenant"]
    actions = [revoke_api_keys]
    readonly_fields = ["display_prefix", "created_at", "last_used_at", "revoked_at"]

    @admin.display(description="Key")
    def display_prefix(self, obj):
        return f"pi_{obj.prefix}_…" if obj.prefix else "—"

    def get_readonly_fields(self, request, obj=None):
        return [*self.readonly_fields, "tenant"] if obj else self.readonly_fields

    def save_model(self, request, obj, form, change):
        if change:
            return super().save_model(request, obj, form, change)
        issued = api_key_create(tenant=obj.tenant, name=obj.name)
        obj.pk = issued.api_key.pk
        obj.refresh_from_db()
        request._issued_raw_key = issued.raw_key

    def response_add(self, request, obj, post_url_continue=None):
        raw_key = getattr(request, "_issued_raw_key", None)
        if raw_key is None:
            return super().response_add(request, obj, post_url_continue)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "api_key": obj,
            "raw_key": raw_key,
            "title": "API key created",
        }
        return TemplateResponse(request, "admin/tenants/apikey/created.html", context)
