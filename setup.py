"""The optional C part of ingest: metadata and everything else are in pyproject.toml.

``ingest._batchfast`` speeds up the whole-batch path of ingest/batch.py. It is optional: where
it cannot be built (no C compiler), the install still succeeds and batch.py uses the same path
in pure Python.
"""

from setuptools import Extension, setup

setup(ext_modules=[Extension("ingest._batchfast", ["ingest/_batchfast.c"], optional=True)])
