"""
Migrations that drop indexes a table does not need, by name and reversibly, without AlterField's
drop and re-add of the foreign key (re-adding it validates every row under a lock that blocks the
table's writes for as long as that scan takes).

Two kinds are dropped. A plain index on a foreign key whose table also has a unique or composite
index leading with that column: that index serves the key and every read the plain one served.
And PostgreSQL's `_like` twin (varchar_pattern_ops), which Django adds beside every indexed or
unique CharField for LIKE 'prefix%' queries that nothing here runs. Each is written on every insert
and every non-HOT update of its table.
"""

from django.db import migrations


def _field_index_names(schema_editor, model, column: str, *, pattern_ops_only: bool) -> list[str]:
    """
    The indexes Django made for the field itself, by the names it gives them (an index declared in
    a model's Meta on the same column, such as a partial one, has a name of its own and stays).
    """
    table = model._meta.db_table
    with schema_editor.connection.cursor() as cursor:
        existing = schema_editor.connection.introspection.get_constraints(cursor, table)
    suffixes = ("_like",) if pattern_ops_only else ("", "_like")
    names = [schema_editor._create_index_name(table, [column], suffix=suffix) for suffix in suffixes]
    return [name for name in names if name in existing]


def drop_field_indexes(app_label: str, fields: dict[str, list[str]], *, pattern_ops_only: bool = False):
    """
    A RunPython operation dropping the single-column indexes of each `{model: [field, …]}` — or,
    with `pattern_ops_only`, only their `_like` twins. Undone by creating what Django creates for
    the field as the previous state declares it.
    """

    def each_field(apps):
        for model_name, field_names in fields.items():
            model = apps.get_model(app_label, model_name)
            for field_name in field_names:
                yield model, model._meta.get_field(field_name)

    def drop(apps, schema_editor):
        for model, field in each_field(apps):
            for name in _field_index_names(schema_editor, model, field.column, pattern_ops_only=pattern_ops_only):
                schema_editor.execute(schema_editor._delete_index_sql(model, name))

    def create(apps, schema_editor):
        for model, field in each_field(apps):
            if not pattern_ops_only:
                statements = schema_editor._field_indexes_sql(model, field)
            elif like_index := getattr(schema_editor, "_create_like_index_sql", None):  # PostgreSQL's
                statements = [like_index(model, field)]
            else:
                statements = []
            for statement in statements:
                if statement is not None:  # a field without a `_like` twin
                    schema_editor.execute(statement)

    return migrations.RunPython(drop, create)
