"""Plain machine-learning code for Detox Studio: no Django imports, everything arrives as arguments.

Django jobs (``training/jobs.py``, ``evaluation/jobs.py``, ``arena/jobs.py``) call into these modules; the CLI and
the tests call them directly.
"""
