"""Hooks for the benchmarks: the one module they may import private helpers from.

Scripts outside the package (``benchmarks/``) use the public API; where a
study needs something the public API does not offer, it takes it from here,
so that renaming a private module breaks an import in one place, checked by
the tests, rather than a study silently.
"""

from .metrics._layers import at_layer
from .metrics._probes import probe_label

__all__ = ["at_layer", "probe_label"]
