"""The command line: ``skclusterfit fit|transform|duplicates`` on a folder of images.

Errors in what the user gave (the folder, the files, the settings) print one
line, ``skclusterfit: error: ...``, and exit with status 2, as argparse does
for a bad option; ``fit`` writes its results into a temporary folder beside
``--out`` and renames it only when everything is written, so a failed run
leaves nothing behind. Progress goes to stderr; ``--quiet`` silences it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from pathlib import Path

from PIL import Image

from ._version import __version__

USAGE_ERROR = 2
REPORT_FOLDS = 5
# fit's options that are ClusterFitTransformer's parameters of the same name.
FIT_OPTIONS = (
    "n_clusters",
    "max_epochs",
    "extractor_epochs",
    "image_size",
    "device",
    "random_state",
)
# Errors that are about the input, not the package: one line and status 2.
# (OSError covers missing, unreadable and existing files and folders.)
INPUT_ERRORS = (ValueError, TypeError, OSError)


def main(argv=None) -> int:
    """Run the command line with ``argv`` (``sys.argv[1:]`` by default); return the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        args.run(args)
    except INPUT_ERRORS as error:
        message = " ".join(str(error).split())  # one line, whatever the message holds
        print(f"skclusterfit: error: {message}", file=sys.stderr)
        return USAGE_ERROR
    except KeyboardInterrupt:
        print("skclusterfit: interrupted", file=sys.stderr)
        return 130
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skclusterfit",
        description="ClusterFit on a folder of images: fit a model, write features, find "
        "near-duplicates.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fit = commands.add_parser(
        "fit",
        help="fit ClusterFit on the images of a folder and write everything it finds",
        description="Fit ClusterFit on every image under FOLDER and write into OUT: "
        "model.pt, features/ (features.npy and images.csv), clusters/ (a sub-folder of "
        "links per cluster and clusters.csv), duplicates/ (a sub-folder per group of "
        "near-duplicates and duplicates.csv) and, when the images lie in "
        "two or more sub-folders, report.txt (the representation report, with the "
        "sub-folders as classes).",
    )
    fit.add_argument("folder", type=Path, help="folder of images (searched recursively)")
    fit.add_argument("--out", type=Path, required=True, help="new folder to write")
    # Left out, a setting keeps ClusterFitTransformer's default (named in --help).
    fit.add_argument("--n-clusters", type=int, help="K of k-means (default: 100)")
    fit.add_argument("--max-epochs", type=int, help="N_cf's epochs (default: 20)")
    fit.add_argument("--extractor-epochs", type=int, help="N_pre's (RotNet's) epochs (default: 10)")
    fit.add_argument("--image-size", type=int, help="resize images to this side")
    fit.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: auto)")
    fit.add_argument("--random-state", type=int, default=0, help="seed (default: 0)")
    _common_options(fit)
    fit.add_argument(
        "--copy", action="store_true", help="copy files into clusters/ and duplicates/, not links"
    )
    fit.set_defaults(run=_fit)

    transform = commands.add_parser(
        "transform",
        help="write the features of a folder's images with a fitted model",
        description="Write the features of every image under FOLDER into OUT "
        "(features.npy, images.csv, manifest.json), a chunk at a time; run it again "
        "on the same OUT to resume an interrupted run.",
    )
    transform.add_argument("model", type=Path, help="model file written by 'fit' (model.pt)")
    transform.add_argument("folder", type=Path, help="folder of images (searched recursively)")
    transform.add_argument("--out", type=Path, required=True, help="features folder to write")
    transform.add_argument(
        "--chunk-size", type=int, default=4096, help="images per chunk (default 4096)"
    )
    transform.add_argument("--quiet", action="store_true", help="no progress on stderr")
    transform.set_defaults(run=_transform)

    duplicates = commands.add_parser(
        "duplicates",
        help="list the near-duplicate groups of a folder's images",
        description="Write the groups of near-duplicate images under FOLDER, by a fitted "
        "model's features, as a CSV of group, index and path.",
    )
    duplicates.add_argument("model", type=Path, help="model file written by 'fit' (model.pt)")
    duplicates.add_argument("folder", type=Path, help="folder of images (searched recursively)")
    duplicates.add_argument("--out", type=Path, required=True, help="CSV file to write")
    _common_options(duplicates)
    duplicates.set_defaults(run=_duplicates)
    return parser


def _common_options(parser) -> None:
    from .neighbors._index import DUPLICATE_THRESHOLD

    parser.add_argument(
        "--threshold",
        type=float,
        default=DUPLICATE_THRESHOLD,
        help=f"cosine distance of near-duplicates (default {DUPLICATE_THRESHOLD})",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def image_files(folder: Path) -> list[str]:
    """Every image file under ``folder`` (by PIL's extensions), sorted; refuses none found."""
    if not folder.is_dir():
        raise NotADirectoryError(f"{str(folder)!r} is not a folder.")
    extensions = {ext for ext, name in Image.registered_extensions().items() if name in Image.OPEN}
    found = sorted(
        os.path.join(root, name)
        for root, _, names in os.walk(folder)
        for name in names
        if os.path.splitext(name)[1].lower() in extensions
    )
    if not found:
        raise ValueError(f"{str(folder)!r} holds no image files.")
    return found


def _say(args, message: str) -> None:
    if not args.quiet:
        print(f"skclusterfit: {message}", file=sys.stderr, flush=True)


def _fit(args) -> None:
    from . import ClusterFitTransformer
    from .datasets import export_clusters, export_duplicates, load_features, write_features
    from .neighbors import ImageIndex

    out = args.out
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{str(out)!r} exists and is not an empty folder; pass a new one.")
    inside = os.path.realpath(out).startswith(os.path.join(os.path.realpath(args.folder), ""))
    if inside:
        # Its clusters/ and duplicates/ hold links to images, which a later
        # run on the folder would read as more images.
        raise ValueError(f"--out {str(out)!r} lies inside {str(args.folder)!r}; pass one outside.")
    paths = image_files(args.folder)
    _say(args, f"{len(paths)} images under {str(args.folder)!r}")
    given = {name: getattr(args, name) for name in FIT_OPTIONS}
    model = ClusterFitTransformer(
        **{name: value for name, value in given.items() if value is not None},
        verbose=0 if args.quiet else 1,
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        model.fit(paths)
        model.save(work / "model.pt")
        stored = write_features(model, paths, work / "features")
        _say(args, "features written")
        mode = "copy" if args.copy else "link"
        export_clusters(model, paths, work / "clusters", mode=mode)
        index = ImageIndex(model).fit(paths, features=load_features(stored).features)
        export_duplicates(index, work / "duplicates", threshold=args.threshold, mode=mode)
        labels = _labels_from_folders(args.folder, paths)
        if labels is not None:
            from .metrics import representation_report

            _say(args, "representation report, with the sub-folders as classes")
            report = representation_report(model, paths, labels, cv=REPORT_FOLDS, random_state=0)
            (work / "report.txt").write_text(f"{report}\n")
        if out.exists():
            out.rmdir()  # empty, checked above
        work.rename(out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    _say(args, f"written to {str(out)!r}")


def _transform(args) -> None:
    from .datasets import write_features

    model = _load_model(args.model, args.quiet)
    paths = image_files(args.folder)
    _say(args, f"{len(paths)} images under {str(args.folder)!r}")
    write_features(model, paths, args.out, chunk_size=args.chunk_size)
    _say(args, f"features written to {str(args.out)!r}")


def _duplicates(args) -> None:
    from .neighbors import ImageIndex

    model = _load_model(args.model, args.quiet)
    paths = image_files(args.folder)
    if args.out.is_dir():
        raise IsADirectoryError(f"--out {str(args.out)!r} is a folder; pass a CSV file name.")
    groups = ImageIndex(model).fit(paths).duplicates(args.threshold)
    _write_groups(args.out, groups, paths)
    _say(args, f"{len(groups)} groups of near-duplicates written to {str(args.out)!r}")


def _load_model(path: Path, quiet: bool):
    from . import load

    model = load(path)
    model.set_params(verbose=0 if quiet else 1)
    return model


def _write_groups(path: Path, groups, paths: list[str]) -> None:
    """``group, index, path`` of every image in a group, group by group."""
    from ._exports import write_csv

    rows = [(number, int(i), paths[i]) for number, group in enumerate(groups) for i in group]
    write_csv(path, ["group", "index", "path"], rows)


def _labels_from_folders(folder: Path, paths: list[str]):
    """Each image's sub-folder under ``folder`` as its class, or None.

    None unless every image lies in a sub-folder, there are two or more, and
    each holds at least ``REPORT_FOLDS`` images (one per fold of the report).
    """
    labels = [
        Path(p).relative_to(folder).parts[0] if Path(p).parent != folder else None for p in paths
    ]
    if None in labels or len(set(labels)) < 2:
        return None
    if min(labels.count(label) for label in set(labels)) < REPORT_FOLDS:
        return None
    return labels
