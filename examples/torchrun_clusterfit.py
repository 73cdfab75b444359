"""ClusterFit on several processes, GPUs or machines, launched by ``torchrun``.

Every process (rank) runs this script on the same data; ``fit`` shares the work
out between them (see the "Scaling up" page of the documentation). On one
machine with four GPUs::

    torchrun --standalone --nproc_per_node=4 examples/torchrun_clusterfit.py \\
        --data fashion-mnist --n-clusters 100 --output clusterfit.pt

On two machines with four GPUs each, run on both (``--node_rank=1`` on the
second), with the address of the first::

    torchrun --nnodes=2 --node_rank=0 --nproc_per_node=4 \\
        --master_addr=10.0.0.1 --master_port=29500 \\
        examples/torchrun_clusterfit.py --data fashion-mnist --n-clusters 100

Without GPUs the ranks talk over gloo on the CPU (``--nproc_per_node=2`` on a
laptop works). Rank 0 saves the fitted transformer to ``--output``; load it in
any single process with ``skclusterfit.load``. Several numbers after
``--n-clusters`` (``--n-clusters 100 500``) cluster once per number and train
N_cf with one head per clustering.
"""

import argparse
import datetime
import os
import pickle
from pathlib import Path

import torch
import torch.distributed as dist

from skclusterfit import ClusterFitTransformer, datasets


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=["digits", "fashion-mnist"], default="digits")
    parser.add_argument(
        "--n-clusters",
        type=int,
        nargs="+",
        default=[10],
        help="number of clusters; several numbers train one head per clustering",
    )
    parser.add_argument("--epochs", type=int, default=10, help="training epochs of N_cf")
    parser.add_argument("--extractor-epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128, help="images per rank and step")
    parser.add_argument(
        "--learning-rate",
        type=float,
        default=0.05,
        help="learning rate of one process, multiplied by the number of ranks",
    )
    parser.add_argument("--output", default="clusterfit.pt", help="model file rank 0 writes")
    parser.add_argument(
        "--pickle-dir", help="also pickle every rank's model here (rank<r>.pkl) to compare them"
    )
    args = parser.parse_args()

    # The script owns the process group: its backend, its GPU and its timeout.
    # Rank 0 clusters alone while the others wait for its labels, so the
    # timeout must outlast the clustering (minutes for 1M images on faiss).
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(int(os.environ["LOCAL_RANK"]))
    dist.init_process_group("nccl" if cuda else "gloo", timeout=datetime.timedelta(hours=2))
    rank, world_size = dist.get_rank(), dist.get_world_size()

    if args.data == "digits":
        X = datasets.load_digits().data
    else:
        X = datasets.load_fashion_mnist("train").data
    n_clusters = args.n_clusters[0] if len(args.n_clusters) == 1 else args.n_clusters
    cf = ClusterFitTransformer(
        n_clusters=n_clusters,
        max_epochs=args.epochs,
        extractor_epochs=args.extractor_epochs,
        batch_size=args.batch_size,
        # batch_size is per rank, so one step sees world_size times more
        # images: the linear scaling rule keeps the step size per image.
        learning_rate=args.learning_rate * world_size,
        random_state=0,
        verbose=1,
    ).fit(X)

    if rank == 0:
        cf.save(args.output)
        found = ", ".join(str(n) for n in cf.n_clusters_all_)
        print(f"{world_size} ranks: {found} clusters, model saved to {args.output}")
    if args.pickle_dir:
        with open(Path(args.pickle_dir) / f"rank{rank}.pkl", "wb") as stream:
            pickle.dump(cf, stream)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
