"""Threshold alerting: per-tenant thresholds in YAML, turned into Prometheus rules, promtool tests
and Alertmanager routes (``python -m perfanalysis.alerting generate``).

Generated files are committed so that a review shows the exact PromQL that will page someone, and
a unit test fails when they drift from what the generator produces. Nothing heavy is imported here.
"""
