"""The critics' training knobs: weight decay (coupled L2), full-batch gradient descent, quantized activations.

Each knob of the engine (one flat buffer, hand-written backward, fused Adam) is checked against a textbook loop
written here: per repeat, plain tensors + autograd + ``torch.optim`` on the same data, initial weights and
minibatch orders, in float64, with the penalty / the full batch / the straight-through quantizer
``a + (q(a) - a).detach()`` written the textbook way.
"""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from numpy.testing import assert_allclose

from ibtheory import tasks
from ibtheory.nets import data
from ibtheory.nets.loop import TrainConfig, iter_training, optional_bits, prepare

RANGES = {"tanh": (-1.0, 1.0), "hardtanh": (-1.0, 1.0), "sigmoid": (0.0, 1.0)}
PHI = {"tanh": torch.tanh, "hardtanh": F.hardtanh, "sigmoid": torch.sigmoid}


@pytest.fixture(scope="module")
def task():
    return tasks.tishby()


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread, as ``ibtheory.nets.train`` trains (small ops; OpenMP spin-waits on a shared CPU)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _q(a, activation, bits):
    """The quantizer of Lorenzen et al. 2022, written from the formula: lo + (hi - lo) round(...) / (2^k - 1)."""
    lo, hi = RANGES[activation]
    n = 2**bits - 1
    return lo + (hi - lo) * torch.round((a - lo) / (hi - lo) * n) / n


def _textbook(setup, cfg, epochs=None):
    """Train each repeat alone: loss = mean CE over the minibatch + (wd/2) sum of the squared weights, autograd,
    torch.optim.Adam / SGD; hidden activations quantized by the straight-through ``a + (q(a) - a).detach()``.
    Returns the parameter rows (R, n_params), weights then biases by layer, as the engine's checkpoints."""
    x_all = torch.from_numpy(setup.features)
    y_all = torch.from_numpy(setup.labels.astype(np.int64))
    R = cfg.repeats
    train_idx = np.nonzero(setup.train_mask)[1].reshape(R, -1)
    n_train = train_idx.shape[1]
    rows = []
    for r in range(R):  # the textbook way: one network at a time
        ws = [torch.tensor(w[r], requires_grad=True) for w in setup.weights]
        bs = [torch.zeros(w.shape[-1], dtype=torch.float64, requires_grad=True) for w in setup.weights]
        params = ws + bs
        opt = (torch.optim.Adam(params, lr=cfg.lr) if cfg.optimizer == "adam" else torch.optim.SGD(params, lr=cfg.lr))
        for epoch in range(1, (cfg.epochs if epochs is None else epochs) + 1):
            order = train_idx[r, data.epoch_orders(setup.keys[r:r + 1], epoch, n_train)[0]]
            for s in range(0, n_train, cfg.batch_size):
                idx = torch.from_numpy(order[s:s + cfg.batch_size])
                h = x_all[idx]
                for i, (w, b) in enumerate(zip(ws, bs, strict=True)):
                    h = h @ w + b
                    if i < len(ws) - 1:
                        h = PHI[cfg.activation](h)
                        if cfg.quantize_bits is not None:
                            h = h + (_q(h, cfg.activation, cfg.quantize_bits) - h).detach()
                loss = F.cross_entropy(h, y_all[r, idx]) + cfg.weight_decay / 2 * sum((w * w).sum() for w in ws)
                opt.zero_grad()
                loss.backward()
                opt.step()
        rows.append(torch.cat([p.detach().reshape(-1) for p in params]).numpy())
    return np.stack(rows)


def _engine(task, cfg):
    setup = prepare(task, cfg)
    snaps = list(iter_training(task, cfg, setup=setup))
    return setup, snaps


SMALL = dict(hidden=(6, 4, 3), repeats=3, epochs=3, snapshots=3, batch_size=512, dtype="float64", seed=7)


# ----------------------------------------------------------------------------------------------- weight decay


@pytest.mark.parametrize(("optimizer", "lr", "wd"), [("adam", 1e-2, 0.05), ("sgd", 0.5, 0.02)])
def test_weight_decay_equals_textbook_penalised_loss(task, optimizer, lr, wd):
    cfg = TrainConfig(**SMALL, optimizer=optimizer, lr=lr, weight_decay=wd)
    setup, snaps = _engine(task, cfg)
    got = snaps[-1].checkpoint["params"]
    ref = _textbook(setup, cfg)
    assert_allclose(got, ref, rtol=0, atol=1e-10, err_msg=f"{optimizer}: engine vs autograd loss + wd/2 sum W^2")
    plain = _textbook(setup, dataclasses.replace(cfg, weight_decay=0.0))
    n_w = sum(w[0].size for w in setup.weights)
    assert np.abs(plain[:, :n_w] - ref[:, :n_w]).max() > 1e-4, "the decay changed the weights (test not vacuous)"
    assert np.linalg.norm(ref[:, :n_w]) < np.linalg.norm(plain[:, :n_w]), "the decay shrinks the weights"


def test_weight_decay_spares_the_biases(task, monkeypatch):
    """With only the decay acting (the gradients of the loss zeroed), one full-batch SGD step shrinks the weights
    by the factor (1 - lr wd) and leaves the biases: the penalty covers the weights only."""
    from ibtheory.nets import model as model_module

    cfg = TrainConfig(**dict(SMALL, epochs=1, batch_size=10**6), optimizer="sgd", lr=0.1, weight_decay=0.5)
    setup = prepare(task, cfg)
    orig = model_module.BatchedMLP._backprop

    def zero_grad(self, x, y, loss):
        orig(self, x, y, loss)
        self.flat_grad.zero_()
        with torch.no_grad():
            self.flat[self.n_weight_values:] = 0.25  # biases at 0.25, to see that the decay leaves them
        return None

    monkeypatch.setattr(model_module.BatchedMLP, "_backprop", zero_grad)
    ck = list(iter_training(task, cfg, setup=setup))[-1].checkpoint
    n_w = sum(w[0].size for w in setup.weights)
    w0 = np.concatenate([w.reshape(cfg.repeats, -1) for w in setup.weights], axis=1)
    assert_allclose(ck["params"][:, :n_w], w0 * (1 - 0.1 * 0.5), rtol=1e-14, atol=0)
    np.testing.assert_array_equal(ck["params"][:, n_w:], 0.25)


def test_knobs_off_are_the_defaults_bit_for_bit(task):
    base = TrainConfig(**SMALL)
    off = TrainConfig(**SMALL, weight_decay=0.0, quantize_bits=None)
    a, b = list(iter_training(task, base)), list(iter_training(task, off))
    for s, t in zip(a, b, strict=True):
        np.testing.assert_array_equal(s.checkpoint["params"], t.checkpoint["params"])
        for x, y in zip(s.activations, t.activations, strict=True):
            np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("bad", [-1e-3, float("nan"), float("inf"), "0.1", None, True])
def test_bad_weight_decay_is_refused_by_name(bad):
    with pytest.raises(ValueError, match="^weight_decay must be"):
        TrainConfig(weight_decay=bad)


# ------------------------------------------------------------------------------------------ full-batch GD


def test_full_batch_sgd_is_one_gradient_step_per_epoch_on_the_mean_training_loss(task):
    """batch_size beyond the training set (even 10^9, which the memory check must not count as a batch): each
    epoch is ONE step W <- W - lr grad (mean CE over all training patterns)."""
    lr = 0.3
    cfg = TrainConfig(**dict(SMALL, epochs=2, snapshots=3, batch_size=10**9), optimizer="sgd", lr=lr)
    setup, snaps = _engine(task, cfg)
    assert [s.checkpoint["opt_step"] for s in snaps] == [0, 1, 2], "one step per epoch"
    x = torch.from_numpy(setup.features)
    y = torch.from_numpy(setup.labels.astype(np.int64))
    params = [torch.tensor(w) for w in setup.weights] + [torch.zeros(cfg.repeats, w.shape[-1], dtype=torch.float64)
                                                          for w in setup.weights]
    L = len(setup.weights)
    for epoch in (1, 2):
        new = []
        for r in range(cfg.repeats):  # gradient of the mean loss over the training patterns, in index order
            ps = [p[r].clone().requires_grad_(True) for p in params]
            idx = torch.from_numpy(np.nonzero(setup.train_mask[r])[0])
            h = x[idx]
            for i in range(L):
                h = h @ ps[i] + ps[L + i]
                h = torch.tanh(h) if i < L - 1 else h
            F.cross_entropy(h, y[r, idx]).backward()
            new.append([(p - lr * p.grad).detach() for p in ps])
        params = [torch.stack([n[j] for n in new]) for j in range(2 * L)]
        rows = torch.cat([p.reshape(cfg.repeats, -1) for p in params], dim=1).numpy()
        assert_allclose(snaps[epoch].checkpoint["params"], rows, rtol=0, atol=1e-12,
                        err_msg=f"epoch {epoch}: full-batch SGD vs one textbook gradient step")
    assert np.isnan(snaps[-1].grad_std_norm).all(), "one gradient per epoch: no spread"


# ------------------------------------------------------------------------------------------- quantization


@pytest.mark.parametrize(("activation", "bits"), [("tanh", 3), ("sigmoid", 2), ("hardtanh", 4)])
def test_snapshot_activations_lie_on_the_grid(task, activation, bits):
    cfg = TrainConfig(**dict(SMALL, epochs=2), activation=activation, quantize_bits=bits, lr=1e-2)
    _, snaps = _engine(task, cfg)
    lo, hi = RANGES[activation]
    n = 2**bits - 1
    for s in snaps:
        for layer, a in enumerate(s.activations[:-1], start=1):  # hidden layers (the softmax is not quantized)
            level = (a.astype(np.float64) - lo) / (hi - lo) * n
            assert_allclose(level, np.round(level), rtol=0, atol=1e-5,
                            err_msg=f"{activation} layer {layer} epoch {s.epoch}: off the 2^{bits} levels")
            assert level.min() >= -1e-5 and level.max() <= n + 1e-5
            distinct = max(len(np.unique(a[r, :, u])) for r in range(a.shape[0]) for u in range(a.shape[2]))
            assert distinct <= 2**bits, f"{activation} layer {layer}: {distinct} values in one unit"
    assert len(np.unique(snaps[-1].activations[0])) > 2, "not all units collapsed (test not vacuous)"


@pytest.mark.parametrize(("activation", "optimizer", "wd"), [("tanh", "adam", 0.0), ("sigmoid", "sgd", 0.01)])
def test_straight_through_training_equals_textbook_autograd(task, activation, optimizer, wd):
    lr = 1e-2 if optimizer == "adam" else 0.5
    cfg = TrainConfig(**SMALL, activation=activation, quantize_bits=3, optimizer=optimizer, lr=lr,
                      weight_decay=wd)
    setup, snaps = _engine(task, cfg)
    ref = _textbook(setup, cfg)
    assert_allclose(snaps[-1].checkpoint["params"], ref, rtol=0, atol=1e-10,
                    err_msg=f"{activation}/{optimizer}: engine vs autograd with a + (q(a) - a).detach()")
    unq = _textbook(setup, dataclasses.replace(cfg, quantize_bits=None))
    assert np.abs(unq - ref).max() > 1e-4, "quantization changed the training (test not vacuous)"


def test_straight_through_gradient_of_one_batch_equals_autograd():
    """The hand-written backward (quantized forward, phi' at the unquantized activation) against autograd through
    ``a + (q(a) - a).detach()``, and against the model's own autograd path (its custom STE function)."""
    from ibtheory.nets.model import BatchedMLP, init_weights

    widths, R, B = (5, 6, 4, 3), 2, 40
    rng = np.random.default_rng(3)
    weights = [w * 2.0 for w in init_weights(widths, data.repeat_generators(1, np.arange(R)))]
    x = torch.from_numpy(rng.normal(size=(R, widths[0], B)))
    y = torch.from_numpy(rng.integers(0, widths[-1], size=(R, B)))
    model = BatchedMLP(widths, "tanh", weights, dtype=torch.float64, quantize_bits=2)
    model.grad_step(x, y)
    hand = model.flat_grad.clone()
    model.autograd_step(x, y)
    assert_allclose(model.flat_grad.numpy(), hand.numpy(), rtol=0, atol=1e-13, err_msg="hand vs model autograd")
    ws = [torch.tensor(w, requires_grad=True) for w in weights]
    bs = [torch.zeros(R, w, dtype=torch.float64, requires_grad=True) for w in widths[1:]]
    h = x.transpose(1, 2)  # (R, B, n_in)
    for i, (w, b) in enumerate(zip(ws, bs, strict=True)):
        h = h @ w + b[:, None, :]
        if i < len(ws) - 1:
            a = torch.tanh(h)
            h = a + (_q(a, "tanh", 2) - a).detach()
    F.cross_entropy(h.transpose(1, 2), y, reduction="sum").div(B).backward()
    ref = torch.cat([p.grad.reshape(-1) for p in ws + bs])
    assert_allclose(hand.numpy(), ref.numpy(), rtol=0, atol=1e-13, err_msg="hand-written STE vs textbook")


@pytest.mark.parametrize(("kw", "match"), [
    (dict(quantize_bits=1), "^quantize_bits must be an integer >= 2"),
    (dict(quantize_bits=17), "^quantize_bits must be an integer <= 16"),
    (dict(quantize_bits=2.5), "^quantize_bits must be an integer"),
    (dict(quantize_bits="4"), "^quantize_bits must be an integer"),
    (dict(quantize_bits=4, activation="relu"), "^quantize_bits needs a bounded activation .*'relu'"),
    (dict(quantize_bits=4, activation="linear"), "^quantize_bits needs a bounded activation .*'linear'"),
])
def test_bad_quantize_bits_are_refused_by_name(kw, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kw)


def test_models_without_quantization_refuse_quantize_bits(task):
    from ibtheory.nets.conv import iter_conv_training
    from ibtheory.nets.model import BatchedMLP

    with pytest.raises(ValueError, match="^quantize_bits needs a bounded activation .*'relu'"):
        BatchedMLP((3, 2, 2), "relu", [np.ones((1, 3, 2)), np.ones((1, 2, 2))], quantize_bits=3)
    images = tasks.tishby()
    images.attrs.update(image_height=3, image_width=4)
    cfg = TrainConfig(hidden=(4,), activation="tanh", repeats=1, epochs=1, snapshots=2, quantize_bits=3)
    with pytest.raises(ValueError, match="^quantize_bits=3 is not supported by this model"):
        next(iter_conv_training(images, cfg, channels=(2,), kernel=3))


# ------------------------------------------------------------------------------ workers, resume, command line


def test_worker_processes_and_resume_carry_the_knobs(task):
    from ibtheory.nets._parallel import iter_training_parallel

    cfg = TrainConfig(**dict(SMALL, epochs=4, snapshots=4), optimizer="adam", lr=1e-2, weight_decay=0.03,
                      quantize_bits=3)
    one = list(iter_training(task, cfg))
    two = list(iter_training_parallel(task, cfg, 2))
    mid = one[-2]
    resumed = list(iter_training(task, cfg, resume=dict(mid.checkpoint, epoch=mid.epoch)))
    assert [s.epoch for s in two] == [s.epoch for s in one] and resumed[-1].epoch == one[-1].epoch
    for name, other in (("2 workers", two[-1]), ("resumed", resumed[-1])):
        for key in ("params", "opt_m", "opt_v"):
            assert_allclose(other.checkpoint[key], one[-1].checkpoint[key], rtol=1e-12, atol=1e-14,
                            err_msg=f"{key}: {name} vs 1 process")
    plain = list(iter_training(task, dataclasses.replace(cfg, weight_decay=0.0)))
    assert np.abs(plain[-1].checkpoint["params"] - one[-1].checkpoint["params"]).max() > 1e-4, "decay carried"


def test_train_help_lists_the_knobs(capsys):
    from ibtheory.cli import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    out = capsys.readouterr().out
    assert "--weight-decay" in out and "--quantize-bits" in out and "full batch" in out
    args = build_parser().parse_args(["train", "--weight-decay", "0.01"])
    assert args.weight_decay == 0.01 and args.quantize_bits is None


def test_command_line_form_of_quantize_bits():
    assert optional_bits("4") == 4 and optional_bits("none") is None and optional_bits("OFF") is None
    with pytest.raises(ValueError, match="^quantize_bits must be an integer in 2..16 or 'none'"):
        optional_bits("four")
