from rest_framework.permissions import BasePermission


class IsAdminCaller(BasePermission):
    """A staff user (session) or the internal admin key. A tenant API key is refused with 403."""

    message = "This endpoint is for administrators: a staff user or the X-Admin-Key header."

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.is_staff)


# For the OpenAPI document: what admin-only endpoints accept.
ADMIN_AUTH = [{"adminKey": []}, {"cookieAuth": []}]
