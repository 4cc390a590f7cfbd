"""The feature-map memory layout is a run-time setting of a network (set_channels_last), never an
architecture argument nor an environment variable read at import."""

import json
import os
import subprocess
import sys

import pytest
import torch

from testkit import tiny_D, tiny_G
from ganforge.nn.layers import Conv2dLayer
from ganforge.models.stylegan2 import SynthesisLayer


def _run(G, D, z, setting):
    """G's image, D's logits, the gradients of both w.r.t. their inputs and the parameter gradients, and the
    layout of every feature map (> 4 channels) the 3x3 convolutions of G's and D's blocks produced (D's 4x4
    epilogue takes the layout of minibatch stddev's concatenation, NCHW, whatever the setting)."""
    G.set_channels_last(setting)
    D.set_channels_last(setting)
    layouts = []
    hooks = [m.register_forward_hook(lambda m, i, o: layouts.append(
        "nchw" if o.is_contiguous() else "cl" if o.is_contiguous(memory_format=torch.channels_last) else "?"))
        for net in (G, D) for m in net.modules() if isinstance(m, (SynthesisLayer, Conv2dLayer))
        and m.weight.shape[0] > 4 and m.weight.shape[-1] == 3 and m is not D.b4.conv]  # D.b4.conv: after mbstd's cat
    ws = G.mapping(z, None).detach().requires_grad_(True)
    img = G.synthesis(ws, noise_mode="const")
    (g_ws,) = torch.autograd.grad((img * img.detach().sin()).sum(), ws, create_graph=True)
    x = img.detach().requires_grad_(True)
    logits = D(x, None)
    (g_x,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    params = list(G.parameters()) + list(D.parameters())
    grads = torch.autograd.grad(g_ws.square().sum() + g_x.square().sum() + logits.sum() + img.sum(), params,
                                allow_unused=True)
    for h in hooks:
        h.remove()
    return layouts, [img, logits, g_ws, g_x] + [g for g in grads if g is not None]


@pytest.mark.parametrize("arch", ["skip", "resnet", "orig"])
def test_set_channels_last_chooses_the_layout_and_keeps_the_values(arch):
    G, D = tiny_G(res=16, architecture=arch), tiny_D(res=16, architecture=arch)
    z = torch.randn(4, 16, generator=torch.Generator().manual_seed(0))
    runs = {s: _run(G, D, z, s) for s in (False, True, None)}
    assert runs[False][0] and set(runs[False][0]) == {"nchw"}  # False: NCHW inside, on a CPU too
    assert set(runs[True][0]) == {"cl"}
    assert set(runs[None][0]) == {"cl"}                         # auto: channels_last on a CPU
    for s in (True, None):
        for a, b in zip(runs[False][1], runs[s][1]):
            assert a.shape == b.shape
            assert torch.allclose(a, b, rtol=1e-4, atol=1e-5 * b.abs().max().item()), (a - b).abs().max()


def test_channels_last_reaches_every_layout_aware_module_and_is_not_architecture():
    import copy

    G, D = tiny_G(), tiny_D(res=16, architecture="skip")
    keys = (set(G.state_dict()), set(D.state_dict()))
    kwargs = (json.dumps(G.init_kwargs, sort_keys=True), json.dumps(D.init_kwargs, sort_keys=True))
    assert G.set_channels_last(False) is G and D.set_channels_last(True) is D
    aware_G = [m for m in G.modules() if "channels_last" in vars(m)]
    aware_D = [m for m in D.modules() if "channels_last" in vars(m)]
    assert any(isinstance(m, Conv2dLayer) for m in aware_D)  # fromRGB's 1x1 matmul picks its result's layout
    assert all(m.channels_last is False for m in aware_G) and all(m.channels_last is True for m in aware_D)
    assert copy.deepcopy(G).synthesis.b8.channels_last is False  # G_ema copies keep the setting
    assert (set(G.state_dict()), set(D.state_dict())) == keys
    assert (json.dumps(G.init_kwargs, sort_keys=True), json.dumps(D.init_kwargs, sort_keys=True)) == kwargs
    for bad in ("auto", 1, "off"):
        with pytest.raises(ValueError, match="channels_last must be True, False or None"):
            G.set_channels_last(bad)


def test_layout_switches_are_no_constructor_arguments():
    # The old `channels_last` / `fp16_channels_last` arguments did nothing; they are gone.
    from ganforge.models.stylegan2 import Discriminator, Generator

    with pytest.raises(TypeError):
        Conv2dLayer(8, 8, 3, channels_last=True)
    with pytest.raises(TypeError):
        tiny_G(fp16_channels_last=True)
    with pytest.raises(TypeError):
        tiny_D(block_kwargs=dict(fp16_channels_last=True))
    assert Generator and Discriminator


def test_importing_ganforge_reads_no_layout_environment_variable():
    # GANFORGE_CHANNELS_LAST=0 used to switch every network in the process to NCHW at import time.
    code = ("import torch, ganforge\n"
            "from ganforge.nn import resample\n"
            "from ganforge.models.stylegan2 import Generator\n"
            "assert not hasattr(resample, 'CPU_CHANNELS_LAST')\n"
            "G = Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=8, img_channels=3,\n"
            "              mapping_kwargs=dict(num_layers=1), synthesis_kwargs=dict(channel_base=128, channel_max=16))\n"
            "out = []\n"
            "G.synthesis.b8.conv1.register_forward_hook(lambda m, i, o: out.append(o.is_contiguous()))\n"
            "G(torch.randn(2, 8), None)\n"
            "print('nchw' if out[0] else 'channels_last')\n")
    env = dict(os.environ, GANFORGE_CHANNELS_LAST="0", OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "channels_last"  # the default (auto) on a CPU, whatever the environment says


def test_old_configs_with_layout_kwargs_still_load(tmp_path):
    # A config.json that recorded the former do-nothing switches loads (they are dropped), with the same weights.
    from ganforge.formats import Checkpoint, load

    G, D = tiny_G(), tiny_D()
    Checkpoint(G=G, G_ema=G, D=D).save(tmp_path / "net")
    cfg_path = tmp_path / "net" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["G_kwargs"]["synthesis_kwargs"]["fp16_channels_last"] = True
    cfg["G_kwargs"]["fp16_channels_last"] = False
    cfg["D_kwargs"]["block_kwargs"]["fp16_channels_last"] = True
    cfg_path.write_text(json.dumps(cfg))
    ck = load(tmp_path / "net")
    for a, b in ((ck.G_ema, G), (ck.D, D)):
        sa, sb = a.state_dict(), b.state_dict()
        assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert "fp16_channels_last" not in json.dumps(ck.G_ema.init_kwargs)


def test_nvidia_pickle_layout_kwargs_import_and_export(tmp_path):
    # NVIDIA's constructors take fp16_channels_last (--nhwc) and their blocks store channels_last: imported
    # kwargs drop them (run-time only); exported blocks record NVIDIA's default, False, whatever the run-time
    # setting of the ganforge network, and the exported init_kwargs leave NVIDIA's defaults in force.
    import io

    from ganforge.formats import Checkpoint, nvidia_pkl
    from ganforge.formats.unpickler import load_pickle

    G, D = tiny_G().set_channels_last(True), tiny_D().set_channels_last(None)
    nvidia_pkl.write(Checkpoint(G=G, G_ema=G, D=D), tmp_path / "n.pkl")
    data = load_pickle(tmp_path / "n.pkl")
    g_blocks = data["G_ema"].state["_modules"]["synthesis"].state["_modules"]
    d_blocks = data["D"].state["_modules"]
    assert g_blocks["b8"].state["channels_last"] is False and d_blocks["b8"].state["channels_last"] is False
    assert "channels_last" not in json.dumps(data["G_ema"].init_kwargs, default=str)
    back = nvidia_pkl.read_objects(data, "n.pkl")
    assert back.G_ema.synthesis.b8.channels_last is None  # a fresh import: auto

    rec = nvidia_pkl._record(G, "", init_kwargs=dict(
        z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3, mapping_kwargs={"num_layers": 2},
        synthesis_kwargs=dict(channel_base=256, channel_max=32, fp16_channels_last=True, channels_last=True)))
    buf = io.BytesIO()
    nvidia_pkl._NvidiaPickler(buf, protocol=4).dump(rec)
    kw = nvidia_pkl.generator_kwargs(load_pickle(io.BytesIO(buf.getvalue())))
    assert kw["synthesis_kwargs"] == {"channel_base": 256, "channel_max": 32}
