from core.routing import optional_slash
from proactive.apis import (
    MetricPointsApi,
    TriggerRuleDetailApi,
    TriggerRuleEvaluateApi,
    TriggerRuleListCreateApi,
)

urlpatterns = [
    *optional_slash("triggers", TriggerRuleListCreateApi.as_view(), name="trigger-list"),
    *optional_slash("triggers/<int:rule_id>", TriggerRuleDetailApi.as_view(), name="trigger-detail"),
    *optional_slash("triggers/<int:rule_id>/evaluate", TriggerRuleEvaluateApi.as_view(), name="trigger-evaluate"),
    *optional_slash("metrics/<str:metric>/points", MetricPointsApi.as_view(), name="metric-points"),
]
