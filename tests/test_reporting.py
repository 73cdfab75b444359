"""What the package prints: nothing at verbose=0, stages and epochs at verbose=1."""

import io
import re
import sys

import numpy as np
import pytest
import torch

from skclusterfit import ClusterFitTransformer
from skclusterfit import _distributed as distributed
from skclusterfit._reporting import Reporter
from skclusterfit._sources import ArrayImages
from skclusterfit._targets import ClassIds
from skclusterfit._training import make_config, train


@pytest.fixture
def no_tqdm(monkeypatch):
    """As if tqdm were not installed: importing it fails."""
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)


def test_verbose_0_prints_nothing_at_all(small_digits, tiny, capfd):
    X, _ = small_digits
    cf = ClusterFitTransformer(**tiny)
    cf.fit_predict(X)
    cf.transform(X)
    assert capfd.readouterr() == ("", "")


FIT_LINE = (
    r"\[ClusterFit\] fitting on cpu \(\w+ kernels, bfloat16 \w+.*; \d+ torch threads?\); "
    r"training in (float32|bfloat16) \(precision='auto'\)\n"
)
STAGE_LINES = [
    r"\[ClusterFit\] rotnet: 1 epoch in \d+\.\ds\n",
    r"\[ClusterFit\] extractor: \d+ features per image\n",
    r"\[ClusterFit\] embedding: 300 images in \d+\.\ds\n",
    r"\[ClusterFit\] clustering: KMeans\(.*\) found 5 clusters in \d+\.\ds\n",
    r"\[ClusterFit\] clusterfit: 1 epoch in \d+\.\ds\n",
]
EPOCHS = [
    r"rotnet.*epoch 1/1: loss \d\.\d{4}, rotation accuracy \d\.\d{3}",
    r"clusterfit.*epoch 1/1: loss \d\.\d{4}, pseudo-label accuracy \d\.\d{3}",
]


def test_verbose_1_shows_stages_and_a_bar_per_stage(small_digits, tiny, capsys):
    pytest.importorskip("tqdm")
    X, _ = small_digits
    ClusterFitTransformer(**{**tiny, "verbose": 1}).fit(X)
    out, err = capsys.readouterr()
    assert out == ""
    for pattern in STAGE_LINES + EPOCHS:
        assert re.search(pattern, err), pattern
    # tqdm's bars, one per stage, with their rate and time left, each closed.
    for stage, total, unit in [("rotnet", 5, "step"), ("embedding", 300, "image")]:
        last = re.findall(rf"\[ClusterFit\] {stage}: +100%.*? {total}/{total} \[(.*?)\]", err)
        assert last and re.match(rf"\d\d:\d\d<\d\d:\d\d, +[\d.]+({unit}/s|s/{unit})", last[-1])
    assert re.match(FIT_LINE, err), err.splitlines()[0]
    assert err.count("\n") == len(STAGE_LINES) + 4


def test_verbose_1_without_tqdm_prints_a_line_per_epoch(small_digits, tiny, capsys, no_tqdm):
    X, _ = small_digits
    ClusterFitTransformer(**{**tiny, "verbose": 1, "max_epochs": 2}).fit(X)
    err = capsys.readouterr().err
    lines = err.splitlines(keepends=True)
    expected = [
        FIT_LINE,
        r"\[ClusterFit\] rotnet epoch 1/1: loss \d\.\d{4}, rotation accuracy \d\.\d{3} "
        r"\(\d+\.\ds, about 0s left\)\n",
        *STAGE_LINES[:4],
        r"\[ClusterFit\] clusterfit epoch 1/2: loss \d\.\d{4}, pseudo-label accuracy \d\.\d{3} "
        r"\(\d+\.\ds, about \d+s left\)\n",
        r"\[ClusterFit\] clusterfit epoch 2/2: .* \(\d+\.\ds, about 0s left\)\n",
        STAGE_LINES[4].replace("1 epoch", "2 epochs"),
    ]
    assert len(lines) == len(expected), err
    for line, pattern in zip(lines, expected, strict=True):
        assert re.fullmatch(pattern, line), (pattern, line)
    assert "\r" not in err


def _training_run(reporter, network, epochs=2, checkpoints=None):
    """``train`` on 40 random images of two classes, 4 steps an epoch."""
    images = np.random.RandomState(0).rand(40, 8, 8, 1).astype(np.float32)
    params = ClusterFitTransformer(batch_size=10).get_params()
    return train(
        network,
        ArrayImages(images, (0.0, 1.0)),
        ClassIds(np.arange(40) % 2),
        config=make_config(
            params, epochs=epochs, device=torch.device("cpu"), image_shape=(1, 8, 8)
        ),
        generator=torch.Generator().manual_seed(0),
        stage="clusterfit",
        checkpoints=checkpoints,
        reporter=reporter,
    )


def test_only_the_main_process_prints(monkeypatch, tiny_net):
    sink = io.StringIO()
    _training_run(Reporter(1, sink), tiny_net(2))
    assert "clusterfit: 2 epochs in" in sink.getvalue()
    monkeypatch.setattr(distributed, "rank", lambda: 1)
    sink = io.StringIO()
    reporter = Reporter(1, sink)
    _training_run(reporter, tiny_net(2))
    reporter.say("a line")
    assert sink.getvalue() == ""


class _FailsAtStep(torch.nn.Module):
    """A network that raises on its ``n``-th training step (never for n=0)."""

    def __init__(self, network, n):
        super().__init__()
        self.network, self.n, self.calls = network, n, 0

    def forward(self, x):
        self.calls += 1
        if self.calls == self.n:
            raise RuntimeError("out of memory, say")
        return self.network(x)


@pytest.mark.parametrize("tqdm", [True, False], ids=["tqdm", "no-tqdm"])
def test_the_bar_is_closed_when_training_raises(tiny_net, tqdm, request):
    if tqdm:
        pytest.importorskip("tqdm")
    else:
        request.getfixturevalue("no_tqdm")
    sink = io.StringIO()
    try:
        _training_run(Reporter(1, sink), _FailsAtStep(tiny_net(2), n=6))
    except RuntimeError:
        # Read while the traceback holds the stage's frame, as an interactive
        # session does after an error, so that no garbage collection closes it.
        out = sink.getvalue()
    else:
        pytest.fail("the fit did not raise")
    if tqdm:
        # The bar stays on screen at the step it reached, and the next line starts afresh.
        assert out.endswith("\n") and " 5/8 " in out.splitlines()[-1]
        assert out.count("\n") == 1
    else:
        assert re.fullmatch(r"\[ClusterFit\] clusterfit epoch 1/2: loss .*\n", out), out


class _InMemory:
    """Checkpoints kept in a dict."""

    def __init__(self):
        self.saved = {}

    def save(self, stage, state):
        self.saved[stage] = state

    def load(self, stage):
        return self.saved.get(stage)


@pytest.mark.usefixtures("no_tqdm")
def test_a_resumed_stage_says_so_and_times_the_epochs_it_runs(tiny_net):
    checkpoints = _InMemory()
    with pytest.raises(RuntimeError):
        _training_run(Reporter(0), _FailsAtStep(tiny_net(2), n=6), checkpoints=checkpoints)
    sink = io.StringIO()
    _training_run(Reporter(1, sink), _FailsAtStep(tiny_net(2), n=0), checkpoints=checkpoints)
    lines = sink.getvalue().splitlines()
    assert lines[0] == "[ClusterFit] clusterfit: resumed after epoch 1 of 2"
    assert re.fullmatch(r".* epoch 2/2: .* \(\d+\.\ds, about 0s left\)", lines[1])
    assert re.fullmatch(r"\[ClusterFit\] clusterfit: 1 epoch in \d+\.\ds", lines[2])
    assert len(lines) == 3


def test_a_sink_receives_every_line(tiny_net):
    sink = io.StringIO()
    reporter = Reporter(1, sink)
    reporter.say("clustering: done")
    assert sink.getvalue() == "[ClusterFit] clustering: done\n"
    assert Reporter(0, sink).progress("x", total=3, unit="step").bar is None
