"""The OpenAPI document says exactly what the server does: envelopes, statuses, types and limits."""

import inspect
import json

import pytest
from openapi_spec_validator import validate

from tests.contract import published_schema

LIST_OPERATIONS = {
    "alerts_list": "Alert",
    "triggers_list": "TriggerRule",
    "notifications_list": "Notification",
    "marketplace_widgets_list": "TenantWidget",
    "metric_points_list": "MetricPoint",
    "tenants_list": "TenantAdmin",
    "channels_list": "Channel",
    "deliveries_list": "Delivery",
}


def operations():
    for path, methods in published_schema()["paths"].items():
        for method, operation in methods.items():
            yield path, method, operation


def operation(operation_id: str) -> dict:
    return next(op for _path, _method, op in operations() if op["operationId"] == operation_id)


def resolve(schema: dict) -> dict:
    if "$ref" in schema:
        return published_schema()["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def test_the_schema_is_valid_openapi_3_1():
    schema = published_schema()

    validate(schema)
    assert schema["openapi"] == "3.1.0"
    assert len(list(operations())) == 36


def test_the_served_schema_is_the_one_the_suite_checks(client):
    served = client.get("/api/schema", {"format": "json"})

    assert served.status_code == 200
    assert json.loads(served.content) == published_schema()


@pytest.mark.parametrize(("operation_id", "item"), LIST_OPERATIONS.items())
def test_every_list_documents_its_envelope_and_paging_parameters(operation_id, item):
    op = operation(operation_id)
    envelope = resolve(op["responses"]["200"]["content"]["application/json"]["schema"])
    parameters = {p["name"]: p for p in op["parameters"]}

    assert envelope["properties"]["results"] == {"type": "array", "items": {"$ref": f"#/components/schemas/{item}"}}
    assert set(envelope["required"]) >= {"results", "next", "previous"}
    assert envelope["properties"]["next"]["type"] == ["string", "null"]
    assert parameters["cursor"]["schema"] == {"type": "string", "minLength": 1}
    assert parameters["limit"]["schema"]["minimum"] == 1
    if operation_id == "metric_points_list":
        assert "metric" in envelope["required"]
        assert parameters["limit"]["schema"]["maximum"] == 1000
    else:
        assert parameters["limit"]["schema"]["maximum"] == 200


def test_no_operation_that_is_not_a_list_takes_paging_parameters():
    for _path, _method, op in operations():
        names = {p["name"] for p in op.get("parameters", [])}
        assert ("cursor" in names) == (op["operationId"] in LIST_OPERATIONS), op["operationId"]


ERROR_CODES_BY_STATUS = {
    "400": {"validation_error", "parse_error", "tenant_required", "invalid_signature", "bad_request"},
    "401": {"not_authenticated", "authentication_failed"},
    "403": {"permission_denied"},
    "404": {"not_found"},
    "409": {"conflict"},
    "413": {"payload_too_large"},
    "414": {"uri_too_long"},
    "415": {"unsupported_media_type"},
}


def test_every_error_answer_has_the_error_shape_and_examples_with_the_right_code():
    for path, method, op in operations():
        for status, response in op["responses"].items():
            if not status.startswith("4"):
                continue
            content = response["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/Error"}, (path, method, status)
            codes = {example["value"]["error"] for example in content["examples"].values()}
            assert codes, (path, method, status)
            assert codes <= ERROR_CODES_BY_STATUS[status], (path, method, status, codes)


@pytest.mark.parametrize(
    ("operation_id", "statuses"),
    [
        ("alerts_acknowledge", {"200", "400", "401", "403", "404", "409", "413", "414"}),
        ("alerts_snooze", {"200", "400", "401", "403", "404", "409", "413", "414", "415"}),
        ("alerts_resolve", {"200", "400", "401", "403", "404", "413", "414"}),
        ("triggers_evaluate", {"200", "400", "401", "403", "404", "409", "413", "414", "415"}),
        ("triggers_create", {"201", "400", "401", "403", "413", "414", "415"}),
        ("billing_webhook", {"200", "400", "413", "414"}),
        ("health", {"200", "400", "413", "414", "503"}),  # a repeated query parameter
        ("metric_points_list", {"200", "400", "401", "403", "413", "414"}),
    ],
)
def test_each_operation_declares_the_statuses_it_can_answer(operation_id, statuses):
    assert set(operation(operation_id)["responses"]) == statuses


def test_the_webhook_documents_its_signature_errors():
    examples = operation("billing_webhook")["responses"]["400"]["content"]["application/json"]["examples"]

    assert {example["value"]["error"] for example in examples.values()} == {
        "invalid_signature",
        "validation_error",
        "parse_error",
    }


def test_every_operation_has_a_one_line_summary_for_api_users():
    for path, method, op in operations():
        summary = op.get("summary", "")
        assert summary and "\n" not in summary and len(summary) <= 80, (path, method, summary)


def _project_docstrings() -> set[str]:
    from django.urls import get_resolver

    docs = set()
    for pattern in get_resolver().url_patterns:
        for sub in getattr(pattern, "url_patterns", [pattern]):
            view = getattr(getattr(sub, "callback", None), "view_class", None)
            for cls in inspect.getmro(view) if view else ():
                for item in (cls, *vars(cls).values()):
                    doc = inspect.getdoc(item) if inspect.isclass(item) or inspect.isfunction(item) else None
                    if doc and len(doc) > 20:
                        docs.add(doc.splitlines()[0])
    return docs


def test_no_docstring_is_shown_as_documentation():
    text = json.dumps(published_schema())

    leaked = [doc for doc in _project_docstrings() if json.dumps(doc)[1:-1] in text]

    assert leaked == []


def test_payload_and_evidence_are_typed_per_rule_type():
    schemas = published_schema()["components"]["schemas"]
    alert = schemas["Alert"]["properties"]["payload"]
    evidence = schemas["TriggerEvaluation"]["properties"]["evidence"]

    assert schemas["AlertPayload"]["oneOf"] == [
        {"$ref": f"#/components/schemas/{name}AlertPayload"}
        for name in ("Anomaly", "RobustAnomaly", "Threshold", "Schedule", "NoData", "BudgetOverflow")
    ]
    assert set(schemas["BudgetOverflowAlertPayload"]["required"]) == {
        "reason",
        "budget",
        "hour",
        "suppressed",
        "rules",
        "moreRules",
    }
    assert schemas["Alert"]["properties"]["ruleType"]["allOf"] == [{"$ref": "#/components/schemas/AlertTypeEnum"}]
    assert schemas["AlertTypeEnum"]["enum"] == ["schedule", "metric_threshold", "anomaly", "alert_budget"]
    assert alert["allOf"] == [{"$ref": "#/components/schemas/AlertPayload"}]
    assert evidence["oneOf"] == [{"$ref": "#/components/schemas/Evidence"}, {"type": "null"}]
    assert set(schemas["ThresholdEvidence"]["required"]) == {"metric", "value", "threshold", "observedAt"}
    assert set(schemas["AnomalyEvidence"]["required"]) == {
        "metric",
        "value",
        "mean",
        "std",
        "zScore",
        "threshold",
        "windowDays",
        "points",
        "observedAt",
    }
    assert set(schemas["RobustAnomalyEvidence"]["required"]) == {
        "metric",
        "method",
        "value",
        "median",
        "mad",
        "spread",
        "score",
        "threshold",
        "windowDays",
        "points",
        "observedAt",
    }
    assert set(schemas["ScheduleEvidence"]["required"]) == {"schedule", "scheduledFor"}
    assert set(schemas["NoDataEvidence"]["required"]) == {"metric", "noData"}
    for name in (
        "ThresholdEvidence",
        "AnomalyEvidence",
        "RobustAnomalyEvidence",
        "ScheduleEvidence",
        "NoDataEvidence",
        "AnomalyAlertPayload",
    ):
        assert schemas[name]["additionalProperties"] is False
    assert "reason" in schemas["ThresholdAlertPayload"]["required"]


def test_schedule_evidence_may_name_its_zone_and_local_time():
    evidence = published_schema()["components"]["schemas"]["ScheduleEvidence"]

    assert set(evidence["properties"]) == {"schedule", "scheduledFor", "timezone", "scheduledForLocal"}
    assert set(evidence["required"]) == {"schedule", "scheduledFor"}
    assert evidence["properties"]["timezone"]["type"] == "string"
    assert evidence["properties"]["scheduledForLocal"]["format"] == "date-time"


@pytest.mark.parametrize(
    ("operation_id", "parameter", "format_"),
    [
        ("metric_points_list", "from", "date-time"),
        ("metric_points_list", "to", "date-time"),
        ("billing_usage", "from", "date"),
        ("billing_usage", "to", "date"),
    ],
)
def test_time_parameters_carry_their_format(operation_id, parameter, format_):
    [schema] = [p["schema"] for p in operation(operation_id)["parameters"] if p["name"] == parameter]

    assert schema == {"type": "string", "format": format_}


def test_limits_are_in_the_schema():
    schemas = published_schema()["components"]["schemas"]
    rule_id = next(p for p in operation("alerts_list")["parameters"] if p["name"] == "ruleId")
    path_ids = [
        p["schema"]
        for _path, _m, op in operations()
        for p in op.get("parameters", [])
        if p["in"] == "path" and p["schema"]["type"] == "integer"
    ]

    assert rule_id["schema"]["minimum"] == 1
    assert path_ids and all(schema["minimum"] == 1 for schema in path_ids)
    points = schemas["MetricPointsInput"]["properties"]["points"]
    assert (points["minItems"], points["maxItems"]) == (1, 1000)
    window = schemas["TriggerRuleInput"]["properties"]["windowDays"]
    assert (window["minimum"], window["maximum"]) == (1, 365)
    snooze = schemas["SnoozeInput"]["properties"]["minutes"]
    assert (snooze["minimum"], snooze["maximum"]) == (1, 43200)


def test_a_rule_describes_its_schedule_and_next_occurrences():
    properties = published_schema()["components"]["schemas"]["TriggerRule"]["properties"]

    assert {k: v for k, v in properties["scheduleDescription"].items() if k != "description"} == {
        "type": ["string", "null"],
        "readOnly": True,
    }
    assert {k: v for k, v in properties["nextOccurrences"].items() if k != "description"} == {
        "type": ["array", "null"],
        "items": {"type": "string", "format": "date-time"},
        "minItems": 5,
        "maxItems": 5,
        "readOnly": True,
    }


def test_a_rule_names_the_zone_of_its_schedule_and_its_next_occurrences_there():
    properties = published_schema()["components"]["schemas"]["TriggerRule"]["properties"]
    local = {k: v for k, v in properties["nextOccurrencesLocal"].items() if k != "description"}

    assert {k: v for k, v in properties["scheduleTimezone"].items() if k != "description"} == {
        "type": ["string", "null"]
    }
    assert local == {
        "type": ["array", "null"],
        "items": {
            "type": "string",
            "format": "date-time",
            "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}[+-]\d{2}:\d{2}$",
        },
        "minItems": 5,
        "maxItems": 5,
        "readOnly": True,
    }


def test_tenant_operations_document_the_tenant_header():
    for path, method, op in operations():
        names = {p["name"] for p in op.get("parameters", [])}
        tenant_free = (
            path in ("/health", "/billing/webhook", "/tenants") or op["operationId"] == "marketplace_widgets_register"
        )
        assert ("X-Tenant-Id" in names) != tenant_free, (path, method)


def test_strict_inputs_are_closed_objects():
    schemas = published_schema()["components"]["schemas"]

    for name in (
        "TriggerRuleInput",
        "PatchedTriggerRuleInput",
        "MetricPointsInput",
        "MetricPointInput",
        "SnoozeInput",
        "InstallInput",
        "WidgetRegisterInput",
        "TenantCreateInput",
        "EvaluateInput",
    ):
        assert schemas[name]["additionalProperties"] is False, name


def test_403_examples_fit_the_kind_of_operation():
    def codes(operation_id):
        examples = operation(operation_id)["responses"]["403"]["content"]["application/json"]["examples"]
        return {example["value"]["detail"] for example in examples.values()}

    assert codes("tenants_list") == {"This endpoint is for administrators: a staff user or the X-Admin-Key header."}
    assert "This API key belongs to another tenant than X-Tenant-Id names." in codes("alerts_list")


def test_any_accept_header_gets_json(tenant_client):
    response = tenant_client.get("/alerts", HTTP_ACCEPT="application/xml")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json()["results"] == []
