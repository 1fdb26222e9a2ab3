"""Load tests and price-performance: stored runs, the price catalog, comparisons, right-sizing.

* ``contract``: the upload format ``perfanalysis.loadtest/1``, checked by the runner's own
  definition (``exporter.loadtest.contract``), and a result's canonical form.
* ``models``: runs, their levels and the price catalog (same ``Base`` as tenants.models).
* ``prices``: the catalog (a global seed plus per-tenant rows) and the price a run gets.
* ``runs``: storing, listing and deleting runs, always inside one tenant.
* ``compare``: units per $/hour, % of best, value range, differences to a baseline.
* ``rightsizing`` and ``cpu_history``: demand from a collector's CPU history, ranked machines.
* ``examples``: the original system's published results as upload documents.
"""
