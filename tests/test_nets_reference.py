"""The training engine against a textbook reference: per repeat, torch.nn layers + autograd + torch.optim.Adam on the
same data, initial weights and minibatch orders, in float64; the binned information plane must agree to 1e-6 bits.

The engine (one flat parameter buffer, hand-written backward for the MLP, one fused Adam step over all repeats,
minibatches gathered on the device) shares nothing with the reference but the inputs: the task, each repeat's
initial weights, split, labels and shuffle key (``prepare`` / the conv net's ``_build``), and the orders of
:func:`ibtheory.nets.data.epoch_orders`.
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from numpy.testing import assert_allclose

from ibtheory import tasks
from ibtheory.estimators import binned_information
from ibtheory.nets import data
from ibtheory.nets.loop import TrainConfig, iter_training, prepare

TOL_BITS = 1e-6


def _textbook_training(nets, features, labels, train_mask, keys, config, snap_epochs, layers_of):
    """Train each repeat's ``torch.nn`` network alone with autograd and ``torch.optim.Adam``; return
    {epoch: [layer activations (R, n_x, width) float32]} at ``snap_epochs`` (the softmax output last)."""
    R = len(nets)
    x_all = torch.from_numpy(features)
    y_all = torch.from_numpy(labels.astype(np.int64))
    train_idx = np.nonzero(train_mask)[1].reshape(R, -1)
    opts = [torch.optim.Adam(net.parameters(), lr=config.lr) for net in nets]
    out = {}

    def record(epoch):
        with torch.no_grad():
            per_repeat = [layers_of(net, x_all) for net in nets]
        out[epoch] = [np.stack([acts[i].float().numpy() for acts in per_repeat]) for i in range(len(per_repeat[0]))]

    if 0 in snap_epochs:
        record(0)
    for epoch in range(1, config.epochs + 1):
        order = np.take_along_axis(train_idx, data.epoch_orders(keys, epoch, train_idx.shape[1]), axis=1)
        for r, (net, opt) in enumerate(zip(nets, opts, strict=True)):  # the textbook way: one network at a time
            for s in range(0, order.shape[1], config.batch_size):
                idx = torch.from_numpy(order[r, s:s + config.batch_size])
                opt.zero_grad()
                F.cross_entropy(layers_of(net, x_all[idx])[-1], y_all[r, idx]).backward()
                opt.step()
        if epoch in snap_epochs:
            record(epoch)
    for acts in out.values():  # softmax output, as the snapshots record it
        acts[-1] = torch.softmax(torch.from_numpy(acts[-1]).double(), dim=-1).float().numpy()
    return out


def _assert_planes_agree(engine_snaps, reference, p_x, p_yx, limits, what):
    assert [s.epoch for s in engine_snaps] == sorted(reference), what
    for snap in engine_snaps:
        for layer, (a, b) in enumerate(zip(snap.activations, reference[snap.epoch], strict=True), start=1):
            assert_allclose(a, b, rtol=0, atol=1e-5, err_msg=f"{what}: activations of layer {layer} at epoch "
                            f"{snap.epoch} (float32 copies of float64 networks)")
            e = binned_information(a, p_x, p_yx, n_bins=30, limits=limits)
            r = binned_information(b, p_x, p_yx, n_bins=30, limits=limits)
            for name in ("I_XT", "I_TY"):
                assert_allclose(getattr(e, name), getattr(r, name), rtol=0, atol=TOL_BITS,
                                err_msg=f"{what}: {name} of layer {layer} at epoch {snap.epoch}, engine vs textbook "
                                f"autograd + torch.optim.Adam (atol {TOL_BITS} bits)")


def test_mlp_engine_equals_textbook_autograd_and_adam():
    task = tasks.tishby()
    cfg = TrainConfig(repeats=3, epochs=300, snapshots=8, dtype="float64", seed=3)
    setup = prepare(task, cfg)
    snaps = list(iter_training(task, cfg, setup=setup))
    widths = (setup.features.shape[1],) + cfg.hidden + (2,)
    nets = []
    for r in range(cfg.repeats):
        lins = [torch.nn.Linear(i, o).double() for i, o in zip(widths[:-1], widths[1:], strict=True)]
        with torch.no_grad():
            for lin, w in zip(lins, setup.weights, strict=True):
                lin.weight.copy_(torch.from_numpy(w[r]).T)
                lin.bias.zero_()
        nets.append(torch.nn.ModuleList(lins))

    def layers_of(net, x):
        out, h = [], x
        for i, lin in enumerate(net):
            h = lin(h) if i == len(net) - 1 else torch.tanh(lin(h))
            out.append(h)
        return out

    ref = _textbook_training(nets, setup.features, setup.labels, setup.train_mask, setup.keys, cfg,
                             {s.epoch for s in snaps}, layers_of)
    _assert_planes_agree(snaps, ref, setup.p_x, setup.p_y_given_x, (-1.0, 1.0), "MLP 12-10-7-5-4-3-2 tanh")
    late = binned_information(snaps[-1].activations[0], setup.p_x, setup.p_y_given_x).I_XT
    assert np.all(late > 1.0), "the networks learned something (layer 1 keeps > 1 bit), so the test is not vacuous"


def test_conv_engine_equals_textbook_autograd_and_adam():
    from ibtheory.nets.conv import _build, iter_conv_training

    images = tasks.tishby()
    images.attrs.update(image_height=3, image_width=4)
    cfg = TrainConfig(hidden=(4,), activation="relu", repeats=2, epochs=100, snapshots=6, batch_size=1024, lr=1e-3,
                      dtype="float64", seed=1)
    setup = _build(images, cfg, (2,), 3)
    model = setup.model
    init_w = [w.detach().clone() for w in model.weights]
    snaps = list(iter_conv_training(images, cfg, (2,), 3, setup=setup))
    nets = []
    for r in range(cfg.repeats):
        conv = torch.nn.Conv2d(1, 2, 3, padding=1).double()
        fc = [torch.nn.Linear(i, o).double() for i, o in zip(model.widths[:-1][-2:], model.widths[-2:], strict=True)]
        with torch.no_grad():
            conv.weight.copy_(init_w[0][r])
            conv.bias.zero_()
            for lin, w in zip(fc, init_w[1:], strict=True):
                lin.weight.copy_(w[r].T)
                lin.bias.zero_()
        nets.append(torch.nn.ModuleList([conv, *fc]))

    def layers_of(net, x):
        conv, fc1, out_layer = net
        h1 = F.max_pool2d(torch.relu(conv(x.reshape(-1, 1, 3, 4))), 2).flatten(1)  # (B, 2 x 1 x 2), channel-major
        h2 = torch.relu(fc1(h1))
        return [h1, h2, out_layer(h2)]

    ref = _textbook_training(nets, setup.features, setup.labels, setup.train_mask, setup.keys, cfg,
                             {s.epoch for s in snaps}, layers_of)
    _assert_planes_agree(snaps, ref, setup.p_x, setup.p_y_given_x, "adaptive", "conv net (2 channels, 3x3) relu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_mlp_engine_on_cuda_equals_the_cpu_engine():
    task = tasks.tishby()
    planes = []
    for device in ("cpu", "cuda"):
        cfg = TrainConfig(repeats=3, epochs=100, snapshots=5, dtype="float64", seed=3, device=device)
        snaps = list(iter_training(task, cfg))
        planes.append([[binned_information(a, np.full(4096, 1 / 4096), task["p_xy"].values * 4096).I_XT
                        for a in s.activations] for s in snaps])
    assert_allclose(planes[1], planes[0], rtol=0, atol=TOL_BITS, err_msg="I(X;T) per layer: CUDA vs CPU engine")
