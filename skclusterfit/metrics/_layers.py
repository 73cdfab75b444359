"""What the metrics, the displays and the exports read from a fitted transformer.

Features at a layer, the cluster of each image with N_cf's confidence in it,
and images as the transformer reads them, each without changing the
transformer it is given.
"""

from __future__ import annotations

import numpy as np
from scipy.special import softmax
from sklearn.utils.validation import check_is_fitted

from .._inputs import _streamed_kind, check_images
from .._transformer import ClusterFitTransformer


def at_layer(estimator, layer: str):
    """A shallow copy of the fitted ``estimator`` whose ``transform`` gives ``layer``.

    ``estimator`` itself is left as it is. The copy shares the fitted networks;
    ``copy.copy`` would go through ``__getstate__``, which copies networks on
    a GPU to the CPU.
    """
    view = object.__new__(type(estimator))
    view.__dict__.update(vars(estimator))
    return view.set_params(feature_layer=layer)


def check_clusterfit(estimator, caller: str) -> None:
    """Raise unless ``estimator`` is a fitted ClusterFitTransformer (a hint for a pipeline)."""
    if not isinstance(estimator, ClusterFitTransformer):
        hint = ""
        if hasattr(estimator, "named_steps"):
            hint = " For a pipeline, pass its ClusterFitTransformer step."
        raise TypeError(
            f"{caller} needs a fitted ClusterFitTransformer; got {type(estimator).__name__}.{hint}"
        )
    check_is_fitted(estimator)


def clusters_and_confidence(estimator, X) -> tuple[np.ndarray, np.ndarray]:
    """N_cf's cluster of each image (``predict``) and its confidence in it.

    The confidence is the softmax probability of the predicted cluster over
    the first head's cluster logits: the images N_cf is surest of are the most
    typical of their cluster. One pass over ``X``.
    """
    logits = at_layer(estimator, "logits").transform(X)[:, : estimator.n_clusters_]
    labels = logits.argmax(axis=1).astype(np.int64)
    confidence = softmax(logits.astype(np.float64), axis=1)[np.arange(len(labels)), labels]
    return labels, confidence


def read_images(estimator, X, indices=None) -> np.ndarray:
    """Images ``X[indices]`` (all by default) as ``estimator`` reads them on the CPU.

    Returns float32 ``(n, C, H, W)`` in [0, 1]: arrays scaled by the range
    found in ``fit``, image files and Datasets decoded, resized and converted
    to the fitted size and colour mode. (On a GPU, images of fewer pixels
    than the fitted size are enlarged there, within 1/255 of these.)
    """
    source = check_images(estimator, X, reset=False)
    order = None if indices is None else np.asarray(indices, dtype=np.int64)
    # Reading only: any batch size gives the same images.
    batches = [images.numpy() for _, images in source.iter_batches(256, order)]
    if not batches:
        return np.zeros((0, *source.shape), dtype=np.float32)
    return np.concatenate(batches)


def pixels(estimator, X) -> np.ndarray:
    """``X`` as flat float32 rows; image files and Datasets as :func:`read_images` reads them."""
    if _streamed_kind(X) is None:
        X = np.asarray(X)
        return X.reshape(len(X), -1).astype(np.float32)
    images = read_images(estimator, X)
    return images.reshape(len(images), -1)
