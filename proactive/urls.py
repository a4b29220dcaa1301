from core.routing import optional_slash
from proactive.apis import (
    MetricPointsApi,
    TriggerRuleBacktestApi,
    TriggerRuleDetailApi,
    TriggerRuleDraftBacktestApi,
    TriggerRuleEvaluateApi,
    TriggerRuleListCreateApi,
)

urlpatterns = [
    *optional_slash("triggers", TriggerRuleListCreateApi.as_view(), name="trigger-list"),
    *optional_slash("triggers/<int:rule_id>", TriggerRuleDetailApi.as_view(), name="trigger-detail"),
    *optional_slash("triggers/backtest", TriggerRuleDraftBacktestApi.as_view(), name="trigger-backtest-draft"),
    *optional_slash("triggers/<int:rule_id>/evaluate", TriggerRuleEvaluateApi.as_view(), name="trigger-evaluate"),
    *optional_slash("triggers/<int:rule_id>/backtest", TriggerRuleBacktestApi.as_view(), name="trigger-backtest"),
    *optional_slash("metrics/<str:metric>/points", MetricPointsApi.as_view(), name="metric-points"),
]
