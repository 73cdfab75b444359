"""ClusterFit for scikit-learn: features that transfer, learned from unlabelled images."""

from . import datasets, metrics, neighbors
from ._transformer import ClusterFitTransformer, load
from ._version import __version__

__all__ = ["ClusterFitTransformer", "datasets", "load", "metrics", "neighbors", "__version__"]
