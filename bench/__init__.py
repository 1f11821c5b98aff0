"""Benchmarks: bulkimport against DuckDB's own load and the usual alternatives.

``python -m bench --help``; the results and what limits us are in docs/benchmarks.md.
"""
