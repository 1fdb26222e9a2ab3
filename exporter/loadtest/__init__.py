"""``perfanalysis loadtest``: a calibrated CPU load test of this host and its upload to the admin app.

Modules, one job each:

- ``unit``: the work unit (pa-mem4m-v1) and its checksum
- ``worker`` / ``pool``: one process per vCPU running units inside coordinated windows
- ``procstat``: busy% from two /proc/stat snapshots
- ``measure``: one window at a requested load, measured
- ``controller``: acceptance bands, retries that nudge the load, repeats (pure logic)
- ``runner``: calibration and the levels, in order
- ``host`` / ``cloud``: host facts, cloud provider from DMI and cloud-init's cached metadata
- ``contract``: the format perfanalysis.loadtest/1, one definition with the admin app's check
- ``result``: the JSON document and its validation (the contract's)
- ``progress``: the status line on a terminal, periodic lines otherwise
- ``upload``: POST of a result to the admin app with the collector key
- ``settings`` / ``main``: flags and the two subcommands, ``run`` and ``upload``
"""
