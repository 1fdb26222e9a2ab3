"""One module per node_exporter collector; catalogue.py lists them and builds them from settings."""
