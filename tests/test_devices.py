"""Device and precision choices, and what they change in a fit."""

import warnings

import numpy as np
import pytest
import torch

from skclusterfit import ClusterFitTransformer
from skclusterfit._devices import native_bfloat16, resolve_batch, resolve_device, resolve_precision


def test_auto_device_is_cuda_only_where_available():
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="not a device torch knows"):
        resolve_device("toaster")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")
def test_asking_for_cuda_without_it_is_a_clear_error(small_digits, tiny):
    X, _ = small_digits
    with pytest.raises(ValueError, match="CUDA is not available"):
        ClusterFitTransformer(**{**tiny, "device": "cuda"}).fit(X)


@pytest.mark.parametrize("native", [True, False])
def test_auto_precision_follows_the_hardware(monkeypatch, native):
    import skclusterfit._devices as devices

    cpu = torch.device("cpu")
    monkeypatch.setattr(devices, "native_bfloat16", lambda device: native)
    assert resolve_precision("auto", cpu) == (torch.bfloat16 if native else None)
    assert resolve_precision("float32", cpu) is None
    assert resolve_precision("bfloat16", cpu) == torch.bfloat16


def _cpu(monkeypatch, amx=False, avx512_bf16=False, capability="AVX512", onednn=None):
    """Make torch's queries describe a CPU; ``onednn``: ONEDNN_MAX_CPU_ISA, if set."""
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    monkeypatch.delenv("DNNL_MAX_CPU_ISA", raising=False)
    if onednn is None:
        monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    else:
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", onednn)


def test_cpu_bfloat16_query_reads_the_instruction_sets(monkeypatch):
    _cpu(monkeypatch, avx512_bf16=True)
    assert native_bfloat16(torch.device("cpu"))
    _cpu(monkeypatch)
    assert not native_bfloat16(torch.device("cpu"))


@pytest.mark.parametrize(
    "capability, onednn, native",
    [
        ("AVX512", None, True),
        ("AVX512", "AVX512_CORE_AMX", True),
        ("AVX512", "all", True),
        ("AVX2", None, False),  # ATEN_CPU_CAPABILITY=avx2: torch's kernels emulate it
        ("AVX512", "AVX2", False),  # oneDNN's convolutions would emulate it
        ("AVX512", "AVX512_CORE", False),
    ],
)
def test_bfloat16_is_native_only_where_the_kernels_reach_it(
    monkeypatch, capability, onednn, native
):
    from skclusterfit._devices import describe_cpu

    _cpu(monkeypatch, amx=True, capability=capability, onednn=onednn)
    assert native_bfloat16(torch.device("cpu")) is native
    assert resolve_precision("auto", torch.device("cpu")) == (torch.bfloat16 if native else None)
    described = describe_cpu()
    assert described.startswith(f"{capability} kernels, bfloat16 ")
    assert ("native (AMX)" in described) is native
    assert ("AMX left unused by the kernels" in described) is not native


def test_bfloat16_asked_for_where_it_is_emulated_is_warned_about_once(
    small_digits, tiny, monkeypatch
):
    from skclusterfit._devices import EMULATED_BFLOAT16_SLOWDOWN

    X, _ = small_digits
    _cpu(monkeypatch, capability="AVX2")
    with pytest.warns(UserWarning) as record:
        ClusterFitTransformer(**tiny, precision="bfloat16").fit_transform(X)
    emulated = [w for w in record if "without bfloat16 arithmetic" in str(w.message)]
    assert len(emulated) == 1 and emulated[0].filename == __file__
    message = str(emulated[0].message)
    assert "AVX2 kernels, bfloat16 emulated" in message
    assert f"{EMULATED_BFLOAT16_SLOWDOWN:.1f} times slower" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for precision in ("auto", "float32"):
            ClusterFitTransformer(**tiny, precision=precision).fit(X)
        _cpu(monkeypatch, avx512_bf16=True)
        ClusterFitTransformer(**tiny, precision="bfloat16").fit(X)


def test_a_verbose_fit_starts_by_naming_the_device_kernels_and_precision(
    small_digits, tiny, monkeypatch, capsys
):
    X, _ = small_digits
    _cpu(monkeypatch, capability="AVX2")
    ClusterFitTransformer(**tiny, verbose=1, n_jobs=1).fit(X)
    first = capsys.readouterr().err.splitlines()[0]
    assert first == (
        "[ClusterFit] fitting on cpu (AVX2 kernels, bfloat16 emulated; 1 torch thread); "
        "training in float32 (precision='auto')"
    )


def test_bfloat16_fits_repeat_exactly_and_differ_from_float32(small_digits, tiny):
    X, _ = small_digits
    first = ClusterFitTransformer(**tiny, precision="bfloat16").fit_transform(X)
    again = ClusterFitTransformer(**tiny, precision="bfloat16").fit_transform(X)
    np.testing.assert_array_equal(first, again)
    assert first.dtype == np.float32 and np.isfinite(first).all()
    float32 = ClusterFitTransformer(**tiny, precision="float32").fit_transform(X)
    assert not np.array_equal(first, float32)


def test_bfloat16_only_in_the_training_forward_pass(small_digits, tiny):
    # The networks keep float32 weights, and transform's features equal a
    # float32 forward pass of the fitted network.
    X, _ = small_digits
    cf = ClusterFitTransformer(**tiny, precision="bfloat16").fit(X)
    assert all(p.dtype == torch.float32 for p in cf.network_.parameters())
    with torch.inference_mode():
        images = torch.as_tensor(X[:16] / 16.0, dtype=torch.float32).view(-1, 1, 8, 8)
        expected = cf.network_.features(images).numpy()
    features = cf.set_params(feature_stages=1).transform(X[:16])
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("device", "side", "batch"),
    [("cpu", 8, 128), ("cpu", 96, 128), ("cuda", 8, 256), ("cuda", 28, 256), ("cuda", 32, 256)]
    + [("cuda", 33, 128), ("cuda", 224, 128)],
)
def test_auto_batch_grows_on_gpus_for_small_images_and_scales_the_rate(device, side, batch):
    # 256 images of at most 32x32 pixels a step on a GPU; the rate in proportion.
    found = resolve_batch("auto", 0.05, torch.device(device), (3, side, side))
    assert found == (batch, pytest.approx(0.05 * batch / 128))


def test_an_int_batch_keeps_the_learning_rate_as_given():
    assert resolve_batch(200, 0.3, torch.device("cuda"), (1, 28, 28)) == (200, 0.3)


def test_auto_batch_fits_on_the_cpu_as_128_images_a_step(small_digits, tiny):
    X, _ = small_digits
    params = {**tiny, "n_clusters": 3, "batch_size": "auto"}
    auto = ClusterFitTransformer(**params).fit(X)
    explicit = ClusterFitTransformer(**{**params, "batch_size": 128}).fit(X)
    np.testing.assert_array_equal(auto.transform(X), explicit.transform(X))
    assert auto.get_params()["batch_size"] == "auto"
