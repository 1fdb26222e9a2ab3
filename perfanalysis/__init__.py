"""PerfAnalysis: the ``perfanalysis`` command and what every component shares (configuration)."""
