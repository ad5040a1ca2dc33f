"""Benchmarks: ``python -m bench [NAME [ARGS...]]`` runs bench/NAME.py (all of them without NAME)."""
