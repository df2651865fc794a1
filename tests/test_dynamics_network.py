"""The network-loss potential (flat weights of an MLP on the paper's task) and the SGD-vs-Langevin comparison."""

import numpy as np
import pytest
import torch
from numpy.testing import assert_allclose

from ibtheory import tasks
from ibtheory.dynamics import langevin
from ibtheory.dynamics.network import NetworkLoss, compare_sgd_langevin, sgd_noise_along_training, torch_threads


@pytest.fixture(scope="module")
def task():
    with torch_threads(1):  # small networks: one thread is fastest, and others share the machine
        yield tasks.tishby()


def test_gradient_matches_finite_differences_and_per_sample_mean(task):
    loss = NetworkLoss(task, hidden=(4, 3), train=np.arange(0, 4096, 64), weight_decay=1e-3)
    w = loss.initial(2, seed=1)
    g = loss.grad(w)
    eps = 1e-6
    for j in (0, 17, loss.dim - 1):
        e = np.zeros(loss.dim)
        e[j] = eps
        fd = (loss.value(w + e) - loss.value(w - e)) / (2 * eps)
        assert_allclose(g[:, j], fd, rtol=1e-5, atol=1e-9, err_msg=f"parameter {j}")
    per = loss.per_sample_gradients(w)
    assert per.shape == (2, 64, loss.dim)
    assert_allclose(per.mean(axis=1) + 1e-3 * w, g, rtol=1e-9, atol=1e-12)


def test_layout_matches_batched_mlp(task):
    from ibtheory.nets import BatchedMLP

    loss = NetworkLoss(task, hidden=(5, 3))
    w = loss.initial(3, seed=2)
    w[:, -5:] = np.random.default_rng(0).normal(size=(3, 5))  # non-zero biases
    mlp = BatchedMLP(loss.widths, "tanh", [np.zeros((3, a, b)) for a, b in loss.shapes], dtype=torch.float64)
    mlp.load_flat(torch.as_tensor(w))
    x = torch.as_tensor(task["patterns"].values, dtype=torch.float64).T.expand(3, -1, -1)
    with torch.no_grad():
        ref = mlp(x)
    ours = loss.layers(torch.as_tensor(w))
    assert_allclose(ours[0].numpy(), ref[0].transpose(1, 2).numpy(), rtol=1e-12, atol=1e-15)
    assert_allclose(ours[-1].numpy(), torch.softmax(ref[-1], dim=1).transpose(1, 2).numpy(), rtol=1e-10)
    assert_allclose(mlp.flat_parameters().numpy(), w)


def test_langevin_runs_on_the_network_loss(task):
    loss = NetworkLoss(task, hidden=(3,), train=np.arange(0, 4096, 32))
    ds = langevin(loss, loss.initial(3, 0), beta=1e3, dt=0.05, n_steps=10, record="moments", seed=0,
                  progress=False)
    assert ds["energy"].values[-1] < ds["energy"].values[0]
    ixt, ity = loss.information(loss.initial(2, 0))
    assert ixt.shape == (2, 2) and np.all(ixt <= 12 + 1e-9) and np.all(ity <= ixt + 1e-9)


def test_compare_sgd_langevin_small(task):
    ds = compare_sgd_langevin(task, hidden=(4, 3), lr=0.1, batch_size=16, warmup_steps=30, n_steps=30,
                              repeats=2, n_records=4, train_fraction=0.05, seed=0)
    assert ds["I_XT_sgd"].dims == ("time", "layer", "repeat")
    assert ds["I_XT_sgd"].attrs["units"] == "bits"
    assert ds.attrs["beta"] > 0
    assert_allclose(ds["I_XT_sgd"].isel(time=0), ds["I_XT_langevin"].isel(time=0))  # same start
    assert np.all(ds["drift_langevin"].isel(time=-1) > 0)
    assert ds["weight_norm_gd"].dims == ("time", "layer", "repeat")
    w = ds["w_final_sgd"].values
    assert w.shape == (2, ds.sizes["dim"]) and np.all(np.isfinite(w))


def test_bad_input(task):
    with pytest.raises(ValueError, match="activation"):
        NetworkLoss(task, activation="swish")
    with pytest.raises(ValueError, match="weight_decay"):
        NetworkLoss(task, weight_decay=-1)


def test_sgd_noise_along_training(task):
    loss = NetworkLoss(task, hidden=(4, 3), train=np.arange(0, 4096, 32))
    w0 = loss.initial(2, 0)
    ds = sgd_noise_along_training(loss, w0, lr=0.1, batch_size=8, n_steps=40, n_records=4, seed=0)
    assert ds["snr"].dims == ("time", "repeat")
    # tr C from the SVD equals the trace of the explicit per-sample covariance at the start
    per = loss.per_sample_gradients(w0)
    tr = np.array([np.trace(np.cov(p.T, bias=True)) for p in per])
    assert_allclose(ds["trace_c_batch"].isel(time=0).values, tr / 8, rtol=1e-10)
    assert np.all((ds["top_eig_fraction"] > 0) & (ds["top_eig_fraction"] <= 1 + 1e-12))
