"""Benchmarks (``make bench``): bench.exporter, bench.push and bench.ingest print ratios against an
anchor measured in the same run; bench.report and bench.admin check absolute targets."""
