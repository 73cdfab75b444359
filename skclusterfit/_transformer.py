"""ClusterFitTransformer: the estimator that runs the stages in order."""

from __future__ import annotations

import os
import threading
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from . import _distributed as distributed
from . import _persistence
from ._checkpoints import holding, stage_cache
from ._clustering import CLUSTERERS, embed_and_cluster
from ._devices import (
    PRECISIONS,
    describe_fit,
    resolve_batch,
    resolve_device,
    seeded,
    torch_threads,
    warn_of_emulated_bfloat16,
)
from ._extractors import fit_extractor, pretext_outputs
from ._inputs import check_fit_inputs, check_images, cluster_counts
from ._networks import (
    Features,
    MultiScale,
    SideBySide,
    build_network,
    check_output,
    resolve_architecture,
)
from ._persistence import picklable
from ._reporting import Reporter
from ._targets import class_ids
from ._training import infer, make_config, train

FEATURE_LAYERS = ("features", "logits", "extractor", "features+extractor")
# Fits in threads of one process run their stages one at a time: torch's global
# generators and thread settings are one per process. Fits in processes share
# checkpoint_dir through its lock files instead.
_FITTING = threading.RLock()


class ClusterFitTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Features learned by ClusterFit: cluster a network's embeddings, retrain on the clusters.

    ``fit`` runs ClusterFit (Yan et al., CVPR 2020) on the images ``X``: an
    extractor network N_pre (by default trained on ``X`` to predict rotations)
    embeds every image; the embeddings are PCA-whitened, L2-normalised and
    clustered by k-means into ``n_clusters`` groups; a new network N_cf,
    trained from scratch, learns to predict each image's cluster.
    ``transform`` returns N_cf's pooled features. ``X`` may be an array, image
    file paths or a ``torch.utils.data.Dataset``, decoded a batch at a time.

    The parameters come in the order of the stages they reach: N_pre, the
    clustering, N_cf, the training of both, then the input, the output and how
    ``fit`` runs. Read more in the :doc:`User Guide </user_guide>`.

    Parameters
    ----------
    n_clusters : int or list of int, default=100
        Number of clusters, i.e. of classes N_cf learns. A list such as
        ``[100, 500]`` makes one clustering per entry and gives N_cf one head
        for each; the attributes without ``_all_`` keep to the first. See
        :ref:`choosing-k`.
    extractor : str, nn.Module or callable, default="rotnet"
        The network whose embeddings are clustered: ``"rotnet"`` (trained on
        ``X`` to predict rotations), ``"supervised"`` (trained on the ``y``
        given to ``fit``), ``"random"`` (untrained, a control), a torchvision
        model name (ImageNet weights from the local torch cache), or an
        ``nn.Module`` or callable mapping float32 batches ``(N, C, H, W)`` in
        [0, 1] to features ``(N, d)``.
    extractor_weights : str, path or None, default=None
        For a torchvision ``extractor``: a weights name (None: the default)
        or a state-dict file. Nothing is ever downloaded.
    extractor_epochs : int, default=10
        Training epochs of a trained extractor (``"rotnet"``, ``"supervised"``).
    rotations_per_image : int, default=2
        For ``"rotnet"``: at how many of its four rotations (two for
        non-square images) each image is shown per epoch, drawn at random.
    clusterer : str or estimator, default="auto"
        ``"kmeans"``, ``"minibatch"`` (MiniBatchKMeans), ``"faiss"`` (the
        ``faiss`` extra), ``"auto"`` (the fastest of these for the number of
        images per cluster) or any scikit-learn clusterer, cloned.
    pca_components : int or None, default=64
        PCA-whiten the embeddings to this many components before clustering,
        as DeepCluster does; None clusters them as they are.
    l2_normalize : bool, default=True
        L2-normalise the embeddings (after whitening) before clustering.
    architecture : str or callable, default="auto"
        The network trained as N_cf and as a trained extractor: ``"cnn"``,
        ``"cnn_stem"``, ``"resnet18_small"``, ``"auto"`` (by device and image
        size; see :ref:`the architectures <architectures>`), a torchvision
        model name (untrained), or a factory ``f(n_outputs) -> nn.Module``
        whose last ``nn.Linear`` gives the logits.
    max_epochs : int, default=20
        Training epochs of N_cf.
    balanced_sampling : bool, default=False
        Draw training images uniformly over clusters (classes, for
        ``"supervised"``), as DeepCluster does, instead of over images.
    batch_size : int or "auto", default="auto"
        Images per training step and per inference batch (per process under
        ``torch.distributed``). ``"auto"``: 128, or 256 on a GPU for small
        images with ``learning_rate`` scaled alike (see :ref:`batch-size`).
    learning_rate : float, default=0.05
        Peak learning rate of SGD with Nesterov momentum 0.9 (for 128 images
        a step, under ``batch_size="auto"``).
    lr_schedule : {"cosine", "constant"}, default="cosine"
        ``"cosine"``: one epoch of linear warm-up, then cosine decay to zero.
    weight_decay : float, default=5e-4
        L2 penalty of the optimiser.
    augmentation : {"strong", "light", "none"}, default="strong"
        ``"strong"``: resized crops of 50-100% of the area, flips, brightness
        and contrast; ``"light"``: shifts of up to 1/8 of the image and flips.
    precision : {"auto", "float32", "bfloat16"}, default="auto"
        Number format of the training forward pass; ``"auto"``: bfloat16 where
        the hardware computes it natively. See :ref:`reproducibility-and-speed`.
    image_shape : "auto" or tuple, default="auto"
        Shape ``(H, W)`` or ``(H, W, C)`` of the images flattened in the rows
        of a 2-D ``X``. ``"auto"`` reads square grey images, else
        one-pixel-high signals, and warns where the rows look like colour or
        RGBA images. N-D arrays, files and Datasets carry their own shape.
    image_size : int, (height, width) or None, default=None
        For image files and Datasets: the size every image is resized to in
        ``fit`` (None: the first image's). Arrays are never resized.
    num_workers : int, default=0
        Worker processes of the DataLoader that decodes image files and
        Datasets (0: the main process). Arrays ignore it.
    feature_layer : {"features", "logits", "extractor", "features+extractor"}, \
            default="features"
        What ``transform`` returns: N_cf's features, its cluster logits (every
        head's), N_pre's features, or both features side by side (see
        :ref:`the user guide <side-by-side>`). May be changed after ``fit``.
    feature_stages : int, default=3
        From how many of the network's last stages ``transform`` pools
        features (3: 64 + 128 + 256 values for the compact CNN). May be
        changed after ``fit``.
    device : str, default="auto"
        Torch device; ``"auto"`` uses CUDA when available.
    n_jobs : int or None, default=None
        CPU threads of torch in ``fit`` and ``transform`` (negative: counted
        back from the number of cores); ``None`` keeps torch's setting.
    random_state : int, RandomState instance or None, default=None
        Seeds every stage, each from its own seed. With an int, a CPU fit
        repeats bit for bit on the same machine and torch version with the
        same number of torch threads (set ``n_jobs`` to fix it); see
        :ref:`reproducibility-and-speed`.
    verbose : int, default=0
        0 prints nothing; 1 a line per stage with its time and a progress bar
        per stage (tqdm's when installed), with each epoch's loss and accuracy.
    checkpoint_dir : str, path or None, default=None
        A stage cache: every stage's result is stored under a key of what it
        depends on, so that an interrupted ``fit`` resumes and fits that
        differ only in later stages (another ``n_clusters``) reuse the earlier
        ones. Fits may share it. See :ref:`the-stage-cache`.
    features_dir : str, path or None, default=None
        A folder for N_pre's embeddings as a memory-mapped file, for data
        larger than memory; see :ref:`image-files-and-torch-datasets`.

    Attributes
    ----------
    extractor_ : torch.nn.Module
        The frozen extractor N_pre (images to features).
    network_ : torch.nn.Module
        The trained network N_cf: ``network_.features(x)`` its features,
        ``network_.head`` its cluster logits (``heads[i]`` for a list).
    labels_ : ndarray of shape (n_samples,)
        Cluster of each training image (-1: left unassigned by the clusterer).
    cluster_centers_ : ndarray of shape (n_clusters, n_dims)
        Mean of each cluster in the space that was clustered.
    n_clusters_ : int
        Number of non-empty clusters, i.e. of N_cf's (first head's) classes.
    clusterer_ : str or estimator
        The clustering that ran, as a ``clusterer`` value that repeats it.
    labels_all_, cluster_centers_all_, n_clusters_all_, clusterer_all_ : list
        The same for every clustering, one item per entry of ``n_clusters``
        (one for an int); images left unassigned by any are not trained on.
    architecture_ : str or callable
        The network built, with ``"auto"`` resolved.
    history_ : list of dict
        One record per training epoch: ``stage`` (the extractor name or
        ``"clusterfit"``), ``epoch``, ``loss``, ``accuracy`` and ``seconds``.
    image_shape_ : tuple of int
        Image shape ``(H, W, C)`` found in ``fit``.
    input_range_ : tuple of float
        Values mapped to [0, 1]: (0, 255) for uint8 data, else the data's range.
    n_features_in_ : int
        Number of values per image (``H * W * C``, also for files and Datasets).
    feature_names_in_ : ndarray of str
        Column names of ``X``, when it has string column names.

    Notes
    -----
    Torch computes in float32, so ``transform`` returns float32.

    ``fit`` called on every rank of a ``torch.distributed`` process group
    (a script launched by ``torchrun``) shares the work out between the ranks,
    which all end with the same fitted transformer; see :doc:`/scale`.

    References
    ----------
    X. Yan, I. Misra, A. Gupta, D. Ghadiyaram, D. Mahajan, "ClusterFit:
    Improving Generalization of Visual Representations", CVPR 2020.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> from skclusterfit import ClusterFitTransformer
    >>> X, y = load_digits(return_X_y=True)
    >>> cf = ClusterFitTransformer(n_clusters=10, max_epochs=1, extractor_epochs=1,
    ...                            random_state=0)
    >>> features = cf.fit_transform(X[:200])
    >>> features.shape
    (200, 448)
    >>> cf.n_clusters_
    10
    """

    _parameter_constraints: dict = {
        "n_clusters": [Interval(Integral, 1, None, closed="left"), list, tuple],
        "extractor": [str, callable],
        "extractor_weights": [str, os.PathLike, None],
        "extractor_epochs": [Interval(Integral, 1, None, closed="left")],
        "rotations_per_image": [Interval(Integral, 1, None, closed="left")],
        "clusterer": [StrOptions(set(CLUSTERERS)), HasMethods(["fit_predict"])],
        "pca_components": [Interval(Integral, 1, None, closed="left"), None],
        "l2_normalize": ["boolean"],
        "architecture": [str, callable],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "balanced_sampling": ["boolean"],
        "batch_size": [Interval(Integral, 2, None, closed="left"), StrOptions({"auto"})],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "lr_schedule": [StrOptions({"cosine", "constant"})],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "augmentation": [StrOptions({"strong", "light", "none"})],
        "precision": [StrOptions(set(PRECISIONS))],
        "image_shape": [StrOptions({"auto"}), tuple, list],
        "image_size": [Interval(Integral, 1, None, closed="left"), tuple, list, None],
        "num_workers": [Interval(Integral, 0, None, closed="left")],
        "feature_layer": [StrOptions(set(FEATURE_LAYERS))],
        "feature_stages": [Interval(Integral, 1, None, closed="left")],
        "device": [str],
        "n_jobs": [
            Interval(Integral, None, -1, closed="right"),
            Interval(Integral, 1, None, closed="left"),
            None,
        ],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "checkpoint_dir": [str, os.PathLike, None],
        "features_dir": [str, os.PathLike, None],
    }

    def __init__(
        self,
        n_clusters=100,
        *,
        extractor="rotnet",
        extractor_weights=None,
        extractor_epochs=10,
        rotations_per_image=2,
        clusterer="auto",
        pca_components=64,
        l2_normalize=True,
        architecture="auto",
        max_epochs=20,
        balanced_sampling=False,
        batch_size="auto",
        learning_rate=0.05,
        lr_schedule="cosine",
        weight_decay=5e-4,
        augmentation="strong",
        precision="auto",
        image_shape="auto",
        image_size=None,
        num_workers=0,
        feature_layer="features",
        feature_stages=3,
        device="auto",
        n_jobs=None,
        random_state=None,
        verbose=0,
        checkpoint_dir=None,
        features_dir=None,
    ):
        self.n_clusters = n_clusters
        self.extractor = extractor
        self.extractor_weights = extractor_weights
        self.extractor_epochs = extractor_epochs
        self.rotations_per_image = rotations_per_image
        self.clusterer = clusterer
        self.pca_components = pca_components
        self.l2_normalize = l2_normalize
        self.architecture = architecture
        self.max_epochs = max_epochs
        self.balanced_sampling = balanced_sampling
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.lr_schedule = lr_schedule
        self.weight_decay = weight_decay
        self.augmentation = augmentation
        self.precision = precision
        self.image_shape = image_shape
        self.image_size = image_size
        self.num_workers = num_workers
        self.feature_layer = feature_layer
        self.feature_stages = feature_stages
        self.device = device
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
        self.checkpoint_dir = checkpoint_dir
        self.features_dir = features_dir

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Run ClusterFit on the images ``X``.

        Parameters
        ----------
        X : array-like, sequence of paths or torch Dataset
            Images: an array, flat (see ``image_shape``) or N-D; image file
            paths; or a ``torch.utils.data.Dataset`` (see :ref:`input-images`).
        y : array-like of shape (n_samples,), default=None
            Labels, one per image; used only by ``extractor="supervised"``.

        Returns
        -------
        self : ClusterFitTransformer
            The fitted transformer.
        """
        previous = dict(vars(self))
        try:
            self._fit(X, y)
        except BaseException:
            # A failed fit leaves the estimator as it was: a model fitted before
            # keeps its networks *and* the input layout they expect.
            vars(self).clear()
            vars(self).update(previous)
            raise
        return self

    def _fit(self, X, y) -> None:
        """The stages in order: extract, embed and cluster, train N_cf."""
        source, labels = check_fit_inputs(self, X, y)
        device = resolve_device(self.device)
        # Drawn once, in this order, so that each stage's seed depends on
        # random_state alone, never on a later stage's parameters. Ranks of a
        # process group start from rank 0's (random_state=None draws others on each).
        seeds = check_random_state(self.random_state).randint(np.iinfo(np.int32).max, size=3)
        seeds = [int(seed) for seed in distributed.broadcast(seeds)]
        params = _stage_params(self.get_params(deep=False), source.shape, device)
        architecture = params["architecture"]
        pretext = pretext_outputs(self.extractor, source, labels, self.rotations_per_image)
        reporter = Reporter(self.verbose)
        warn_of_emulated_bfloat16(self.precision, device)
        with _FITTING, torch_threads(self.n_jobs):
            reporter.say(describe_fit(device, self.precision))
            cache = stage_cache(
                self.checkpoint_dir, params, source, labels, device=device, pretext_outputs=pretext
            )
            stats = source.channel_stats()
            with holding(cache, self.extractor), seeded(seeds[0], device):
                extractor, n_embedding, history = fit_extractor(
                    self.extractor,
                    weights=self.extractor_weights,
                    source=source,
                    labels=labels,
                    architecture=architecture,
                    stats=stats,
                    rotations_per_image=self.rotations_per_image,
                    config=make_config(params, epochs=self.extractor_epochs, device=device),
                    generator=torch.Generator().manual_seed(seeds[0]),
                    checkpoints=cache,
                    reporter=reporter,
                )
            reporter.say(f"extractor: {n_embedding} features per image")
            with holding(cache, "clustering"):
                clusterings = embed_and_cluster(
                    extractor,
                    source,
                    params,
                    device=device,
                    seed=seeds[1],
                    cache=cache,
                    reporter=reporter,
                )
            n_found = [clustering.n_clusters for clustering in clusterings]
            with holding(cache, "clusterfit"), seeded(seeds[2], device):
                # One head per clustering: one nn.Linear for one, a Heads module for several.
                network = build_network(architecture, source.shape, n_found, *stats)
                history += train(
                    network,
                    source,
                    class_ids([c.labels for c in clusterings], accuracy_of="pseudo-label"),
                    config=make_config(params, epochs=self.max_epochs, device=device),
                    generator=torch.Generator().manual_seed(seeds[2]),
                    stage="clusterfit",
                    checkpoints=cache,
                    reporter=reporter,
                )
        self.extractor_, self.network_ = extractor, network
        self.labels_all_ = [clustering.labels for clustering in clusterings]
        self.cluster_centers_all_ = [clustering.centers for clustering in clusterings]
        self.n_clusters_all_ = n_found
        self.clusterer_all_ = [clustering.method for clustering in clusterings]
        # The first clustering's, so that code written for an int n_clusters reads them.
        self.labels_, self.cluster_centers_ = self.labels_all_[0], self.cluster_centers_all_[0]
        self.n_clusters_, self.clusterer_ = n_found[0], self.clusterer_all_[0]
        self.architecture_ = architecture
        self.history_ = history
        self._extractor_n_features = n_embedding

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "network_")

    def predict(self, X):
        """The cluster of each image, by N_cf: the argmax of its cluster logits.

        The ids of ``labels_``, as ``KMeans.predict`` gives them for new
        images; for a list ``n_clusters``, by the first head.

        Parameters
        ----------
        X : array-like, sequence of paths or torch Dataset
            Images, as ``transform`` takes them.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Cluster ids in ``[0, n_clusters_)``, int64.
        """
        check_is_fitted(self)
        logits = self._infer(X, self.network_)
        # The first head's logits come first (the only ones for an int n_clusters).
        return logits[:, : self.n_clusters_].argmax(axis=1).astype(np.int64)

    def fit_predict(self, X, y=None):
        """``fit(X, y).predict(X)``: N_cf's clusters, which mostly agree with ``labels_``.

        Parameters and returned labels as in :meth:`fit` and :meth:`predict`.
        """
        return self.fit(X, y).predict(X)

    def transform(self, X):
        """Features of the images ``X``, by ``feature_layer``.

        Parameters
        ----------
        X : array-like, sequence of paths or torch Dataset
            Images as ``fit`` takes them, laid out, sized and coloured as there
            (files and Datasets are resized and converted).

        Returns
        -------
        features : ndarray of shape (n_samples, n_features_out)
            float32 features.
        """
        check_is_fitted(self)
        self._validate_params()
        with torch_threads(self.n_jobs):  # finding the stages runs the network once
            module = self._output_module()
        return self._infer(X, module)

    def _output_module(self) -> torch.nn.Module:
        """The module ``transform`` runs, by ``feature_layer`` and ``feature_stages``."""
        if self.feature_layer == "logits":
            return self.network_
        layers = self.feature_layer.split("+")
        parts = [self.extractor_ if x == "extractor" else Features(self.network_) for x in layers]
        return SideBySide([MultiScale(part, self._chw, self.feature_stages) for part in parts])

    @property
    def _chw(self) -> tuple[int, int, int]:
        """``image_shape_`` in the networks' order, (C, H, W)."""
        height, width, channels = self.image_shape_
        return channels, height, width

    def _infer(self, X, module) -> np.ndarray:
        """Outputs of ``module`` on the images ``X``, checked against the fitted layout."""
        source = check_images(self, X, reset=False)
        device = resolve_device(self.device)
        batch_size, _ = resolve_batch(self.batch_size, self.learning_rate, device, self._chw)
        with torch_threads(self.n_jobs):
            return infer(module, source, batch_size=batch_size, device=device)

    def save(self, path) -> None:
        """Save the fitted transformer to ``path`` in a format safe to load.

        The file holds only tensors, numbers and strings, so
        :func:`skclusterfit.load` never runs code from it, unlike pickle.
        Models with a user's module or function as ``extractor`` or
        ``architecture`` cannot be saved this way: pickle them instead.

        Parameters
        ----------
        path : str or path
            File to write (replaced atomically if it exists).
        """
        _persistence.save(self, path)

    @property
    def _n_features_out(self):
        """Width of ``transform``'s output (used by ``get_feature_names_out``)."""
        if not hasattr(self, "network_"):
            raise AttributeError("_n_features_out")
        if self.feature_layer == "logits":
            return self.network_.head.out_features
        if self.feature_stages == 1:
            width = {"features": self.network_.head.in_features}
            width["extractor"] = self._extractor_n_features
            return sum(width[name] for name in self.feature_layer.split("+"))
        return check_output(self._output_module(), self._chw, "transform")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    def __getstate__(self):
        return picklable(super().__getstate__())


def _stage_params(params: dict, image_shape: tuple[int, int, int], device: torch.device) -> dict:
    """An estimator's parameters as the stages see them: ``architecture``,
    ``batch_size`` and ``learning_rate`` as "auto" resolves them for images of
    ``image_shape`` (C, H, W) on ``device``, ``n_clusters`` a list."""
    batch_size, rate = resolve_batch(
        params["batch_size"], params["learning_rate"], device, image_shape
    )
    return {
        **params,
        "architecture": resolve_architecture(params["architecture"], image_shape, device),
        "batch_size": batch_size,
        "learning_rate": rate,
        "n_clusters": cluster_counts(params["n_clusters"]),
    }


def load(path) -> ClusterFitTransformer:
    """Load a transformer written by :meth:`ClusterFitTransformer.save`.

    Loading never runs code from the file: it holds only tensors, numbers and
    strings, read with ``torch.load(weights_only=True)``.

    Parameters
    ----------
    path : str or path
        The model file.

    Returns
    -------
    ClusterFitTransformer
        The fitted transformer; its ``transform`` gives the same output as the
        saved one's.

    Raises
    ------
    ValueError
        When the file is not a model file (a pickle, say), holds anything but
        plain data, is damaged, or was written by an unknown format version.
    OSError
        When the file cannot be read (missing, a folder, no permission), with
        the operating system's own message.

    Examples
    --------
    >>> import tempfile, os
    >>> import numpy as np
    >>> from sklearn.datasets import load_digits
    >>> import skclusterfit
    >>> X = load_digits().data[:100]
    >>> cf = skclusterfit.ClusterFitTransformer(n_clusters=5, max_epochs=1,
    ...                                         extractor_epochs=1, random_state=0).fit(X)
    >>> path = os.path.join(tempfile.mkdtemp(), "clusterfit.pt")
    >>> cf.save(path)
    >>> loaded = skclusterfit.load(path)
    >>> np.array_equal(cf.transform(X), loaded.transform(X))
    True
    """
    return _persistence.load(path, ClusterFitTransformer)
