"""ClusterFit for scikit-learn: features that transfer, learned from unlabelled images."""

from . import datasets, metrics
from ._persistence import load
from ._transformer import ClusterFitTransformer

__version__ = "0.1.0"

__all__ = ["ClusterFitTransformer", "datasets", "load", "metrics", "__version__"]
