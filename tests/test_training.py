import numpy as np
import torch

from skclusterfit import ClusterFitTransformer
from skclusterfit._inputs import check_images
from skclusterfit._networks import build_network
from skclusterfit._targets import ClassProbabilities
from skclusterfit._training import make_config, train


def test_soft_targets_are_learned(small_digits):
    # Class probabilities (as in distillation) train like labels: the network
    # ends up predicting the most probable class of most training images.
    X, y = small_digits
    model = ClusterFitTransformer(extractor="random", n_clusters=10, max_epochs=1).fit(X)
    source = check_images(model, X, reset=False)
    soft = np.full((len(y), 10), 0.02, dtype=np.float32)
    soft[np.arange(len(y)), y] = 0.82
    torch.manual_seed(0)
    network = build_network("cnn", source.shape, 10, *source.channel_stats())
    params = model.set_params(augmentation="none").get_params()
    history = train(
        network,
        source,
        ClassProbabilities(soft),
        config=make_config(params, epochs=8, device=torch.device("cpu")),
        generator=torch.Generator().manual_seed(0),
        stage="distillation",
    )
    assert history[-1]["loss"] < 0.8 * history[0]["loss"]
    assert history[-1]["accuracy"] > 0.8
