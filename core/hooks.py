"""Callables a setting names by import path: how a lower app calls into the apps above it."""

from collections.abc import Callable
from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string


@cache
def _imported(paths: tuple[str, ...]) -> tuple[Callable, ...]:
    return tuple(import_string(path) for path in paths)


def setting_hooks(name: str) -> tuple[Callable, ...]:
    """The callables settings.<name> lists (imported once per list of paths)."""
    return _imported(tuple(getattr(settings, name)))
