"""Evaluations on real third-party data: ``python -m omnimem.eval --help``."""
