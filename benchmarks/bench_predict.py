"""Grouping new images: ``predict`` against k-means on pixels and on N_pre's features.

D_cf is the first 5,000 Fashion-MNIST training images (all ten classes, no
labels); ClusterFit is fitted with ``n_clusters=10``, as many clusters as
classes, and package defaults otherwise. The 10,000 Fashion-MNIST test images,
never seen in fitting, are then grouped four ways:

- ``predict``: N_cf's cluster of each image (the argmax of its logits);
- k-means (10 clusters, k-means++, 10 starts) fitted on D_cf's raw pixels,
  then each test image's nearest centre;
- the same on RotNet N_pre's L2-normalised features (the clusters N_cf was
  trained on come from these, on D_cf);
- the same on N_cf's own L2-normalised features.

Scores against the true classes: cluster accuracy (best one-to-one matching of
clusters to classes) and normalised mutual information.

Usage::

    python benchmarks/bench_predict.py           # 3 seeds, about 10 minutes
    python benchmarks/bench_predict.py --quick   # 1 seed, 1,000 images, 1 epoch
"""

from __future__ import annotations

import _common as common
from sklearn.cluster import KMeans
from sklearn.preprocessing import normalize

from skclusterfit import ClusterFitTransformer
from skclusterfit.datasets import load_fashion_mnist
from skclusterfit.metrics import cluster_accuracy, normalized_mutual_info_score


def groupings(X, X_test, seed, epochs) -> dict:
    """Method -> cluster ids of the test images."""
    model = ClusterFitTransformer(n_clusters=10, random_state=seed, **epochs).fit(X)

    def kmeans(train, test):
        return KMeans(10, n_init=10, random_state=seed).fit(train).predict(test)

    def features(layer, images):
        return normalize(model.set_params(feature_layer=layer).transform(images))

    return {
        "ClusterFit predict (N_cf)": model.predict(X_test),
        "k-means on raw pixels": kmeans(X / 255.0, X_test / 255.0),
        "k-means on N_pre (RotNet) features": kmeans(
            features("extractor", X), features("extractor", X_test)
        ),
        "k-means on N_cf features": kmeans(features("features", X), features("features", X_test)),
    }


def main():
    quick = common.arguments(__doc__).parse_args().quick
    n, seeds, epochs = (
        (1_000, [0], {"extractor_epochs": 1, "max_epochs": 1}) if quick else (5_000, [0, 1, 2], {})
    )
    train, test = load_fashion_mnist("train"), load_fashion_mnist("test")
    X, X_test, y_test = train.data[:n], test.data, test.target
    if quick:
        X_test, y_test = X_test[:1000], y_test[:1000]
    scores: dict = {}
    for seed in seeds:
        for method, labels in groupings(X, X_test, seed, epochs).items():
            row = scores.setdefault(method, {"cluster accuracy": [], "NMI": []})
            row["cluster accuracy"].append(round(cluster_accuracy(y_test, labels), 4))
            row["NMI"].append(round(normalized_mutual_info_score(y_test, labels), 4))
            print(seed, method, {k: v[-1] for k, v in row.items()}, flush=True)
        fields = {"n_images": n, "seeds": seeds[: seeds.index(seed) + 1], "scores": scores}
        common.save("predict", quick, fields, markdown)


def markdown(record):
    lines = common.markdown_header("Grouping unseen images: predict against k-means", record)
    lines += [
        f"Fitted on the first {record['n_images']} Fashion-MNIST training images (10 "
        f"clusters, no labels); scored on the test images against their classes. Seeds "
        f"{record['seeds']}; mean (min-max over seeds).",
        "",
    ]
    rows = [
        [method, *(common.spread(values) for values in row.values())]
        for method, row in record["scores"].items()
    ]
    lines += common.markdown_table(["method", "cluster accuracy", "NMI"], rows)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
