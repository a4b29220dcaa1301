from django.urls import path


def optional_slash(route: str, view, name: str | None = None) -> list:
    """
    The same view at `route` and `route/`, so clients may use either (no redirect, every method).
    The slashless form is canonical: it carries the name, and only it appears in the OpenAPI schema.
    """
    route = route.rstrip("/")
    return [path(route, view, name=name), path(f"{route}/", view)]
