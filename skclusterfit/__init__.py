"""ClusterFit for scikit-learn: features that transfer, learned from unlabelled images."""

from . import datasets, metrics
from ._transformer import ClusterFitTransformer, load
from ._version import __version__

__all__ = ["ClusterFitTransformer", "datasets", "load", "metrics", "__version__"]
