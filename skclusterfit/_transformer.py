"""ClusterFitTransformer: the estimator that runs the stages in order."""

from __future__ import annotations

import contextlib
import copy
import functools
import itertools
import json
import os
import tempfile
from numbers import Integral, Real
from pathlib import Path

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
from ._checkpoints import Checkpoints, fingerprint
from ._clustering import CLUSTERERS, Clustering, cluster_each, entry_seed, plan
from ._devices import PRECISIONS, resolve_device, seeded, torch_threads
from ._extractors import fit_extractor
from ._inputs import check_fit_inputs, check_images, cluster_counts
from ._networks import Features, MultiScale, build_network, check_output, resolve_architecture
from ._reporting import Reporter
from ._targets import class_ids
from ._training import infer, make_config, train

FEATURE_LAYERS = ("features", "logits", "extractor")


class ClusterFitTransformer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """Features learned by ClusterFit: cluster a network's embeddings, retrain on the clusters.

    ``fit`` runs the whole of ClusterFit (Yan et al., CVPR 2020) on the images
    ``X``:

    1. an extractor network N_pre embeds every image (by default a network
       trained on ``X`` itself to predict image rotations);
    2. the embeddings are L2-normalised (optionally PCA-whitened first) and
       clustered by k-means into ``n_clusters`` groups;
    3. a new network N_cf, trained from scratch, learns to predict each image's
       cluster.

    ``transform`` returns N_cf's pooled penultimate features, computed in
    batches.

    ``X`` may be an array of images, a sequence of image file paths or a
    ``torch.utils.data.Dataset`` of images; files and Datasets are decoded a
    batch at a time, so they need not fit in memory (see ``image_size``,
    ``num_workers`` and ``features_dir``).

    Parameters
    ----------
    n_clusters : int or list of int, default=100
        Number of clusters, i.e. of classes N_cf is trained on. One is
        accepted, as by ``KMeans``, with a warning: a single class gives N_cf
        nothing to learn, so its features are those of an untrained network.

        A non-empty list or tuple of ints, such as ``[100, 500]``, asks for
        several clusterings at once, as SeLa and SwAV train on several
        partitions (this goes beyond the paper): the embeddings, whitened and
        normalised once, are clustered once per entry, each as an int of its
        value would be (``"auto"`` chooses per entry) but with a seed of its
        own, derived from ``random_state`` and its position (the first
        entry's is the int's). N_cf gets one linear head per entry on its
        features and is trained on the sum of the heads' cross-entropy
        losses. ``labels_``, ``cluster_centers_``, ``n_clusters_``,
        ``clusterer_`` and ``predict`` keep to the first entry; the ``*_all_``
        attributes hold every entry's. A list of one entry fits as its int
        does. A factory ``architecture`` is called with the number of all
        the heads' outputs together, whose rows are then shared out.
    extractor : str, nn.Module or callable, default="rotnet"
        The network N_pre whose embeddings are clustered:

        - ``"rotnet"``: trained on ``X`` for ``extractor_epochs`` epochs to
          predict whether each image was turned by 0, 90, 180 or 270 degrees
          (0 or 180 for non-square images); needs no external weights.
        - ``"supervised"``: trained on the labels ``y`` passed to ``fit``.
        - ``"random"``: a randomly initialised, untrained network (a control).
        - a torchvision model name such as ``"mobilenet_v2"``: ImageNet
          weights read from the local torch cache (see ``extractor_weights``);
          small images are upsampled to 64 pixels a side.
        - an ``nn.Module`` (a frozen copy is used) or a callable; either gets
          float32 image batches ``(N, C, H, W)`` scaled to [0, 1] and returns
          features ``(N, d)``.
    extractor_weights : str, path or None, default=None
        For a torchvision ``extractor``: the name of its weights (e.g.
        ``"IMAGENET1K_V1"``; ``None`` is the model's default), looked up in
        ``$TORCH_HOME/hub/checkpoints``, or the path of a state-dict file.
        Nothing is ever downloaded: a missing file raises ``FileNotFoundError``
        naming the file and the folder.
    image_shape : "auto" or tuple, default="auto"
        Shape ``(H, W)`` or ``(H, W, C)`` of the images flattened in the rows
        of a 2-D ``X`` (in the order numpy's ``reshape`` gives). ``"auto"``
        reads a square grey image when ``n_features`` is a perfect square, and
        otherwise a ``1 x n_features`` signal; rows of ``3 * s * s`` values
        (``s`` of 8 or more, 3072 for 32x32) look like colour images, so
        ``"auto"`` warns that they are read as signals and names the
        ``image_shape`` to pass; rows of ``4 * s * s`` values are read as
        grey images, with a warning where every fourth value is the same in
        every image, as a flattened RGBA image's alpha is. N-D inputs
        ``(n, H, W)``, ``(n, H, W, C)`` and ``(n, C, H, W)`` carry their own
        shape (a warning points out
        ``(n, s * s, 3)``, read as grey ``s*s x 3`` images); image files and
        Datasets too (see ``image_size``).
    image_size : int, (height, width) or None, default=None
        For image files and Datasets: the size every image is resized to
        (bilinear) in ``fit``; ``None`` is the size of the first image. The
        first image also sets the colour mode: grey when it is grey (PIL modes
        "1", "L", "I", "F" and their variants, or one channel), else RGB, and
        every image is converted to that mode (alpha is dropped); 16-bit
        images (modes "I;16", "I") are read as 0-65535 and float ones ("F")
        must lie in [0, 1]. ``transform``
        resizes and converts every image to the size and mode found in ``fit``,
        so a model fitted on arrays transforms files of any size. Arrays are
        never resized: an ``image_size`` that differs from an array's images
        raises ``ValueError``.
    architecture : str or callable, default="auto"
        The network trained for N_cf (and for trained extractors):
        ``"cnn"``, a compact four-block CNN; ``"resnet18_small"``, ResNet-18
        with a stride-1 stem and no max-pool; ``"auto"``, ``"resnet18_small"``
        on a CUDA GPU for images 32 pixels high or wide or more, and ``"cnn"``
        otherwise (on the CPU the compact CNN was many times faster on 32x32
        colour images and its features better, see the Benchmarks page;
        ``architecture_`` says which was built); any torchvision model name,
        untrained; or a factory ``f(n_outputs) -> nn.Module`` whose last
        ``nn.Linear`` gives the ``n_outputs`` logits.
    clusterer : str or estimator, default="auto"
        ``"kmeans"`` (scikit-learn's KMeans, k-means++ initialisation),
        ``"minibatch"`` (MiniBatchKMeans), ``"faiss"`` (needs the ``faiss``
        extra; trained on at most 256 images per cluster drawn at random, as
        faiss and VISSL do by default, then every image is assigned to its
        nearest centre; ``verbose=1`` prints how many) or ``"auto"``, the
        fastest method whose inertia came within 2% of the best in the
        package's clustering benchmark: KMeans with k-means++
        for fewer than 20 images per cluster, ``"faiss"`` for more than 256
        images per cluster when faiss is installed (so installing it changes
        the clusters of large fits), else KMeans from random centres
        (``clusterer_`` says which ran). Any scikit-learn clusterer (an
        estimator with ``fit_predict``) may be given instead; a clone is
        fitted, with its ``n_clusters`` and ``random_state`` set where it has
        them.
    pca_components : int or None, default=64
        PCA-whiten the features to this many components (at most the number
        of features, and of images less one) before clustering, as DeepCluster does;
        None clusters the features as they are. PCA is fitted on at most
        50,000 images drawn at random. 64 gave better few-shot and 20-NN
        probes than None on several targets and no worse linear probes
        (``benchmarks/bench_features.py``).
    l2_normalize : bool, default=True
        L2-normalise the features before clustering.
    max_epochs : int, default=20
        Training epochs of N_cf.
    extractor_epochs : int, default=10
        Training epochs of a trained extractor (``"rotnet"``, ``"supervised"``).
    rotations_per_image : int, default=2
        For ``extractor="rotnet"``: at how many of its four rotations each
        image is shown per epoch, drawn at random. 4 shows every image at
        every rotation, as RotNet was first trained; fewer make an epoch
        proportionally cheaper. 2 halves RotNet's time and kept every probe of
        the rotations benchmark within the seed spread of 4; 1 lost on some
        (see the Benchmarks page). Non-square images have only 2 rotations.
    batch_size : int, default=128
        Images per training step (each shown at ``rotations_per_image``
        rotations for ``"rotnet"``) and per inference batch; per process when
        ``fit`` runs under ``torch.distributed`` (see Notes).
    learning_rate : float, default=0.05
        Peak learning rate of SGD with Nesterov momentum 0.9.
    lr_schedule : {"cosine", "constant"}, default="cosine"
        ``"cosine"``: one epoch of linear warm-up, then cosine decay to zero.
    weight_decay : float, default=5e-4
        L2 penalty of the optimiser.
    augmentation : {"strong", "light", "none"}, default="strong"
        Augmentation of training batches: ``"strong"`` is random resized crops
        (50-100% of the area), horizontal flips and brightness/contrast changes;
        ``"light"`` is shifts of up to 1/8 of the image and flips.
    balanced_sampling : bool, default=False
        Draw N_cf's training images uniformly over clusters (as DeepCluster
        does) instead of uniformly over images.
    feature_layer : {"features", "logits", "extractor"}, default="features"
        What ``transform`` returns: N_cf's pooled penultimate features, N_cf's
        cluster logits (for a list ``n_clusters``, every head's side by side,
        ``sum(n_clusters_all_)`` of them), or the extractor N_pre's features
        (for comparison). It may be changed after ``fit``.
    feature_stages : int, default=3
        With ``feature_layer="features"`` or ``"extractor"``, how many of the
        network's stages ``transform`` returns features from, counting the
        last: each earlier stage's output averaged over space, in order of
        depth, then the usual pooled features. A stage is a run of layers
        working at one spatial size (the compact CNN's blocks, a ResNet's
        layer groups): 3 gives the compact CNN's 64 + 128 + 256 values on
        28x28 images, 1 the pooled last stage alone (256). A network with
        fewer stages gives all it has (a function as extractor: its output).
        3 gave better linear and 10-shot probes than 1 on every target, for
        N_cf and for N_pre (``benchmarks/bench_features.py``). Ignored for
        ``"logits"``; may be changed after ``fit``.
    device : str, default="auto"
        Torch device; ``"auto"`` uses CUDA when available.
    precision : {"auto", "float32", "bfloat16"}, default="auto"
        Number format of the networks' forward pass while they train:
        ``"bfloat16"`` runs it under ``torch.autocast`` in bfloat16 (weights,
        gradients, the loss, augmentation and every feature ``fit`` and
        ``transform`` compute stay float32); ``"auto"`` does so where the
        hardware computes bfloat16 natively (CUDA GPUs of compute capability
        8.0 or more, CPUs with AMX or AVX512-BF16) and uses float32 elsewhere.
    n_jobs : int or None, default=None
        Number of CPU threads torch uses during ``fit`` and ``transform``
        (negative values count back from the number of cores, as in joblib).
        ``None`` leaves torch's own setting, which uses every core.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, sampling, augmentation and clustering. On the CPU
        the same seed gives the same features, bit for bit.
    verbose : int, default=0
        0 prints nothing; 1 prints a line per stage with its time, and a
        progress bar per stage with its rate, time left and, when training,
        each epoch's loss and accuracy (tqdm's bar when installed, else a
        line per epoch). Only the main process of a distributed fit prints.
    checkpoint_dir : str, path or None, default=None
        Folder where the state of every stage is saved after each epoch. A
        ``fit`` interrupted at any point (even killed) and run again with the
        same data, parameters and ``checkpoint_dir`` resumes from the last
        finished epoch, and on the CPU ends with the same features as an
        uninterrupted fit. Checkpoints of another fit, or damaged ones, are
        refused with an error: a fit is known by its images, its parameters
        (an ``nn.Module`` extractor, or a method of one such as a fitted
        ``network_.features``, by its class and weights; an ``architecture``
        factory by the network it builds) and, for ``extractor="supervised"``,
        its labels. A plain function or lambda is known only by its name, so a
        fit with one as a parameter refuses ``checkpoint_dir``. Files are kept
        after the fit; delete the folder to start afresh. Under
        ``torch.distributed`` only rank 0 reads and writes them.
    num_workers : int, default=0
        Worker processes of the ``torch.utils.data.DataLoader`` that decodes
        image files and Datasets (0 decodes in the main process). A Dataset
        must then be picklable. Arrays ignore it.
    features_dir : str, path or None, default=None
        Folder for N_pre's features (``n_samples x d`` float32, the only
        per-image array of ``fit``), so that very many images need not fit in
        memory: they are written batch by batch to a memory-mapped file in a
        temporary subfolder, removed at the end of ``fit``. Clustering then
        reads them a chunk at a time: PCA is fitted on a sample, the
        features are normalised in place (whitened ones go to a second mapped
        file), ``"faiss"`` trains on a sample and assigns in chunks, and the
        k-means clusterers read their batches from the mapped file (other
        scikit-learn clusterers get the mapped array and may load it). The
        clusters are the same as without it. ``None`` keeps the features in
        memory, where they are likewise normalised without a copy. Under
        ``torch.distributed`` the ranks' features are gathered in rank 0's
        memory, the only rank that clusters; only whitened features go to the
        folder.

    Attributes
    ----------
    extractor_ : torch.nn.Module
        The frozen extractor N_pre (images to features).
    network_ : torch.nn.Module
        The trained network N_cf; ``network_.features(x)`` gives its features
        and ``network_.head`` its cluster logits: an ``nn.Linear``, or for a
        list ``n_clusters`` a module whose ``heads[i]`` is entry ``i``'s.
    labels_ : ndarray of shape (n_samples,)
        Pseudo-label of each training image (-1 where the clusterer left it
        unassigned); for a list ``n_clusters``, of the first clustering.
    cluster_centers_ : ndarray of shape (n_found_clusters, n_dims)
        Mean of each cluster (``n_clusters_`` of them), in the space that was
        clustered; for a list ``n_clusters``, of the first clustering.
    n_clusters_ : int
        Number of non-empty clusters, i.e. of N_cf's classes; for a list
        ``n_clusters``, of the first clustering (its first head's classes).
    clusterer_ : str or estimator
        The clustering that ran, as a value the ``clusterer`` parameter
        accepts: ``"faiss"``, or an unfitted scikit-learn clusterer with the
        settings it ran with (for ``"auto"`` and ``"kmeans"``, a ``KMeans``
        showing its initialisation and seed); for a list ``n_clusters``, the
        first clustering's.
    labels_all_ : list of ndarray of shape (n_samples,)
        Pseudo-labels of every clustering, one per entry of ``n_clusters``
        (one for an int); ``labels_all_[0]`` is ``labels_``. Images left
        unassigned by any clustering are not trained on.
    cluster_centers_all_ : list of ndarray
        ``cluster_centers_`` of every clustering, in the same order.
    n_clusters_all_ : list of int
        ``n_clusters_`` of every clustering, in the same order: the widths of
        N_cf's heads.
    clusterer_all_ : list of str or estimator
        ``clusterer_`` of every clustering, in the same order.
    architecture_ : str or callable
        The network built for N_cf (and a trained extractor): the
        ``architecture`` parameter, with ``"auto"`` resolved to ``"cnn"`` or
        ``"resnet18_small"``.
    history_ : list of dict
        One record per training epoch with keys ``stage`` (the extractor name or
        ``"clusterfit"``), ``epoch``, ``loss``, ``accuracy`` and ``seconds``.
        For a list ``n_clusters``, N_cf's ``loss`` is the sum of its heads'
        and its ``accuracy`` the first head's.
    image_shape_ : tuple of int
        Image shape ``(H, W, C)`` found in ``fit``.
    input_range_ : tuple of float
        Values mapped to [0, 1]: (0, 255) for uint8 data, else the data's range.
    n_features_in_ : int
        Number of values per image (``H * W * C``, also for files and Datasets).
    feature_names_in_ : ndarray of str
        Column names of ``X``, when it has string column names.

    See Also
    --------
    sklearn.cluster.KMeans : The default clusterer.

    Notes
    -----
    Torch computes in float32, so ``transform`` returns float32.

    ``fit`` called on every rank of an initialised ``torch.distributed``
    process group of several processes (a script launched by ``torchrun``)
    shares the work out: each rank embeds a block of the images and trains on
    its share of every epoch, with ``batch_size`` images per step and
    gradients averaged by ``DistributedDataParallel``; rank 0 clusters and
    sends the pseudo-labels to the others, and only rank 0 prints. Every rank
    ends with the same fitted transformer, plain and picklable. The package
    never initialises a process group itself, and ``transform`` always runs
    in the calling process alone. The ranks must get the same ``X`` and
    parameters. On GPUs each rank uses the current CUDA device (set it with
    ``torch.cuda.set_device``) when ``device`` is ``"auto"`` or ``"cuda"``.

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
        "image_shape": [StrOptions({"auto"}), tuple, list],
        "architecture": [str, callable],
        "clusterer": [StrOptions(set(CLUSTERERS)), HasMethods(["fit_predict"])],
        "pca_components": [Interval(Integral, 1, None, closed="left"), None],
        "l2_normalize": ["boolean"],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "extractor_epochs": [Interval(Integral, 1, None, closed="left")],
        "rotations_per_image": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 2, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "lr_schedule": [StrOptions({"cosine", "constant"})],
        "weight_decay": [Interval(Real, 0, None, closed="left")],
        "augmentation": [StrOptions({"strong", "light", "none"})],
        "balanced_sampling": ["boolean"],
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
        "image_size": [Interval(Integral, 1, None, closed="left"), tuple, list, None],
        "num_workers": [Interval(Integral, 0, None, closed="left")],
        "features_dir": [str, os.PathLike, None],
        "precision": [StrOptions(set(PRECISIONS))],
    }

    def __init__(
        self,
        n_clusters=100,
        *,
        extractor="rotnet",
        extractor_weights=None,
        image_shape="auto",
        architecture="auto",
        clusterer="auto",
        pca_components=64,
        l2_normalize=True,
        max_epochs=20,
        extractor_epochs=10,
        rotations_per_image=2,
        batch_size=128,
        learning_rate=0.05,
        lr_schedule="cosine",
        weight_decay=5e-4,
        augmentation="strong",
        balanced_sampling=False,
        feature_layer="features",
        feature_stages=3,
        device="auto",
        precision="auto",
        n_jobs=None,
        random_state=None,
        verbose=0,
        checkpoint_dir=None,
        image_size=None,
        num_workers=0,
        features_dir=None,
    ):
        self.n_clusters = n_clusters
        self.extractor = extractor
        self.extractor_weights = extractor_weights
        self.image_shape = image_shape
        self.architecture = architecture
        self.clusterer = clusterer
        self.pca_components = pca_components
        self.l2_normalize = l2_normalize
        self.max_epochs = max_epochs
        self.extractor_epochs = extractor_epochs
        self.rotations_per_image = rotations_per_image
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.lr_schedule = lr_schedule
        self.weight_decay = weight_decay
        self.augmentation = augmentation
        self.balanced_sampling = balanced_sampling
        self.feature_layer = feature_layer
        self.feature_stages = feature_stages
        self.device = device
        self.precision = precision
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
        self.checkpoint_dir = checkpoint_dir
        self.image_size = image_size
        self.num_workers = num_workers
        self.features_dir = features_dir

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Run ClusterFit on the images ``X``.

        Parameters
        ----------
        X : array-like, sequence of paths or torch Dataset
            Images: an array, flat ``(n_samples, n_features)`` (see
            ``image_shape``) or N-D, of any real dtype; a list, tuple or 1-D
            array of image file paths (str or ``pathlib.Path``) that PIL can
            read; or a ``torch.utils.data.Dataset`` whose items are PIL images,
            ``(H, W)`` or ``(H, W, C)`` arrays, or ``(C, H, W)`` tensors, uint8
            (0-255) or float (in [0, 1]), or tuples whose first element is one
            of these, such as torchvision's ``(image, label)``. Files and
            Datasets are read in batches (see ``image_size``). The data are
            converted to float32 one batch at a time.
        y : array-like of shape (n_samples,), default=None
            Labels; used only by ``extractor="supervised"``, which needs one
            for every image (NaN, None or pandas.NA are refused).

        Returns
        -------
        self : ClusterFitTransformer
            The fitted transformer.
        """
        previous = self._learned_state()
        try:
            self._fit(X, y)
        except BaseException:
            # A failed fit leaves the estimator as it was: a model fitted before
            # keeps its networks *and* the input layout they expect.
            self._set_learned_state(previous)
            raise
        return self

    def _fit(self, X, y) -> None:
        """The three stages, each saved by ``checkpoint_dir`` when one is given."""
        source, labels = check_fit_inputs(self, X, y)
        device = resolve_device(self.device)
        seeds = check_random_state(self.random_state).randint(np.iinfo(np.int32).max, size=3)
        # Ranks of a process group start from rank 0's seeds (random_state=None
        # draws others on each) and only rank 0 writes checkpoints.
        seeds = [int(seed) for seed in distributed.broadcast(seeds)]
        architecture = resolve_architecture(self.architecture, source.shape, device)
        counts = cluster_counts(self.n_clusters)
        # The network "auto" chose is what a checkpoint must match, on any device.
        params = {**self.get_params(deep=False), "architecture": architecture}
        if not isinstance(self.n_clusters, Integral):
            params["n_clusters"] = counts  # a list or tuple of any ints, as plain ints
        checkpoints = None
        if self.checkpoint_dir is not None and distributed.is_main():
            digest = fingerprint(params, source, labels)
            built = architecture if isinstance(architecture, str) else ""
            checkpoints = Checkpoints(self.checkpoint_dir, digest, built)
        stats = source.channel_stats()
        reporter = Reporter(self.verbose)
        with torch_threads(self.n_jobs):
            with seeded(seeds[0], device):
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
                    checkpoints=checkpoints,
                    reporter=reporter,
                )
            self._say(f"extractor: {n_embedding} features per image")
            clusterings = self._clustering_stage(
                extractor, source, counts, device=device, seed=seeds[1], checkpoints=checkpoints
            )
            with seeded(seeds[2], device):
                # One head per clustering: one nn.Linear for one, a Heads module for several.
                n_found = [clustering.n_clusters for clustering in clusterings]
                network = build_network(architecture, source.shape, n_found, *stats)
                history += train(
                    network,
                    source,
                    class_ids([c.labels for c in clusterings], accuracy_of="pseudo-label"),
                    config=make_config(params, epochs=self.max_epochs, device=device),
                    generator=torch.Generator().manual_seed(seeds[2]),
                    stage="clusterfit",
                    checkpoints=checkpoints,
                    reporter=reporter,
                )
        self.extractor_ = extractor
        self.network_ = network
        self.labels_all_ = [clustering.labels for clustering in clusterings]
        self.cluster_centers_all_ = [clustering.centers for clustering in clusterings]
        self.n_clusters_all_ = n_found
        self.clusterer_all_ = [clustering.method for clustering in clusterings]
        # The first clustering's, so that code written for an int n_clusters reads them.
        self.labels_ = self.labels_all_[0]
        self.cluster_centers_ = self.cluster_centers_all_[0]
        self.n_clusters_ = self.n_clusters_all_[0]
        self.clusterer_ = self.clusterer_all_[0]
        self.architecture_ = architecture
        self.history_ = history
        self._extractor_n_features = n_embedding

    def _clustering_stage(
        self, extractor, source, counts: list[int], *, device, seed: int, checkpoints
    ) -> list[Clustering]:
        """Stage 2: embed and cluster once per entry of ``counts``, or restore the clusters.

        A restored clustering skips the embedding too. Under ``torch.distributed``
        every rank embeds its block, rank 0 gathers the blocks and clusters, and
        every rank gets every clustering.
        """
        saved = distributed.run_on_main(lambda: checkpoints and checkpoints.load("clustering"))
        if saved is not None:
            clusterings = []
            entries = [saved, *saved.get("more", [])]
            for position, (count, entry) in enumerate(zip(counts, entries, strict=True)):
                method = plan(self.clusterer, len(source), count, entry_seed(seed, position))
                if entry.get("method"):  # as it ran, whatever is installed now
                    method = _persistence.decode("clusterer_", json.loads(entry["method"]))
                labels, centers = entry["labels"].numpy(), entry["centers"].numpy()
                clusterings.append(Clustering(labels, centers, method, 0.0))
            found = ", ".join(str(clustering.n_clusters) for clustering in clusterings)
            self._say(f"clustering: {found} clusters restored from checkpoint")
            return clusterings
        with self._scratch_folder() as scratch:
            embeddings = infer(
                extractor,
                source,
                batch_size=self.batch_size,
                device=device,
                shard=True,
                out_file=None if scratch is None else scratch / "embeddings.npy",
                reporter=Reporter(self.verbose),
            )
            # Rank 0 hands every clustering (labels, centres, method) to every rank.
            clusterings = distributed.run_on_main(
                functools.partial(
                    self._cluster,
                    embeddings,
                    counts,
                    seed=seed,
                    folder=scratch,
                    checkpoints=checkpoints,
                )
            )
            del embeddings  # the clusters are all that later stages need
        for clustering in clusterings:
            fitted_on = ""
            if clustering.n_fitted is not None and clustering.n_fitted < len(clustering.labels):
                fitted_on = f", fitted on {clustering.n_fitted} of {len(clustering.labels)} images"
            self._say(
                f"clustering: {clustering.method} found {clustering.n_clusters} clusters "
                f"in {clustering.seconds:.1f}s{fitted_on}"
            )
        return clusterings

    def _cluster(
        self, embeddings, counts: list[int], *, seed: int, folder, checkpoints
    ) -> list[Clustering]:
        """Cluster the embeddings once per entry (rank 0 alone) and checkpoint the result."""
        clusterings = cluster_each(
            embeddings,
            n_clusters=counts,
            clusterer=self.clusterer,
            pca_components=self.pca_components,
            l2_normalize=self.l2_normalize,
            seed=seed,
            folder=folder,
            owned=True,
        )
        if checkpoints is not None:
            records = []
            for clustering in clusterings:
                try:
                    method = json.dumps(_persistence.encode("clusterer_", clustering.method))
                except TypeError:  # a clusterer that is not scikit-learn's: planned again
                    method = ""
                records.append(
                    {
                        "labels": torch.from_numpy(clustering.labels),
                        "centers": torch.from_numpy(clustering.centers),
                        "method": method,
                    }
                )
            # The first clustering where a fit with an int n_clusters keeps its only one.
            checkpoints.save("clustering", {**records[0], "more": records[1:]})
        return clusterings

    def _learned_state(self) -> dict:
        """Every attribute ``fit`` sets (trailing underscore, or private and fitted)."""
        return {
            name: value
            for name, value in vars(self).items()
            if (name.endswith("_") and not name.startswith("__")) or name == "_extractor_n_features"
        }

    def _set_learned_state(self, state: dict) -> None:
        for name in self._learned_state():
            delattr(self, name)
        for name, value in state.items():
            setattr(self, name, value)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "network_")

    def predict(self, X):
        """The cluster of each image, by N_cf: the argmax of its cluster logits.

        Groups new images into the ``n_clusters_`` clusters N_cf was trained
        to recognise (the ids of ``labels_``), as ``KMeans.predict`` does with
        its centres. For a list ``n_clusters``, by the first head.

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
        """Fit on ``X``, then return N_cf's cluster of each of its images.

        The same as ``fit(X, y).predict(X)``. These are N_cf's clusters; the
        k-means clusters it was trained on are ``labels_``, which they
        mostly agree with.

        Parameters
        ----------
        X : array-like, sequence of paths or torch Dataset
            Images, as ``fit`` takes them.
        y : array-like of shape (n_samples,), default=None
            Labels; used only by ``extractor="supervised"``.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Cluster ids in ``[0, n_clusters_)``, int64.
        """
        return self.fit(X, y).predict(X)

    def transform(self, X):
        """Features of the images ``X``, by ``feature_layer``.

        Parameters
        ----------
        X : array-like, sequence of paths or torch Dataset
            Images laid out as in ``fit``, or image files or a Dataset as
            ``fit`` takes them, resized and converted to the image size and
            colour mode found in ``fit``.

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
        module = Features(self.network_) if self.feature_layer == "features" else self.extractor_
        return MultiScale(module, self._chw, self.feature_stages)

    @property
    def _chw(self) -> tuple[int, int, int]:
        """``image_shape_`` in the networks' order, (C, H, W)."""
        height, width, channels = self.image_shape_
        return channels, height, width

    def _infer(self, X, module) -> np.ndarray:
        """Outputs of ``module`` on the images ``X``, checked against the fitted layout."""
        source = check_images(self, X, reset=False)
        with torch_threads(self.n_jobs):
            return infer(
                module, source, batch_size=self.batch_size, device=resolve_device(self.device)
            )

    def save(self, path) -> None:
        """Save the fitted transformer to ``path`` in a format safe to load.

        The file holds only tensors, numbers and strings (weights, fitted
        arrays, parameters as JSON and the package version), so
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
        if self.feature_stages == 1 or self.feature_layer == "logits":
            return {
                "features": self.network_.head.in_features,
                "logits": self.network_.head.out_features,
                "extractor": self._extractor_n_features,
            }[self.feature_layer]
        return check_output(self._output_module(), self._chw, "transform")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    def __getstate__(self):
        # Networks fitted on a GPU are pickled from CPU copies, so the pickle
        # loads on machines without one.
        state = super().__getstate__()
        for key in ("extractor_", "network_"):
            module = state.get(key)
            if isinstance(module, torch.nn.Module) and any(
                t.device.type != "cpu"
                for t in itertools.chain(module.parameters(), module.buffers())
            ):
                state[key] = copy.deepcopy(module).to("cpu")
        return state

    @contextlib.contextmanager
    def _scratch_folder(self):
        """A temporary subfolder of ``features_dir`` (None without one), removed after.

        A subfolder of its own keeps fits that share ``features_dir`` (in a
        parallel grid search, say) from writing over each other's files.
        """
        if self.features_dir is None:
            yield None
            return
        Path(self.features_dir).mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.features_dir, prefix="skclusterfit-") as path:
            yield Path(path)

    def _say(self, message: str) -> None:
        Reporter(self.verbose).say(message)


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
