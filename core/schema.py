"""
A migration operation that drops indexes a table does not need, by name and reversibly, without
AlterField's drop and re-add of the foreign key (re-adding it validates every row under a lock that
blocks the table's writes for as long as that scan takes) and without its dropping every
single-column index on the column (a partial unique one included).

Two kinds are dropped. A plain index on a foreign key whose table also has a unique or composite
index leading with that column: that index serves the key and every read the plain one served.
And PostgreSQL's `_like` twin (varchar_pattern_ops), which Django adds beside every indexed or
unique CharField for LIKE 'prefix%' queries that nothing here runs. Each is written on every insert
and every non-HOT update of its table.
"""

from django.db.migrations.operations.base import Operation


class DropFieldIndexes(Operation):
    """
    Drop the indexes Django made for each of `fields` of `model_name` itself: its plain index and
    its `_like` twin, the field becoming `db_index=False` in the migration state; or, with
    `twins_only`, the twin alone (the field keeps its index or its unique constraint). Undone by
    creating what Django creates for the field as the state before declares it.
    """

    reversible = True
    reduces_to_sql = False

    def __init__(self, model_name: str, fields: list[str], *, twins_only: bool = False):
        self.model_name, self.fields, self.twins_only = model_name, fields, twins_only

    def deconstruct(self):
        return self.__class__.__name__, [self.model_name, self.fields], {"twins_only": True} if self.twins_only else {}

    def describe(self):
        dropped = "the `_like` twins of" if self.twins_only else "the own indexes of"
        return f"Drop {dropped} {self.model_name}.{', '.join(self.fields)}"

    def state_forwards(self, app_label, state):
        if self.twins_only:
            return
        for name in self.fields:
            field = state.models[app_label, self.model_name.lower()].fields[name].clone()
            field.db_index = False
            state.alter_field(app_label, self.model_name.lower(), name, field, True)

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        model = from_state.apps.get_model(app_label, self.model_name)
        table = model._meta.db_table
        with schema_editor.connection.cursor() as cursor:
            existing = schema_editor.connection.introspection.get_constraints(cursor, table)
        suffixes = ("_like",) if self.twins_only else ("", "_like")
        for name in self.fields:
            column = model._meta.get_field(name).column
            for index in (schema_editor._create_index_name(table, [column], suffix=suffix) for suffix in suffixes):
                if index in existing:  # an index declared in Meta on the column has a name of its own and stays
                    schema_editor.execute(schema_editor._delete_index_sql(model, index))

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        model = to_state.apps.get_model(app_label, self.model_name)  # as it was: the field indexed
        for name in self.fields:
            field = model._meta.get_field(name)
            if not self.twins_only:
                statements = schema_editor._field_indexes_sql(model, field)
            elif like_index := getattr(schema_editor, "_create_like_index_sql", None):  # PostgreSQL's
                statements = [like_index(model, field)]
            else:
                statements = []
            for statement in statements:
                if statement is not None:  # a field without a `_like` twin
                    schema_editor.execute(statement)
