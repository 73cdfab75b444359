"""Scores for clusterings and for learned features, and a look at the clusters.

Features are judged as the ClusterFit paper judges them: by how well a simple
classifier trained on a labelled set reads the classes off them (a linear probe,
or a cosine k-nearest-neighbour vote), measured on held-out images.
:func:`probe_scores` runs the probes on one split; :func:`representation_report`
runs them, cross-validated, on ClusterFit's features, the extractor's, the raw
pixels of a labelled sample and any baselines, and says which reads the
classes best. :class:`ClusterDisplay` shows sample images of each cluster.

The modules, one concern each: ``_probes`` (the probes and cluster accuracy),
``_report`` (the report object), ``_compare`` (``representation_report``),
``_display`` (``ClusterDisplay``), ``_layers`` (what they read from a fitted
transformer: features at a layer, clusters and confidence, images).
"""

from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

from ._compare import representation_report
from ._display import ClusterDisplay
from ._probes import (
    cluster_accuracy,
    few_shot_score,
    knn_score,
    linear_probe_score,
    probe_scores,
)
from ._report import RepresentationReport

__all__ = [
    "adjusted_rand_score",
    "cluster_accuracy",
    "ClusterDisplay",
    "few_shot_score",
    "knn_score",
    "linear_probe_score",
    "normalized_mutual_info_score",
    "probe_scores",
    "RepresentationReport",
    "representation_report",
]
