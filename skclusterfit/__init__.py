"""ClusterFit for scikit-learn: features that transfer, learned from unlabelled images."""

from . import metrics
from ._transformer import ClusterFitTransformer

__version__ = "0.1.0"

__all__ = ["ClusterFitTransformer", "metrics", "__version__"]
