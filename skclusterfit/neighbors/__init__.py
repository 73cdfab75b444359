"""What comes after ``transform``: search, near-duplicates and outliers among images.

:class:`ImageIndex` holds the features of a set of images, as a fitted
:class:`~skclusterfit.ClusterFitTransformer` reads them, and answers three
questions about them by cosine distance, the distance of the package's k-NN
probe (where ClusterFit's features do best):

- which fitted images are nearest to a query image (:meth:`ImageIndex.kneighbors`);
- which fitted images are near-duplicates of one another (:meth:`ImageIndex.duplicates`);
- how far each image lies from its neighbours (:meth:`ImageIndex.outlier_scores`).

:class:`NeighborsDisplay`, :class:`DuplicatesDisplay` and
:class:`OutliersDisplay` show the answers as grids of images.
``DUPLICATE_THRESHOLD`` is the default cosine distance of near-duplicates.

The modules: ``_index`` (the index and its two exact backends, faiss and
scikit-learn) and ``_display`` (the displays).
"""

from ._display import DuplicatesDisplay, NeighborsDisplay, OutliersDisplay
from ._index import DUPLICATE_THRESHOLD, ImageIndex

__all__ = [
    "DUPLICATE_THRESHOLD",
    "DuplicatesDisplay",
    "ImageIndex",
    "NeighborsDisplay",
    "OutliersDisplay",
]
