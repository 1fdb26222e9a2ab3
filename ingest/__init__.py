"""The ingest service: InfluxDB-compatible write API, line-protocol validation, limits, storage.

Kept free of imports: the exporter's host must be able to import nothing from here.
"""
