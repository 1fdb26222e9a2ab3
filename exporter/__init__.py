"""node_exporter-compatible exporter: /proc collectors, the /metrics server and the push client.

Nothing heavy is imported here: a host that runs only the exporter needs the standard library.
"""

__version__ = "0.1.0"
