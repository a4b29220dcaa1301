"""
From a condition's verdict to what the engine does: pending periods (`forEvaluations`), hysteresis
(`clearEvaluations`) and what no data means (`noData`). Pure: the counts of consecutive breaching
and clear evaluations come in and go out; the runner stores them on the rule.

With the defaults (1, 1, "ok") a breaching evaluation fires and a clear one may resolve, as the
guide's engine did.
"""

from dataclasses import dataclass, replace

from proactive.engine.conditions import Evaluation


@dataclass(frozen=True)
class Streaks:
    breaching: int = 0
    clear: int = 0


@dataclass(frozen=True)
class Outcome:
    evaluation: Evaluation  # the verdict, its reason and evidence saying where the counts stand
    fires: bool  # raise an alert (or keep the open one)
    clears: bool  # the condition is clear for long enough: an auto-resolving rule resolves its alert
    streaks: Streaks


def apply_policy(
    evaluation: Evaluation,
    *,
    streaks: Streaks,
    metric: str,
    window: dict,
    for_evaluations: int = 1,
    clear_evaluations: int = 1,
    no_data: str = "ok",
) -> Outcome:
    """
    `window` is what was looked at, for a no-data alert's evidence (`{"windowDays": 30}` or
    `{"aggregateMinutes": 15}`). Undecided verdicts (a change against 0; no data with `noData:
    keep`) leave the counts as they are.
    """
    if evaluation.no_data and no_data == "alert":
        evaluation = Evaluation(
            fired=True,
            reason=f"{evaluation.reason} The rule raises a no-data alert (noData: alert).",
            evidence={"metric": metric, "noData": True, **window},
            no_data=True,
        )
    elif evaluation.no_data and no_data == "ok":
        return Outcome(evaluation, fires=False, clears=clear_evaluations <= streaks.clear + 1, streaks=_clear(streaks))
    if not evaluation.decided:
        return Outcome(evaluation, fires=False, clears=False, streaks=streaks)

    if not evaluation.fired:
        streaks = _clear(streaks)
        return Outcome(evaluation, fires=False, clears=streaks.clear >= clear_evaluations, streaks=streaks)

    streaks = Streaks(breaching=streaks.breaching + 1, clear=0)
    fires = streaks.breaching >= for_evaluations
    if for_evaluations > 1:
        counted = min(streaks.breaching, for_evaluations)
        state = f"breaching for {counted} of {for_evaluations} evaluations" + ("" if fires else ": pending")
        evaluation = replace(
            evaluation,
            fired=fires,
            reason=f"{evaluation.reason} {state[:1].upper()}{state[1:]}.",
            evidence={**evaluation.evidence, "breachingEvaluations": counted, "forEvaluations": for_evaluations},
        )
    return Outcome(evaluation, fires=fires, clears=False, streaks=streaks)


def _clear(streaks: Streaks) -> Streaks:
    return Streaks(breaching=0, clear=streaks.clear + 1)
