"""OncoShot library: pure functions and classes used by the workflow scripts.

Nothing here imports Snakemake; every module is unit-tested under ``tests/``.
"""

__version__ = "0.1.0"
