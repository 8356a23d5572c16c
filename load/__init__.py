"""Liaison's load generator and benchmarks: `python -m load run ...`, `python -m load bench`.

See load/README.md and docs/benchmarks.md.
"""
