"""The Grafana dashboard and the Prometheus alert rules under deploy/ use only real metrics.

Every metric name in a PromQL expression must be one the gateway exports (``gateway.metrics``,
with the suffixes prometheus-client adds: ``_total``, ``_bucket``, ...), and every label an
expression groups by or selects on must be a label of a metric it uses. A renamed metric or label
then fails here instead of leaving an empty panel or an alert that can never fire.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from gateway.metrics import Metrics

DEPLOY = Path(__file__).resolve().parent.parent / "deploy"
DASHBOARD = DEPLOY / "grafana" / "execgw.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("_sum", "_count", "_created"),
    "info": ("_info",),
}
# Labels Prometheus adds at scrape time, and the histogram bucket label.
SCRAPE_LABELS = frozenset({"instance", "job", "le"})
KEYWORDS = frozenset(
    {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless"}
    | {"offset", "inf", "nan"}
)
# The families the dashboard must show (issue 6, item 5).
DASHBOARD_MUST_SHOW = {
    "execgw_pretrade_decisions_total",
    "halt_detector_halts_detected_total",
    "halt_detector_latency_seconds_bucket",
    "sor_routing_decisions_total",
    "sor_routing_latency_seconds_bucket",
    "sor_routing_accuracy",
    "sor_venue_selections_total",
    "trade_journal_fills_recorded_total",
    "trade_journal_fill_latency_seconds_bucket",
    "execgw_rpc_errors_total",
}
REQUIRED_ALERTS = {
    "ExecgwJournalUnavailable",
    "ExecgwHaltStreamLagging",
    "ExecgwRoutingAccuracyBelowTarget",
}


def _exported() -> dict[str, frozenset[str]]:
    """Every exported sample name with the label names of its metric."""
    metrics = Metrics()
    labels: dict[str, frozenset[str]] = {}
    for value in vars(metrics).values():
        name = getattr(value, "_name", None)
        if name is not None:
            # prometheus-client keeps label names on the metric (no public accessor).
            labels[name] = frozenset(getattr(value, "_labelnames", ()))
    names: dict[str, frozenset[str]] = {}
    for family in metrics.registry.collect():
        # An info metric's labels are its values (execgw_build_info{version=...}).
        sampled = {name for sample in family.samples for name in sample.labels}
        for suffix in SUFFIXES[family.type]:
            names[family.name + suffix] = labels.get(family.name, frozenset()) | sampled
    return names


EXPORTED = _exported()


def _strip(expr: str) -> tuple[str, set[str]]:
    """The expression without strings, ranges and label matchers; and the labels it names."""
    labels: set[str] = set()
    text = re.sub(r"\[[^\]]*\]", " ", expr)  # range selectors and subqueries
    for matchers in re.findall(r"\{([^}]*)\}", text):
        labels.update(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)", matchers))
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r'"(?:[^"\\]|\\.)*"', " ", text)
    for clause in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", text):
        labels.update(name.strip() for name in clause.split(",") if name.strip())
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    return text, labels


def metric_names(expr: str) -> tuple[set[str], set[str]]:
    """Metric names and label names a PromQL expression uses (functions and keywords left out)."""
    text, labels = _strip(expr)
    names = {
        match.group(1)
        for match in re.finditer(r"(?<![\w$.])([a-zA-Z_:][\w:]*)\b(?!\s*\()", text)
        if match.group(1).lower() not in KEYWORDS
    }
    return names, labels


def _dashboard_exprs() -> Iterator[tuple[str, str]]:
    document = json.loads(DASHBOARD.read_text(encoding="utf-8"))

    def walk(panels: list[dict[str, Any]]) -> Iterator[tuple[str, str]]:
        for panel in panels:
            for target in panel.get("targets", ()):
                yield panel["title"], target["expr"]
            yield from walk(panel.get("panels", []))

    yield from walk(document["panels"])
    for variable in document["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            found = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", query["query"])
            assert found, f"variable {variable['name']}: unexpected query {query['query']}"
            yield f"variable {variable['name']}", f"{found.group(1)}{{{found.group(2)}!=''}}"


def _alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"]]


def _check(where: str, expr: str) -> set[str]:
    names, labels = metric_names(expr)
    assert names, f"{where}: no metric in {expr!r}"
    unknown = names - EXPORTED.keys()
    assert not unknown, f"{where}: {sorted(unknown)} not exported by gateway/metrics.py"
    allowed = SCRAPE_LABELS.union(*(EXPORTED[name] for name in names))
    assert labels <= allowed, f"{where}: labels {sorted(labels - allowed)} not on {sorted(names)}"
    return names


def test_metric_names_parses_promql() -> None:
    names, labels = metric_names(
        'histogram_quantile(0.99, sum by (le, instance) (rate(foo_bucket{code="X", a=~"b.*"}[5m])))'
        " / on (instance) group_left sum(bar_total offset 1h) > 0.5"
    )
    assert names == {"foo_bucket", "bar_total"}
    assert labels == {"le", "instance", "code", "a"}


def test_dashboard_uses_only_exported_metrics_and_labels() -> None:
    used: set[str] = set()
    for title, expr in _dashboard_exprs():
        used |= _check(f"panel {title!r}", expr)
    missing = DASHBOARD_MUST_SHOW - used
    assert not missing, f"the dashboard does not show {sorted(missing)}"


def test_alert_rules_parse_and_use_only_exported_metrics() -> None:
    rules = _alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names)), "alert names must be unique"
    assert set(names) >= REQUIRED_ALERTS
    for rule in rules:
        assert rule["labels"]["severity"] in ("page", "ticket"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        _check(f"alert {rule['alert']}", rule["expr"])


@pytest.mark.parametrize(
    "expr",
    [
        "rate(trade_journal_fills_total[5m])",  # the counter is trade_journal_fills_recorded
        "sum by (venue) (rate(sor_routing_decisions_total[5m]))",  # outcome, not venue
    ],
)
def test_check_when_a_metric_or_label_does_not_exist_then_fails(expr: str) -> None:
    with pytest.raises(AssertionError):
        _check("example", expr)
