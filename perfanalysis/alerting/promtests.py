"""promtool unit tests for the generated rules: for every rule in every scope, a quiet host that
must not alert, and hosts crossing each level, evaluated a minute before and at the moment ``for:``
elapses, with the exact labels and rendered annotations expected.

A tenant's test file loads default.rules.yml too, so if the default file's negative matcher ever
let a listed tenant's series through, the duplicate alert would fail the test. (Loading every file
everywhere would also catch tenant-to-tenant leaks, at three times the run time; those are covered
by the hand-written tenant-overrides.test.yml and by a unit test that every selector is scoped.)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

from perfanalysis.alerting.catalogue import RULES, Level, RuleDef
from perfanalysis.alerting.rules import Scope, dump, scopes
from perfanalysis.alerting.scenarios import ATTEMPTS, BUILDERS, SWITCH, Hosts, Scenario
from perfanalysis.alerting.thresholds import Setting, Thresholds

EPSILON = 1e-9  # relative margins closer to zero than this are too close to call


class ScenarioError(ValueError):
    """A scenario's values fall on a threshold or never cross it: no sound test can be built."""


def outsider(thresholds: Thresholds) -> str:
    """A tenant name that is not listed, for ingest metrics judged by the default file."""
    return next(
        f"unlisted{n or ''}" for n in range(100) if f"unlisted{n or ''}" not in thresholds.tenants
    )


def series_text(
    metric: str, labels: Mapping[str, str], length: int, values: Callable[[int], float | None]
) -> dict[str, str]:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return {
        "series": f"{metric}{{{inner}}}",
        "values": expanding([values(t) for t in range(length)]),
    }


def expanding(values: list[float | None]) -> str:
    """promtool's expanding notation (``a+bxn``: n + 1 values; ``_`` for no sample, ``_xn`` for n
    of them), exact: a run is merged only
    when adding its step and multiplying it both give back every value bit for bit (both, since
    which one promtool uses is its own business). Linear in the number of values: the sum is
    carried along the run, not recomputed for each value."""
    parts, i = [], 0
    while i < len(values):
        first = values[i]
        j = i
        if first is None:
            while j + 1 < len(values) and values[j + 1] is None:
                j += 1
            parts.append(f"_x{j - i + 1}" if j > i else "_")  # _xn: n missing samples
            i = j + 1
            continue
        following = values[i + 1] if i + 1 < len(values) else None
        step = following - first if following is not None else 0.0
        total = first
        while j + 1 < len(values):
            value = values[j + 1]
            total += step
            if value is None or not total == value == first + step * (j + 1 - i):
                break
            j += 1
        if j == i:
            parts.append(_num(first))
        elif step == 0:
            parts.append(f"{_num(first)}x{j - i}")
        else:
            parts.append(f"{_num(first)}{'+' if step > 0 else '-'}{_num(abs(step))}x{j - i}")
        i = j + 1
    return " ".join(parts)


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def onset(scenario: Scenario, level: Level, rule: RuleDef) -> int | None:
    """The first minute at which the level holds, after checking that it does not hold just before
    the scenario starts, that no minute is too close to call, and that once it holds it keeps
    holding (scenarios only ever get worse)."""
    first = None
    # A level must start holding within the scenario's horizon to be tested; a few minutes more
    # are scanned because the last evaluation comes 3 minutes after the last alert fires.
    for t in range(scenario.start - 1, scenario.start + scenario.horizon + 4):
        margin = scenario.margin(level, t)
        problem = ""
        if abs(margin) < EPSILON:
            problem = f"is on the threshold at minute {t}"
        elif margin > 0 and t < scenario.start:
            problem = f"already holds at minute {t}"
        elif margin < 0 and first is not None:
            problem = f"stops holding at minute {t}"
        if problem:
            raise ScenarioError(
                f"cannot build a promtool test for its {level.severity} level "
                f"({level.limit}): scenario {scenario.title!r} {problem}"
                if level.threshold is not None
                else f"cannot build a promtool test: scenario {scenario.title!r} {problem}"
            )
        if margin > 0 and first is None:
            first = t
    return first


def fire_times(rule: RuleDef, setting: Setting, scenario: Scenario) -> list[tuple[Level, int]]:
    """(level, minute its alert fires) for each level that the scenario makes fire."""
    if scenario.quiet:
        return []
    fires = []
    for level in setting.levels():
        start = onset(scenario, level, rule)
        if start is not None:
            fires.append((level, start + math.ceil(level.for_seconds / 60)))
    if not fires:
        raise ScenarioError(
            f"cannot build a promtool test: scenario {scenario.title!r} never alerts"
        )
    return fires


Fires = list[tuple[Scenario, Level, int]]


def build(scope: Scope, rule: RuleDef, ingest_tenant: str) -> tuple[list[Scenario], Fires]:
    """The rule's scenarios and when each of their levels fires. A scenario whose values land on a
    threshold is built again with its values moved (scenarios.SHIFTS); if every attempt fails, the
    error names the place in the thresholds file, as the validator's errors do."""
    setting = scope.settings[rule.key]
    hosts = Hosts({"tenant": scope.tenant} if scope.tenant else {})
    error = ScenarioError("no attempt")
    for attempt in range(ATTEMPTS):
        scenarios = BUILDERS[rule.key](setting, hosts, ingest_tenant, attempt)
        try:
            fires = [(s, lv, fire) for s in scenarios for lv, fire in fire_times(rule, setting, s)]
        except ScenarioError as exc:
            error = exc
            continue
        return scenarios, fires
    where = f"tenants.{scope.tenant}" if scope.tenant else "defaults"
    raise ScenarioError(f"{where}.{rule.key}: {error}")


def group(
    scope: Scope, rule: RuleDef, setting: Setting, scenarios: list[Scenario], fires: Fires
) -> dict[str, Any]:
    """One promtool test group: all of a rule's scenarios side by side, evaluated a minute before
    and at each alert's firing time, and once more at the end."""
    times = {t for _, _, fire in fires for t in (fire - 1, fire) if t >= 0}
    for_minutes = max((math.ceil(lv.for_seconds / 60) for lv in setting.levels()), default=0)
    late = max([*times, SWITCH + 5 + for_minutes]) + 3
    evaluations = []
    for t in sorted({*times, late}):
        alerts = [expected(scope, rule, level, s, t) for s, level, fire in fires if fire <= t]
        evaluations.append({"eval_time": f"{t}m", "alertname": rule.alert, "exp_alerts": alerts})
    where = f"tenant {scope.tenant}" if scope.tenant else "no or unlisted tenant"
    series = [spec for s in scenarios for spec in s.series]
    return {
        "name": f"{rule.alert} ({where}): " + "; ".join(s.title for s in scenarios),
        "interval": "1m",
        "input_series": [series_text(m, labels, late + 1, values) for m, labels, values in series],
        "alert_rule_test": evaluations,
    }


def expected(
    scope: Scope, rule: RuleDef, level: Level, scenario: Scenario, t: int
) -> dict[str, Any]:
    labels = {**scenario.labels, "severity": level.severity}
    if scope.tenant is not None:
        labels["tenant"] = scope.tenant
    value = scenario.value(t)
    return {
        "exp_labels": labels,
        "exp_annotations": {
            "summary": rule.summary(level).render(value, labels),
            "description": rule.description(level).render(value, labels),
        },
    }


def promtool_test_file(thresholds: Thresholds, scope: Scope, rules_dir: str) -> dict[str, Any]:
    ingest_tenant = scope.tenant or outsider(thresholds)
    groups = []
    for key, rule in RULES.items():
        scenarios, fires = build(scope, rule, ingest_tenant)
        groups.append(group(scope, rule, scope.settings[key], scenarios, fires))
    files = [scope.file_name] + (["default.rules.yml"] if scope.tenant else [])
    rule_files = [f"{rules_dir}/{name}" for name in files]
    return {"rule_files": rule_files, "evaluation_interval": "1m", "tests": groups}


def promtool_tests(thresholds: Thresholds, rules_dir: str) -> dict[str, str]:
    """File name → contents: ``<stem>.test.yml`` for each rule file."""
    return {
        f"{scope.stem}.test.yml": dump(promtool_test_file(thresholds, scope, rules_dir))
        for scope in scopes(thresholds)
    }
