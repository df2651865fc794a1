"""The binning estimator in torch (any device) against numpy's binned_information, the reference implementation
(itself checked against brute force in test_estimators_binning.py): every bin index, I(X;T), I(T;Y) to 1e-12 bits,
the state counts exactly; and the trainer's device path against its numpy path."""

import importlib

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose, assert_array_equal

from ibtheory import nets, tasks
from ibtheory.estimators import bin_indices, binned_information, kde_information
from ibtheory.estimators.binning import _grid
from ibtheory.estimators.binning_torch import _device_indices, binned_information_torch
from ibtheory.nets.loop import _MEASURE_ON_DEVICE_ENV, _measures_on_device

GRIDS = [dict(), dict(n_bins=4), dict(n_bins=7, limits=(-0.9, 1.3)), dict(scheme="idnns"),
         dict(n_bins=5, limits="adaptive"), dict(bin_width=0.07), dict(bin_width=0.3, anchor=-0.1)]


def _channel(n_x, seed, kind):
    rng = np.random.default_rng(seed)
    if kind == "uniform-hard":  # the paper's task: the counting path of both implementations
        return np.full(n_x, 1 / n_x), np.eye(2)[rng.integers(0, 2, n_x)]
    p_x = rng.dirichlet(np.ones(n_x))
    p_x[::7] = 0.0  # patterns of zero mass: states of zero mass are not counted
    p_x /= p_x.sum()
    return p_x, rng.dirichlet(np.ones(3), size=n_x)


def _assert_same(got, ref, what):
    assert_array_equal(got.n_states, ref.n_states, err_msg=f"{what}: occupied states, exactly")
    assert_allclose(got.I_XT, ref.I_XT, rtol=0, atol=1e-12, err_msg=f"{what}: I(X;T) to 1e-12 bits")
    assert_allclose(got.I_TY, ref.I_TY, rtol=0, atol=1e-12, err_msg=f"{what}: I(T;Y) to 1e-12 bits")
    assert got.I_XT.shape == ref.I_XT.shape and got.n_states.dtype == ref.n_states.dtype
    assert (got.n_bins, got.scheme, got.bin_width, got.anchor, got.labels) == \
        (ref.n_bins, ref.scheme, ref.bin_width, ref.anchor, ref.labels)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("R", "n_x", "units"), [(1, 16, 1), (3, 64, 5), (4, 256, 10), (2, 32, 4000)])
@pytest.mark.parametrize("kind", ["uniform-hard", "weighted-soft"])
def test_random_layers_match_numpy(dtype, R, n_x, units, kind):
    rng = np.random.default_rng(R * 1000 + units)
    pool = rng.uniform(-1.3, 1.3, size=(R, n_x // 4, units))  # rows drawn from a few, one unit of some redrawn
    acts = np.take_along_axis(pool, rng.integers(0, n_x // 4, size=(R, n_x, 1)), axis=1)
    redraw = rng.random((R, n_x)) < 0.3
    acts[redraw, rng.integers(0, units, redraw.sum())] = rng.uniform(-1.3, 1.3, redraw.sum())
    acts = (np.round(acts * 6) / 6).astype(dtype)  # coarse values: some rows collide, some on edges
    p_x, p_y_x = _channel(n_x, units, kind)
    for opts in GRIDS:
        ref = binned_information(acts, p_x, p_y_x, **opts)
        _assert_same(binned_information_torch(torch.from_numpy(acts), p_x, p_y_x, **opts), ref, f"{opts}")
    ref = binned_information(acts, p_x, p_y_x, n_bins=3)
    assert (ref.n_states < n_x).any() and (ref.n_states > 1).all(), "states merge and split (not vacuous)"


def _edge_values(dtype):
    """Values on and one ulp beside the edges of every grid of GRIDS, and the ends and beyond."""
    edges = [np.linspace(-1, 1, 31), np.linspace(-1, 1, 30), np.linspace(-0.9, 1.3, 8), np.arange(-20, 21) * 0.07,
             np.arange(-8, 9) * 0.3 - 0.1, np.array([-1.5, -1.0, -0.0, 0.0, 1.0, 1.5, 2.0])]
    v = np.concatenate(edges).astype(dtype)
    v = np.concatenate([v, np.nextafter(v, dtype(-np.inf)), np.nextafter(v, dtype(np.inf))])
    return np.unique(v)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_index_on_and_beside_the_edges_is_numpys(dtype):
    v = _edge_values(dtype)
    acts = np.stack([v, v[::-1]], axis=1)[None]  # (1, n_x, 2)
    for opts in GRIDS[:5]:
        grid = _grid(opts.get("n_bins"), opts.get("limits", (-1.0, 1.0)), opts.get("scheme", "width"), None, None)
        got, _ = _device_indices(torch.from_numpy(acts), grid, False)
        assert_array_equal(got.double().numpy(), bin_indices(acts, **opts), err_msg=f"indices {opts}, {dtype}")
    for opts in GRIDS[5:]:  # fixed width: indices shifted by their minimum
        grid = _grid(None, None, "width", opts["bin_width"], opts.get("anchor"))
        got, base = _device_indices(torch.from_numpy(acts), grid, False)
        ref = bin_indices(acts, **opts)
        assert_array_equal(got.numpy(), ref - ref.min(), err_msg=f"indices {opts}, {dtype}")
        assert base == ref.max() - ref.min() + 1
    p_x, p_y_x = _channel(v.size, 0, "uniform-hard")
    for opts in GRIDS:  # one unit: every pattern's value decides its state
        ref = binned_information(acts[..., :1], p_x, p_y_x, **opts)
        _assert_same(binned_information_torch(torch.from_numpy(acts[..., :1]), p_x, p_y_x, **opts), ref, f"{opts}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adaptive_indices_on_and_beside_each_slices_edges_are_numpys(dtype):
    rng = np.random.default_rng(11)
    lo, span = rng.uniform(-2, 1, size=(300, 1)), rng.uniform(0.01, 3, size=(300, 1))
    v = (lo + np.arange(8) * span / 7).astype(dtype)  # each slice's own 7 edges, its min and its max
    v = np.concatenate([v, np.nextafter(v, dtype(-np.inf)), np.nextafter(v, dtype(np.inf))], axis=1)
    v[:, 8:] = np.clip(v[:, 8:], v[:, :1], v[:, 7:8])  # keep min and max
    acts = v[:, :, None]  # (300 slices, 24 patterns, 1 unit)
    grid = _grid(7, "adaptive", "width", None, None)
    got, _ = _device_indices(torch.from_numpy(acts), grid, False)
    assert_array_equal(got.numpy(), bin_indices(acts, n_bins=7, limits="adaptive"), err_msg=f"{dtype}")


def test_padding_units_leading_dims_and_sampled_labels_match_numpy():
    rng = np.random.default_rng(5)
    acts = np.round(rng.uniform(-1.2, 1.2, size=(2, 3, 40, 6)) * 4) / 4
    acts[0, 1, :, 4:] = np.nan  # narrower layers stacked on one unit axis
    acts[1, 2, :, 1:] = np.nan
    for kind in ("uniform-hard", "weighted-soft"):
        p_x, p_y_x = _channel(40, 1, kind)
        for opts in GRIDS:
            ref = binned_information(acts, p_x, p_y_x, **opts)
            _assert_same(binned_information_torch(torch.from_numpy(acts), p_x, p_y_x, **opts), ref, f"pad {opts}")
        ref = binned_information(acts, p_x, p_y_x, labels="sampled", label_seed=3)
        _assert_same(binned_information_torch(torch.from_numpy(acts), p_x, p_y_x, labels="sampled", label_seed=3),
                     ref, "sampled labels")
    single = acts[0, 0]  # no leading dims: 0-d results, as numpy's
    _assert_same(binned_information_torch(torch.from_numpy(single), p_x, p_y_x),
                 binned_information(single, p_x, p_y_x), "no leading dims")
    _assert_same(binned_information_torch(single, p_x, p_y_x), binned_information(single, p_x, p_y_x), "ndarray in")


def test_closed_form_one_bit():
    # two patterns in different bins of one unit: I(X;T) = H(X) = 1 bit, I(T;Y) = 1 bit for a copied label
    r = binned_information_torch(torch.tensor([[[-0.5], [0.5]], [[0.1], [0.2]]]), [0.5, 0.5],
                                 [[1.0, 0.0], [0.0, 1.0]], n_bins=2)
    assert_allclose(r.I_XT, [1.0, 0.0], atol=1e-15)
    assert_allclose(r.I_TY, [1.0, 0.0], atol=1e-15)
    assert r.n_states.tolist() == [2, 1]


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(scheme="mass"), "mass"), (dict(n_bins=1), "n_bins"), (dict(bin_width=-0.1), "bin_width"),
    (dict(bin_width=0.1, n_bins=5), "n_bins and bin_width"), (dict(anchor=0.5), "anchor"),
    (dict(labels="soft"), "labels"), (dict(labels="sampled"), "label_seed"), (dict(limits=(1, -1)), "limits"),
    (dict(scheme="idnns", limits="adaptive"), "limits"), (dict(scheme="bad"), "scheme"),
])
def test_bad_options_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        binned_information_torch(torch.zeros((2, 4, 3)), np.full(4, 0.25), np.eye(2)[[0, 1, 0, 1]], **kwargs)


def _with(a, index, value):
    a = a.clone()
    a[index] = value
    return a


@pytest.mark.parametrize(("acts", "p_x", "p_y_x", "match"), [
    (torch.zeros((2, 4, 3), dtype=torch.complex64), None, None, "real numeric"),
    (torch.zeros(4), None, None, "shape"),
    (torch.zeros((2, 4, 0)), None, None, "empty"),
    (_with(torch.zeros((2, 4, 3)), (1, 2, 0), float("inf")), None, None, "infinite"),
    (_with(torch.zeros((2, 4, 3)), (1, 2, 0), float("nan")), None, None, "not entirely NaN"),
    (_with(torch.zeros((2, 4, 3)), (1, slice(None), 0), float("nan")), None, None, "before a real unit"),
    (_with(torch.zeros((2, 4, 3)), (1,), float("nan")), None, None, r"at \[1\].*diverged"),
    (torch.zeros((2, 4, 3)), np.full(5, 0.2), None, "p_x has 5 entries"),
    (torch.zeros((2, 4, 3)), np.full(4, 0.3), None, "p_x"),
    (torch.zeros((2, 4, 3)), None, np.eye(2)[[0, 1, 0]], "p_y_given_x has 3 rows"),
    (torch.zeros((2, 4, 3)), None, np.full((4, 2), 0.7), "p_y_given_x"),
])
def test_bad_inputs_are_refused(acts, p_x, p_y_x, match):
    p_x = np.full(4, 0.25) if p_x is None else p_x
    p_y_x = np.eye(2)[[0, 1, 0, 1]] if p_y_x is None else p_y_x
    with pytest.raises(ValueError, match=match):
        binned_information_torch(acts, p_x, p_y_x)


def test_integer_and_half_inputs_are_binned_as_numpy_bins_them():
    rng = np.random.default_rng(2)
    ints = rng.integers(-2, 3, size=(3, 50, 4))
    p_x, p_y_x = _channel(50, 2, "weighted-soft")
    _assert_same(binned_information_torch(torch.from_numpy(ints), p_x, p_y_x, n_bins=5, limits=(-2.5, 2.5)),
                 binned_information(ints, p_x, p_y_x, n_bins=5, limits=(-2.5, 2.5)), "int64")
    half = rng.uniform(-1, 1, size=(3, 50, 4)).astype(np.float16)
    _assert_same(binned_information_torch(torch.from_numpy(half), p_x, p_y_x, scheme="idnns"),
                 binned_information(half, p_x, p_y_x, scheme="idnns"), "float16")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_gives_the_cpu_numbers(dtype):
    rng = np.random.default_rng(9)
    acts = torch.from_numpy(np.tanh(rng.normal(size=(50, 4096, 10)) * 2)).to(dtype)
    acts[:, :64] = torch.from_numpy(_edge_values(np.float64)[:64, None]).to(dtype)  # edge values too
    wide = torch.from_numpy(np.round(rng.uniform(-1.2, 1.2, size=(3, 512, 4000)) * 3) / 3).to(dtype)
    wide[1, :, 3000:] = float("nan")
    for a, kind in ((acts, "uniform-hard"), (acts, "weighted-soft"), (wide, "weighted-soft")):
        p_x, p_y_x = _channel(a.shape[1], 4, kind)
        for opts in GRIDS:
            cpu = binned_information_torch(a, p_x, p_y_x, **opts)
            _assert_same(binned_information_torch(a.cuda(), p_x, p_y_x, **opts), cpu, f"cuda {opts} {kind}")
            _assert_same(cpu, binned_information(a.numpy(), p_x, p_y_x, **opts), f"cpu vs numpy {opts} {kind}")


TINY = dict(hidden=(6, 4, 3), repeats=3, epochs=4, snapshots=4, batch_size=512, progress=False)


@pytest.mark.parametrize("opts", [dict(estimators=("binning", "codes")), dict(scheme="idnns", dtype="float64"),
                                  dict(bin_width=0.07, activation="relu"), dict(estimators=("codes", "binning"),
                                                                                   labels="sampled", label_seed=4)])
def test_train_measures_on_the_device_with_the_numpy_numbers(monkeypatch, opts):
    run = importlib.import_module("ibtheory.nets.measure")
    calls = []

    def spy(*args, **kwargs):
        calls.append(args[0].device)
        return binned_information_torch(*args, **kwargs)

    monkeypatch.setattr(run, "binned_information_torch", spy)
    task = tasks.tishby()
    monkeypatch.setenv(_MEASURE_ON_DEVICE_ENV, "0")
    host = nets.train(task, **TINY, **opts)
    assert not calls, "the switch '0' measures on the host"
    monkeypatch.setenv(_MEASURE_ON_DEVICE_ENV, "1")
    dev = nets.train(task, **TINY, **opts)
    assert len(calls) == 4 * 4, "every layer of every snapshot measured by the torch estimator"
    assert list(dev.data_vars) == list(host.data_vars), "the same variables in the same order"
    assert_array_equal(dev["n_states"].values, host["n_states"].values)
    for var in ("I_XT", "I_TY"):
        assert_allclose(dev[var].values, host[var].values, rtol=0, atol=1e-12, err_msg=f"{var} to 1e-12 bits")
    for var in host.data_vars:  # everything else is untouched
        if var not in ("I_XT", "I_TY"):
            assert_array_equal(dev[var].values, host[var].values, err_msg=var)


def test_train_keeps_the_numpy_path_for_mass_bins_and_on_the_cpu(monkeypatch):
    run = importlib.import_module("ibtheory.nets.measure")
    calls = []
    monkeypatch.setattr(run, "binned_information_torch", lambda *a, **k: calls.append(1))
    monkeypatch.setenv(_MEASURE_ON_DEVICE_ENV, "1")
    nets.train(tasks.tishby(), scheme="mass", **TINY)
    monkeypatch.delenv(_MEASURE_ON_DEVICE_ENV)
    nets.train(tasks.tishby(), **TINY)
    assert not calls, "equal-mass bins, and the CPU without the switch, are measured by numpy"
    assert _measures_on_device("cpu") is False and _measures_on_device("cuda:0") is True
    monkeypatch.setenv(_MEASURE_ON_DEVICE_ENV, "yes")
    with pytest.raises(ValueError, match=_MEASURE_ON_DEVICE_ENV):
        _measures_on_device("cpu")


def test_train_measures_the_kde_bounds_on_the_device(monkeypatch):
    """With device activations the KDE bounds get the tensors themselves (no host copy) and give the host path's
    numbers; binning goes on to the device too and the other variables are untouched."""
    run = importlib.import_module("ibtheory.nets.measure")
    seen = []

    def spy(acts, *args, **kwargs):
        seen.append(isinstance(acts, torch.Tensor))
        return kde_information(acts, *args, **kwargs)

    monkeypatch.setattr(run, "kde_information", spy)
    task = tasks.tishby()
    opts = dict(estimators=("binning", "kde"), noise_var=0.05)
    monkeypatch.setenv(_MEASURE_ON_DEVICE_ENV, "0")
    host = nets.train(task, **TINY, **opts)
    assert not seen, "the switch '0' measures on the host"
    monkeypatch.setenv(_MEASURE_ON_DEVICE_ENV, "1")
    dev = nets.train(task, **TINY, **opts)
    assert seen == [True] * (4 * 4), "every layer of every snapshot measured from its device tensor"
    assert list(dev.data_vars) == list(host.data_vars)
    for var in host.data_vars:
        assert_allclose(dev[var].values, host[var].values, rtol=0, atol=1e-12, err_msg=var)


def test_kde_of_a_tensor_equals_the_array_path_and_checks_it():
    """kde_information on a float32 tensor (with NaN padding units) equals the array path; an inf raises the array
    path's ValueError."""
    rng = np.random.default_rng(3)
    a = rng.normal(size=(3, 40, 5)).astype(np.float32)
    a[1, :, 3:] = np.nan
    px = rng.dirichlet(np.ones(40))
    pyx = rng.dirichlet(np.ones(3), size=40)
    r_np, r_t = kde_information(a, px, pyx, 0.2), kde_information(torch.from_numpy(a), px, pyx, 0.2)
    for f in ("I_XT_upper", "I_XT_lower", "I_TY_upper", "I_TY_lower"):
        assert_allclose(getattr(r_t, f), getattr(r_np, f), rtol=0, atol=1e-13, err_msg=f)
    a[0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="infinite"):
        kde_information(torch.from_numpy(a), px, pyx)


def test_train_conv_measures_on_the_device_too(monkeypatch):
    """The conv trainer measures its snapshots through the same function as the MLP: binning on the device tensors
    (switch "1") with the host path's numbers, the ensemble estimator on the host copy."""
    from ibtheory.nets.conv import train_conv

    mod = importlib.import_module("ibtheory.nets.measure")
    calls = []

    def spy(*args, **kwargs):
        calls.append(isinstance(args[0], torch.Tensor))
        return binned_information_torch(*args, **kwargs)

    monkeypatch.setattr(mod, "binned_information_torch", spy)
    images = tasks.tishby()
    images.attrs.update(image_height=3, image_width=4)
    kw = dict(channels=(2,), kernel=3, hidden=(4,), repeats=2, epochs=3, snapshots=3, batch_size=1024,
              progress=False, estimators=("binning", "ensemble"))
    monkeypatch.setenv(_MEASURE_ON_DEVICE_ENV, "0")
    host = train_conv(images, **kw)
    assert not calls
    monkeypatch.setenv(_MEASURE_ON_DEVICE_ENV, "1")
    dev = train_conv(images, **kw)
    assert calls and all(calls), "every layer binned from its device tensor"
    for var in host.data_vars:
        if np.issubdtype(host[var].dtype, np.number):
            assert_allclose(dev[var].values, host[var].values, rtol=0, atol=1e-12, err_msg=var)
