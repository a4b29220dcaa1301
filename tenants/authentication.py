import hmac

from django.conf import settings
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.exceptions import AuthenticationFailed

from tenants.principals import ApiKeyPrincipal, InternalAdminPrincipal
from tenants.selectors import api_key_get_active
from tenants.services import api_key_mark_used


class ApiKeyAuthentication(BaseAuthentication):
    """`Authorization: Bearer <api key>` — a tenant client."""

    keyword = b"bearer"

    def authenticate(self, request):
        parts = get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword:
            return None
        if len(parts) != 2:
            raise AuthenticationFailed("The Authorization header must be 'Bearer <api key>'.")
        try:
            raw_key = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise AuthenticationFailed("Invalid API key.") from None
        api_key = api_key_get_active(raw_key=raw_key)
        if api_key is None:
            raise AuthenticationFailed("Invalid or revoked API key.")
        api_key_mark_used(api_key=api_key)
        return ApiKeyPrincipal(api_key), api_key

    def authenticate_header(self, request):
        return 'Bearer realm="api"'


class AdminKeyAuthentication(BaseAuthentication):
    """`X-Admin-Key: <INTERNAL_ADMIN_API_KEY>` — internal tooling with staff rights on the API."""

    def authenticate(self, request):
        presented = request.headers.get("X-Admin-Key")
        if presented is None:
            return None
        expected = settings.INTERNAL_ADMIN_API_KEY
        if not expected or not hmac.compare_digest(presented.encode(), expected.encode()):
            raise AuthenticationFailed("Invalid admin key.")
        return InternalAdminPrincipal(), None
