"""MNIST as a task (on tiny IDX files the tests write), the batched conv ensemble, and the MNIST experiment."""

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from numpy.testing import assert_allclose, assert_array_equal

from ibtheory import store
from ibtheory.idx import write_idx
from ibtheory.mnist import downsample, mnist_task
from ibtheory.nets import TrainConfig, train
from ibtheory.nets.conv import BatchedConvNet, iter_conv_training, train_conv

ROOT = Path(__file__).resolve().parents[1]
REAL_MNIST = ROOT.parent / "shared" / "data" / "mnist"
LABELS = np.array([0, 1, 2, 3, 9, 1], dtype=np.uint8)


def _images(n: int, side: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, side, side), dtype=np.uint8)


@pytest.fixture(autouse=True)
def one_thread():
    """Small convolutions run fastest on one thread, especially on a shared machine; restore afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny(tmp_path) -> Path:
    """Six 4x4 'digits' in gzip IDX files named like MNIST's."""
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", _images(6, 4))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", LABELS)
    return tmp_path


def _quadrant_task(tmp_path: Path, n: int = 96, side: int = 8) -> Path:
    """Images whose label (0..3) is the quadrant holding a bright 4x4 square, plus noise: learnable by a conv net."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 4, size=n).astype(np.uint8)
    img = rng.integers(0, 60, size=(n, side, side)).astype(np.uint8)
    h = side // 2
    for q in range(4):  # loop over the four quadrants, vectorised over images
        sel = labels == q
        r0, c0 = (q // 2) * h, (q % 2) * h
        img[sel, r0:r0 + h, c0:c0 + h] += 180
    write_idx(tmp_path / "t10k-images-idx3-ubyte", img)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", labels)
    return tmp_path


# ---------------------------------------------------------------------------------------------------- the task
def test_task_is_uniform_one_hot_with_pixel_features(tiny):
    ds = mnist_task(tiny)
    images = _images(6, 4)
    assert ds.sizes == {"x": 6, "y": 10, "dim": 16}
    expected = np.zeros((6, 10))
    expected[np.arange(6), LABELS] = 1.0 / 6
    assert_allclose(ds["p_xy"].values, expected, rtol=0, atol=1e-15)
    assert_allclose(ds["values"].values, images.reshape(6, 16) / 255.0, rtol=1e-6)
    assert_array_equal(ds["digit"].values, LABELS)
    p = np.array([1, 2, 1, 1, 1]) / 6  # label counts of 0, 1, 2, 3, 9
    h_y = -(p * np.log2(p)).sum()
    assert_allclose(ds.attrs["I_XY"], h_y, atol=1e-12, err_msg="I(X;Y) must equal H(Y) (tol 1e-12)")
    assert_allclose(ds.attrs["H_X"], np.log2(6), atol=1e-12)
    assert ds.attrs["deterministic"] == 1 and ds.attrs["image_height"] == 4 and ds.attrs["image_width"] == 4


def test_downsampling_is_the_block_mean(tiny):
    ds = mnist_task(tiny, pixels=2)
    images = _images(6, 4).astype(float) / 255
    brute = np.array([[[images[k, 2 * i:2 * i + 2, 2 * j:2 * j + 2].mean() for j in range(2)] for i in range(2)]
                      for k in range(6)])
    assert_allclose(ds["values"].values.reshape(6, 2, 2), brute, rtol=1e-6)
    assert_allclose(downsample(_images(6, 4), 1)[:, 0, 0], images.mean(axis=(1, 2)), rtol=1e-6)


def test_subset_choice_is_seeded_and_consistent(tiny):
    a, b, c = mnist_task(tiny, n=3, seed=5), mnist_task(tiny, n=3, seed=5), mnist_task(tiny, n=3, seed=6)
    assert_array_equal(a["source_index"].values, b["source_index"].values)
    idx = a["source_index"].values
    assert np.all(np.diff(idx) > 0) and idx.size == 3
    assert_allclose(a["values"].values, _images(6, 4)[idx].reshape(3, 16) / 255.0, rtol=1e-6)
    assert_array_equal(a["digit"].values, LABELS[idx])
    assert_allclose(a["p_xy"].values.sum(), 1.0, atol=1e-12)
    assert c["source_index"].size == 3


def test_plain_and_dotted_file_names(tmp_path):
    write_idx(tmp_path / "t10k-images.idx3-ubyte", _images(6, 4))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", LABELS)
    assert mnist_task(tmp_path).sizes["x"] == 6


@pytest.mark.parametrize("kwargs, message", [
    ({"n": 7}, "exceeds the 6 images"), ({"n": 0}, "n must be a positive integer"),
    ({"n": 2.5}, "n must be a positive integer"), ({"pixels": 3}, "pixels must be a positive integer dividing"),
    ({"split": "val"}, "split must be one of"),
])
def test_bad_arguments(tiny, kwargs, message):
    with pytest.raises(ValueError, match=message):
        mnist_task(tiny, **kwargs)


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        mnist_task(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="has none of"):
        mnist_task(tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", _images(6, 4))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", LABELS[:5])
    with pytest.raises(ValueError, match="6 images but"):
        mnist_task(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([0, 1, 2, 3, 4, 10], np.uint8))
    with pytest.raises(ValueError, match="label 10"):
        mnist_task(tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((6, 16), np.uint8))
    with pytest.raises(ValueError, match="3-D uint8"):
        mnist_task(tmp_path)


def test_mlp_trainer_takes_the_task(tiny):
    run = train(mnist_task(tiny), hidden=(3,), repeats=2, epochs=2, snapshots=3, batch_size=4,
                train_fraction=0.5, progress=False)
    assert run["I_XT"].sizes == {"epoch": 3, "layer": 2, "repeat": 2}
    assert np.all(run["I_XT"].values <= np.log2(6) + 1e-9)


# ---------------------------------------------------------------------------------------------------- conv net
def _net(R=3, dtype=torch.float64):
    rngs = [np.random.default_rng(10 + r) for r in range(R)]
    return BatchedConvNet((8, 6), (2, 3), 3, (5,), 4, "tanh", rngs, dtype=dtype)


def test_grouped_forward_equals_separate_networks():
    net = _net()
    x = torch.as_tensor(np.random.default_rng(0).random((3, 48, 7)))  # (R, H*W, B), own images per repeat
    acts = net(x)
    assert [a.shape for a in acts] == [(3, 2 * 4 * 3, 7), (3, 3 * 2 * 1, 7), (3, 5, 7), (3, 4, 7)]
    with torch.no_grad():
        for r in range(3):  # the reference: one ordinary network per repeat
            h = x[r].T.reshape(7, 1, 8, 6)
            for i in range(2):
                h = F.max_pool2d(torch.tanh(F.conv2d(h, net.weights[i][r], net.biases[i][r], padding=1)), 2)
                assert_allclose(acts[i][r].detach().numpy(), h.reshape(7, -1).T.numpy(), atol=1e-12)
            h = h.reshape(7, -1)
            h = torch.tanh(h @ net.weights[2][r] + net.biases[2][r])
            assert_allclose(acts[2][r].detach().numpy(), h.T.numpy(), atol=1e-12)
            logits = h @ net.weights[3][r] + net.biases[3][r]
            assert_allclose(acts[3][r].detach().numpy(), logits.T.numpy(), atol=1e-12)


def test_init_is_truncated_normal_per_fan_in():
    net = BatchedConvNet((16, 16), (64,), 5, (8,), 2, "relu", [np.random.default_rng(0)], dtype=torch.float64)
    k = net.weights[0].detach().numpy().ravel()  # fan_in = 25
    assert np.abs(k).max() <= 2 / 5 + 1e-12
    sd_truncated = 0.2 * np.sqrt(0.7737413)  # std of N(0, 1) truncated at +-2 is sqrt(0.77374)
    assert_allclose(k.std(), sd_truncated, rtol=0.08, err_msg="conv kernel std (tol 8 %)")
    assert np.all(net.biases[0].detach().numpy() == 0)


def test_repeat_trains_the_same_alone_or_in_the_ensemble(tmp_path):
    task = mnist_task(_quadrant_task(tmp_path, n=40))
    kw = dict(hidden=(4,), activation="relu", epochs=3, snapshots=3, batch_size=8, lr=1e-2, dtype="float64")
    both = list(iter_conv_training(task, TrainConfig(repeats=2, **kw), channels=(2,), kernel=3))
    alone = list(iter_conv_training(task, TrainConfig(repeats=1, repeat_start=1, **kw), channels=(2,), kernel=3))
    for s2, s1 in zip(both, alone, strict=True):
        for a2, a1 in zip(s2.activations, s1.activations, strict=True):
            assert_allclose(a2[1], a1[0], rtol=1e-9, atol=1e-10, err_msg=f"epoch {s2.epoch} (tol 1e-9)")
        assert_allclose(s2.train_loss[1], s1.train_loss[0], rtol=1e-9)


def test_train_conv_learns_and_measures(tmp_path):
    task = mnist_task(_quadrant_task(tmp_path))
    run = train_conv(task, channels=(3,), kernel=3, hidden=(6,), repeats=2, epochs=15, snapshots=4, batch_size=16,
                     lr=1e-2, progress=False)
    assert run["I_XT"].dims == ("epoch", "layer", "repeat") and run.sizes["layer"] == 3
    assert run["I_XT_ensemble"].dims == ("epoch", "layer")
    assert list(run["layer_kind"].values) == ["conv", "dense", "softmax"]
    assert all(run[v].attrs["units"] == "bits" for v in ("I_XT", "I_TY", "I_XT_ensemble", "I_TY_ensemble"))
    eps = 1e-9
    assert np.all(run["I_XT"].values <= np.log2(task.sizes["x"]) + eps)
    assert np.all(run["I_TY"].values <= task.attrs["H_Y"] + eps)
    assert np.all(run["I_TY"].values <= run["I_XT"].values + eps), "I(T;Y) <= I(X;T) for a deterministic encoder"
    acc = run["train_accuracy"].isel(epoch=-1).values
    assert np.all(acc > 0.9), f"the quadrant task is easy; train accuracy {acc} should exceed 0.9"
    assert_array_equal(run["train_mask"].values.sum(axis=1), [round(0.8 * 96)] * 2)
    back = store.load(store.save(run, tmp_path / "conv.nc"))
    assert_allclose(back["I_XT"].values, run["I_XT"].values, rtol=0, atol=0)


@pytest.mark.parametrize("kwargs, message", [
    ({"kernel": 4}, "kernel must be an odd"), ({"channels": (2, 2, 2, 2)}, "shrink"),
    ({"channels": ()}, "channels must be"), ({"estimators": ("kde",)}, "estimators must be"),
    ({"activation": "swish"}, "activation must be"), ({"n_bins": 1}, "n_bins"),
])
def test_train_conv_rejects_bad_arguments(tmp_path, kwargs, message):
    task = mnist_task(_quadrant_task(tmp_path, n=16))
    with pytest.raises(ValueError, match=message):
        train_conv(task, **{"epochs": 1, "repeats": 1, **kwargs})


def test_conv_needs_image_shape():
    from ibtheory.tasks import tishby

    with pytest.raises(ValueError, match="no square"):
        train_conv(tishby(), epochs=1, repeats=1)


# ---------------------------------------------------------------------------------------------------- experiment
def test_experiment_script_is_the_section_on_the_command_line(tmp_path, monkeypatch, capsys):
    """experiments/mnist.py is a thin wrapper of ibtheory.reproduce.mnist (it used to re-implement it): its command
    line is the sections' (--size, --mnist-dir, --out) and it writes the section's files and one-section report."""
    import runpy

    data, out = _quadrant_task(tmp_path / "data", n=48), tmp_path / "out"
    monkeypatch.setattr("sys.argv", ["mnist.py", "--size", "tiny", "--mnist-dir", str(data), "--out", str(out)])
    with pytest.raises(SystemExit) as exc:
        runpy.run_path(str(ROOT / "experiments" / "mnist.py"), run_name="__main__")
    assert exc.value.code == 0
    for name in ("mnist_mlp.nc", "mnist_conv.nc", "mnist_plane.png", "report.md"):
        assert (out / name).is_file(), name
    mlp, conv = store.load(out / "mnist_mlp.nc"), store.load(out / "mnist_conv.nc")
    assert mlp.sizes["x"] == conv.sizes["x"] == 48
    assert "I_XT_ensemble" in mlp and "I_XT_ensemble" in conv
    assert "MNIST (tiny):" in capsys.readouterr().out
    assert len((ROOT / "experiments" / "mnist.py").read_text().splitlines()) < 20


def test_section_sizes_can_be_changed_one_by_one(tmp_path):
    """run(..., **sizes) changes entries of MNIST_SIZES (the runs of docs/mnist.md used n=1000, 100 and 30 epochs):
    the networks are what nets.train and train_conv give with those settings."""
    from ibtheory.reproduce import mnist

    data = _quadrant_task(tmp_path / "data", n=40)
    sec = mnist.run(tmp_path / "out", "tiny", 0, mnist_dir=data, n=24, repeats=1, mlp_epochs=2, snapshots=2)
    assert sec.numbers["n_images"] == 24
    mlp = store.load(tmp_path / "out" / "mnist_mlp.nc")
    task = mnist_task(data, n=24, seed=0)
    direct = train(task, hidden=mnist.MLP_HIDDEN, activation="tanh", repeats=1, epochs=2, lr=1e-3, snapshots=2,
                   batch_size=mnist.MNIST_SIZES["tiny"]["batch_size"], estimators=("binning", "ensemble"), seed=0,
                   limits=(-1.0, 1.0), progress=False)
    for name in ("I_XT", "I_TY", "I_XT_ensemble", "train_loss", "train_mask"):
        assert_array_equal(mlp[name].values, direct[name].values, err_msg=name)
    with pytest.raises(ValueError, match=r"unknown size field\(s\) \['epochs'\] for the MNIST section; choose from"):
        mnist.run(tmp_path / "out", "tiny", 0, mnist_dir=data, epochs=3)


def test_section_on_the_real_digits(tmp_path):
    if not (REAL_MNIST / "t10k-labels-idx1-ubyte.gz").is_file():
        pytest.skip("the MNIST files (../shared/data/mnist) are not present on this machine")
    from ibtheory.reproduce import mnist

    full = mnist_task(REAL_MNIST, pixels=7)
    assert full.sizes == {"x": 10000, "y": 10, "dim": 49}
    assert_array_equal(full["digit"].values[:10], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9])  # the test set's first labels
    counts = np.array([980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])  # published class sizes
    p = counts / 10000
    assert_allclose(full.attrs["H_Y"], -(p * np.log2(p)).sum(), atol=1e-12)
    sec = mnist.run(tmp_path / "out", "tiny", 0, mnist_dir=REAL_MNIST, n=200, pixels=14)
    assert sec.numbers["n_images"] == 200 and store.load(tmp_path / "out" / "mnist_conv.nc").sizes["x"] == 200


def test_section_skips_cleanly_without_the_labels_file(tmp_path):
    """A folder with the images IDX file but no labels file: the reproduce section is skipped with the reason."""
    from ibtheory.reproduce import mnist

    data = tmp_path / "data"
    data.mkdir()
    write_idx(data / "t10k-images-idx3-ubyte.gz", _images(6, 4))
    sec = mnist.run(tmp_path / "out", "tiny", 0, mnist_dir=data)
    assert sec.verdict.startswith("skipped") and "t10k-labels-idx1-ubyte" in sec.verdict, sec.verdict
    assert sec.figures == [] and sec.numbers == {}
    sec = mnist.run(tmp_path / "out", "tiny", 0, mnist_dir=tmp_path / "nowhere")
    assert sec.verdict.startswith("skipped") and "does not exist" in sec.verdict, sec.verdict


def test_plane_figure_has_bits_axes_and_epoch_colour_bar():
    import xarray as xr

    from ibtheory.plots.mnist import information_planes

    coords = {"epoch": [0, 1, 10], "layer": [1, 2]}
    i_xt = xr.DataArray([[1.0, 0.5], [2.0, 1.0], [1.5, 0.8]], dims=("epoch", "layer"), coords=coords)
    fig = information_planes([("a", i_xt, i_xt / 2), ("b", i_xt, i_xt / 3)], h_x=3.0, h_y=1.0, ncols=2)
    axes = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert [ax.get_xlabel() for ax in axes] == ["I(X;T) (bits)"] * 2
    assert [ax.get_ylabel() for ax in axes] == ["I(T;Y) (bits)"] * 2
    assert any(ax.get_ylabel() == "epoch" for ax in fig.axes if ax.get_label() == "<colorbar>")
    with pytest.raises(ValueError, match="panels"):
        information_planes([], 1.0, 1.0)
