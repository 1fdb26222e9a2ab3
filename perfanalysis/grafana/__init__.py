"""Grafana as code: dashboards (grafana-foundation-sdk), provisioning files, the per-tenant API sync,
and the macro expansion that lets every panel query run outside Grafana.

Nothing is imported here: the exporter's hosts never load this package.
"""
