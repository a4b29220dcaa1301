"""core.outputs refuses what it cannot reproduce exactly; core.renderers splices database-made JSON."""

import json

import pytest
from rest_framework import serializers

from alerts.models import Alert
from core.outputs import SQLOutput
from core.renderers import JSONRenderer, RawJSON


def output_of(**fields):
    return type("ProbeOutputSerializer", (serializers.Serializer,), fields)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"read": serializers.SerializerMethodField()}, "is not a field of Alert"),
        ({"tenantName": serializers.CharField(source="tenant.name")}, "is not a field of Alert"),
        ({"everything": serializers.JSONField(source="*")}, "is not a field of Alert"),
        ({"at": serializers.DateTimeField(source="triggered_at", format="%Y")}, "only ISO 8601"),
        ({"severity": serializers.FloatField()}, "CharField is not what FloatField renders as is"),
        (
            {"shout": type("Shout", (serializers.CharField,), {"to_representation": str.upper})(source="status")},
            "Shout",
        ),
        ({"id": serializers.UUIDField()}, "UUIDField is not supported"),
    ],
)
def test_fields_it_cannot_reproduce_are_refused_when_it_is_built(fields, message):
    with pytest.raises(TypeError, match=message):
        SQLOutput(output_of(**fields), model=Alert)


def test_a_serializer_with_its_own_rendering_is_refused():
    custom = type("Custom", (serializers.Serializer,), {"id": serializers.IntegerField(), "to_representation": dict})
    with pytest.raises(TypeError, match="own to_representation"):
        SQLOutput(custom, model=Alert)


def test_the_renderer_splices_database_made_json_as_it_is():
    renderer = JSONRenderer()
    page = {"results": RawJSON('[{"id": 1, "at": "2026-11-26T14:00:00Z"},{"id":2}]'), "next": None}

    rendered = renderer.render(page)

    assert rendered == b'{"results":[{"id": 1, "at": "2026-11-26T14:00:00Z"},{"id":2}],"next":null}'
    assert renderer.render(RawJSON('{"id": 3}')) == b'{"id": 3}'
    assert renderer.render({"results": [], "next": None}) == b'{"results":[],"next":null}'
    assert renderer.render({"results": SQLOutput.texts([]), "next": None}) == b'{"results":[],"next":null}'


def test_indented_output_parses_the_spliced_json():
    renderer = JSONRenderer()
    context = {"indent": 2}

    rendered = renderer.render({"results": RawJSON('[{"id":1}]')}, "application/json; indent=2", context)

    assert json.loads(rendered) == {"results": [{"id": 1}]}
    assert b'\n  "results"' in rendered
    assert json.loads(renderer.render(RawJSON('{"id":3}'), "application/json; indent=2", context)) == {"id": 3}
