"""Performance reports: ``perfanalysis report --config report.yaml [--output F.html] [--pdf F.pdf]``.

A YAML file names the tenant, the hosts and the time range (``config``); the tenant's read-only
InfluxDB credentials come from the admin database or from the YAML (``source``). The series are
read with InfluxQL in time chunks, one value per step (``fetch``), turned into rates and ratios
with gaps kept as gaps (``series``, ``analyse``), summarised with linear-interpolation
percentiles (``stats``), checked against thresholds (``recommend``; a fill trend forecast only
from enough data for how far ahead it looks, ``trend``) and written as one
self-contained HTML page with inline SVG charts (``svg``, ``charts``, ``page``), printed to PDF by
headless Chromium on request (``pdf``). Each file is written beside its target and renamed into
place, so a failed run keeps the previous report (``files``).
"""
