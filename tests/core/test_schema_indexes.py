"""Every index and constraint the models declare exists in the migrated database, under its name."""

import pytest
from django.apps import apps
from django.db import connection

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("app", ["alerts", "billing", "marketplace", "proactive", "tenants"])
def test_declared_indexes_and_constraints_exist(app):
    # Django drops every single-column index of a foreign key turned db_index=False, a partial
    # unique constraint on that column included: this catches a migration that does.
    with connection.cursor() as cursor:
        for model in apps.get_app_config(app).get_models():
            present = connection.introspection.get_constraints(cursor, model._meta.db_table)
            declared = [item.name for item in (*model._meta.indexes, *model._meta.constraints)]
            missing = [name for name in declared if name not in present]
            assert not missing, f"{model.__name__}: {missing}"
