"""Pending periods, hysteresis and no data: what the engine does with a verdict (pure)."""

from proactive.engine.conditions import Evaluation
from proactive.engine.policy import Streaks, apply_policy

BREACH = Evaluation(fired=True, reason="m is 30, above 25.", evidence={"metric": "m", "value": 30.0})
CLEAR = Evaluation(fired=False, reason="m is 10, not above 25.", evidence={"metric": "m", "value": 10.0})
NO_DATA = Evaluation(fired=False, reason="No datapoints for 'm' in the window.", decided=False, no_data=True)
UNDECIDED = Evaluation(fired=False, reason="m was 0 1 day earlier.", decided=False)
WINDOW = {"windowDays": 30}


def run(verdicts, **options):
    """Apply the policy to a sequence of verdicts, as the engine does minute after minute."""
    streaks, outcomes = Streaks(), []
    for verdict in verdicts:
        outcome = apply_policy(verdict, streaks=streaks, metric="m", window=WINDOW, **options)
        streaks = outcome.streaks
        outcomes.append(outcome)
    return outcomes


def test_the_defaults_fire_on_one_breach_and_clear_on_one_clear_evaluation():
    outcomes = run([BREACH, CLEAR, NO_DATA])

    assert [(o.fires, o.clears) for o in outcomes] == [(True, False), (False, True), (False, True)]
    assert outcomes[0].evaluation == BREACH  # evidence and reason untouched by the defaults


def test_a_pending_period_needs_three_breaching_evaluations_in_a_row():
    outcomes = run([BREACH, BREACH, CLEAR, BREACH, BREACH, BREACH, BREACH], for_evaluations=3)

    assert [o.fires for o in outcomes] == [False, False, False, False, False, True, True]
    assert outcomes[1].evaluation.reason == "m is 30, above 25. Breaching for 2 of 3 evaluations: pending."
    assert outcomes[5].evaluation.reason == "m is 30, above 25. Breaching for 3 of 3 evaluations."
    assert outcomes[5].evaluation.evidence == {
        "metric": "m",
        "value": 30.0,
        "breachingEvaluations": 3,
        "forEvaluations": 3,
    }
    assert outcomes[6].evaluation.evidence["breachingEvaluations"] == 3  # counted up to the period, not beyond
    assert outcomes[6].streaks == Streaks(breaching=4, clear=0)


def test_hysteresis_clears_only_after_two_clear_evaluations_in_a_row():
    outcomes = run([BREACH, CLEAR, BREACH, CLEAR, CLEAR], clear_evaluations=2)

    assert [o.clears for o in outcomes] == [False, False, False, False, True]


def test_no_data_ok_counts_as_clear_alert_raises_and_keep_changes_nothing():
    ok = run([BREACH, NO_DATA], no_data="ok")
    alert = run([NO_DATA, NO_DATA], no_data="alert", for_evaluations=2)
    keep = run([BREACH, NO_DATA, BREACH], no_data="keep", for_evaluations=2)

    assert (ok[1].fires, ok[1].clears) == (False, True)
    assert [o.fires for o in alert] == [False, True]
    assert alert[1].evaluation.evidence == {
        "metric": "m",
        "noData": True,
        "windowDays": 30,
        "breachingEvaluations": 2,
        "forEvaluations": 2,
    }
    assert alert[1].evaluation.reason.startswith("No datapoints for 'm' in the window. The rule raises a no-data alert")
    # keep: the no-data minute neither breaks the streak nor clears
    assert [(o.fires, o.clears) for o in keep] == [(False, False), (False, False), (True, False)]


def test_an_undecided_verdict_leaves_the_counts_alone():
    outcomes = run([BREACH, UNDECIDED, BREACH], for_evaluations=2)

    assert [o.fires for o in outcomes] == [False, False, True]
    assert outcomes[1].streaks == Streaks(breaching=1, clear=0)
