"""The exporter's push path: line protocol, an on-disk spool and a small HTTP client.

Imported only when ``--push.url`` is set, so an exporter that is only scraped loads none of it
(the design caps its resident memory at 1.25x node_exporter's). Keep this file free of imports.
"""
