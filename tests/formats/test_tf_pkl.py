"""TensorFlow StyleGAN2 pickles, crafted here with the documented layout (shared/reference/nvlabs.md §3.2).

The tests write a (G, D, Gs) tuple of objects whose class is named dnnlib.tflib.network.Network (a
stand-in module registered in sys.modules for the test only), holding TF-shaped numpy variables
([in, out] dense, [kh, kw, in, out] conv, up-conv kernels as TF stores them, mod_bias without the +1).
"""

import math
import pickle
import sys
import types

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import ganforge
from testkit import tiny_D, tiny_G
from ganforge.errors import FormatError


class Network:
    """What the TF code pickles: __getstate__ -> dict (the real class exec's build_module_src on load)."""

    def __init__(self, state):
        self._state = state

    def __getstate__(self):
        return self._state


Network.__module__ = "dnnlib.tflib.network"


@pytest.fixture
def tf_module(monkeypatch):
    for name in ("dnnlib", "dnnlib.tflib", "dnnlib.tflib.network"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    sys.modules["dnnlib.tflib.network"].Network = Network
    return Network


def _np(t):
    return t.detach().cpu().numpy().astype(np.float32)


def tf_dense(w):  # ours [out, in] -> TF [in, out]
    return np.ascontiguousarray(_np(w).T)


def tf_conv(w):  # ours [out, in, kh, kw] -> TF [kh, kw, in, out]
    return np.ascontiguousarray(_np(w).transpose(2, 3, 1, 0))


def tf_up_conv(w):  # TF stores up-conv kernels flipped relative to ours
    return np.ascontiguousarray(tf_conv(w)[::-1, ::-1])


def generator_vars(G, lod_names=False):
    sd = G.state_dict()
    top = [("dlatent_avg", _np(sd["mapping.w_avg"])), ("lod", np.float32(0))]
    mapping = []
    for i in range(G.mapping.num_layers):
        mapping += [(f"Dense{i}/weight", tf_dense(sd[f"mapping.fc{i}.weight"])), (f"Dense{i}/bias", _np(sd[f"mapping.fc{i}.bias"]))]
    if G.c_dim:
        mapping += [("LabelEmbed/weight", tf_dense(sd["mapping.embed.weight"])), ("LabelEmbed/bias", _np(sd["mapping.embed.bias"]))]
    syn = [("lod", np.float32(0))]
    arch = G.init_kwargs["synthesis_kwargs"].get("architecture", "skip")

    def layer(tf, ours, conv_fn, noise_idx):
        out = [(f"{tf}/weight", conv_fn(sd[f"{ours}.weight"])), (f"{tf}/bias", _np(sd[f"{ours}.bias"])),
               (f"{tf}/mod_weight", tf_dense(sd[f"{ours}.affine.weight"])),
               (f"{tf}/mod_bias", _np(sd[f"{ours}.affine.bias"]) - 1)]
        if noise_idx is not None:
            out += [(f"{tf}/noise_strength", _np(sd[f"{ours}.noise_strength"])),
                    (f"noise{noise_idx}", _np(sd[f"{ours}.noise_const"])[None, None])]
        return out

    res = G.img_resolution
    for r in G.synthesis.block_resolutions:
        b = f"synthesis.b{r}"
        if r == 4:
            syn += [("4x4/Const/const", _np(sd[f"{b}.const"])[None])]
            syn += layer("4x4/Conv", f"{b}.conv1", tf_conv, 0)
        else:
            k = int(math.log2(r))
            syn += layer(f"{r}x{r}/Conv0_up", f"{b}.conv0", tf_up_conv, 2 * k - 5)
            syn += layer(f"{r}x{r}/Conv1", f"{b}.conv1", tf_conv, 2 * k - 4)
            if arch == "resnet":
                syn += [(f"{r}x{r}/Skip/weight", tf_up_conv(sd[f"{b}.skip.weight"]))]
        if f"{b}.torgb.weight" in sd:
            name = f"ToRGB_lod{int(math.log2(res // r))}" if lod_names else f"{r}x{r}/ToRGB"
            syn += layer(name, f"{b}.torgb", tf_conv, None)
    return top, mapping, syn


def discriminator_vars(D):
    sd = D.state_dict()
    out = []
    for r in D.block_resolutions:
        if f"b{r}.fromrgb.weight" in sd:
            out += [(f"{r}x{r}/FromRGB/weight", tf_conv(sd[f"b{r}.fromrgb.weight"])), (f"{r}x{r}/FromRGB/bias", _np(sd[f"b{r}.fromrgb.bias"]))]
        out += [(f"{r}x{r}/Conv0/weight", tf_conv(sd[f"b{r}.conv0.weight"])), (f"{r}x{r}/Conv0/bias", _np(sd[f"b{r}.conv0.bias"])),
                (f"{r}x{r}/Conv1_down/weight", tf_conv(sd[f"b{r}.conv1.weight"])), (f"{r}x{r}/Conv1_down/bias", _np(sd[f"b{r}.conv1.bias"]))]
        if f"b{r}.skip.weight" in sd:
            out += [(f"{r}x{r}/Skip/weight", tf_conv(sd[f"b{r}.skip.weight"]))]
    if D.c_dim:
        out += [("LabelEmbed/weight", tf_dense(sd["mapping.embed.weight"])), ("LabelEmbed/bias", _np(sd["mapping.embed.bias"]))]
        for i in range(D.mapping.num_layers):
            out += [(f"Mapping{i}/weight", tf_dense(sd[f"mapping.fc{i}.weight"])), (f"Mapping{i}/bias", _np(sd[f"mapping.fc{i}.bias"]))]
    out += [("4x4/Conv/weight", tf_conv(sd["b4.conv.weight"])), ("4x4/Conv/bias", _np(sd["b4.conv.bias"])),
            ("4x4/Dense0/weight", tf_dense(sd["b4.fc.weight"])), ("4x4/Dense0/bias", _np(sd["b4.fc.bias"])),
            ("Output/weight", tf_dense(sd["b4.out.weight"])), ("Output/bias", _np(sd["b4.out.bias"]))]
    return out


def net(name, static_kwargs, variables, components=None, version=4):
    return Network(dict(version=version, name=name, static_kwargs=static_kwargs, components=components or {},
                        build_module_src="raise SystemExit('TF build code must never run')",
                        build_func_name="training.networks_stylegan2.G_main", variables=variables))


def write_tf_pickle(path, G, D, G_kwargs, D_kwargs, lod_names=False, version=4):
    nets = []
    for name, g in (("G", G), ("Gs", G)):
        top, mapping, syn = generator_vars(g, lod_names)
        nets.append(net(name, G_kwargs, top, dict(mapping=net("G_mapping", {}, mapping),
                                                  synthesis=net("G_synthesis", {}, syn)), version))
    d = net("D", D_kwargs, discriminator_vars(D), version=version)
    with open(path, "wb") as f:
        pickle.dump((nets[0], d, nets[1]), f, protocol=3)


def _random(G):
    with torch.no_grad():
        for n, t in G.named_parameters():
            t.add_(torch.randn_like(t) * 0.2)
        if hasattr(G, "mapping") and hasattr(G.mapping, "w_avg"):
            G.mapping.w_avg.normal_()
    return G


def G_kwargs_tf(c_dim=0, architecture="skip"):
    # tiny_G: z = w = 16, 16x16, channel_base 256 (TF fmap_base 128), channel_max 32, 2 mapping layers
    return dict(latent_size=16, label_size=c_dim, dlatent_size=16, resolution=16, num_channels=3, fmap_base=128,
                fmap_max=32, mapping_layers=2, architecture=architecture, truncation_psi=0.5)


def D_kwargs_tf(c_dim=0):
    return dict(label_size=c_dim, resolution=16, num_channels=3, fmap_base=128, fmap_max=32,
                mapping_layers=1 if c_dim else 0, mbstd_group_size=4)


def test_every_variable_lands_in_place(tmp_path, tf_module):
    G = _random(tiny_G(c_dim=3))
    D = _random(tiny_D(c_dim=3, mapping_kwargs=dict(num_layers=1, lr_multiplier=0.1)))
    write_tf_pickle(tmp_path / "tf.pkl", G, D, G_kwargs_tf(3), D_kwargs_tf(3))
    ck = ganforge.load(tmp_path / "tf.pkl")
    assert ck.config["source_format"] == "tf-pkl"
    for ours, ref in ((ck.G_ema, G), (ck.G, G), (ck.D, D)):
        a, b = ours.state_dict(), ref.state_dict()
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), k
    assert ck.G_ema.init_kwargs["synthesis_kwargs"]["channel_base"] == 256  # 2 * fmap_base
    assert ck.D.init_kwargs["mapping_kwargs"]["lr_multiplier"] == 0.1
    z, c = torch.randn(3, 16), torch.eye(3)
    with torch.no_grad():
        assert torch.equal(ck.G_ema(z, c, noise_mode="const"), G.eval().requires_grad_(False)(z, c, noise_mode="const"))


def _fir_up(y):
    """TF's _simple_upfirdn_2d after the transposed conv: pad 1 on each side, [1,3,3,1] filter with gain 4."""
    k = torch.tensor([1.0, 3.0, 3.0, 1.0])
    k = torch.outer(k, k)
    k = k / k.sum() * 4
    c = y.shape[1]
    return F.conv2d(F.pad(y, [1, 1, 1, 1]), k.flip([0, 1])[None, None].repeat(c, 1, 1, 1), groups=c)


def test_up_conv_layer_matches_tf_semantics(tmp_path, tf_module):
    """b8.conv0 loaded from TF variables computes what TF's modulated up-conv computes from them:
    s = w @ mod_weight / sqrt(w_dim) + mod_bias + 1; W' = demod(W * s); y = conv2d_transpose(x, W'[::-1, ::-1]),
    stride 2; FIR up; + noise_strength * noise + bias; lrelu(0.2) * sqrt(2)."""
    G = _random(tiny_G())
    write_tf_pickle(tmp_path / "tf.pkl", G, _random(tiny_D()), G_kwargs_tf(), D_kwargs_tf())
    layer = ganforge.load(tmp_path / "tf.pkl").G_ema.synthesis.b8.conv0
    _, _, syn = generator_vars(G)
    V = {k: torch.from_numpy(np.array(v)) for k, v in syn}
    W, mw, mb = V["8x8/Conv0_up/weight"], V["8x8/Conv0_up/mod_weight"], V["8x8/Conv0_up/mod_bias"]
    kh, kw, I, O = W.shape
    x, w = torch.randn(2, I, 4, 4), torch.randn(2, 16)
    ys = []
    for n in range(2):
        s = w[n] @ mw / math.sqrt(mw.shape[0]) + mb + 1
        Wm = W / math.sqrt(I * kh * kw) * s[None, None, :, None]
        Wm = Wm * (Wm.square().sum(dim=(0, 1, 2)) + 1e-8).rsqrt()
        kernel = Wm.flip([0, 1]).permute(2, 3, 0, 1)  # [in, out, kh, kw] for conv_transpose2d
        ys.append(_fir_up(F.conv_transpose2d(x[n:n + 1], kernel, stride=2)))
    y = torch.cat(ys) + V["8x8/Conv0_up/noise_strength"] * V["noise1"][0, 0] + V["8x8/Conv0_up/bias"][None, :, None, None]
    y = F.leaky_relu(y, 0.2) * math.sqrt(2)
    with torch.no_grad():
        ours = layer(x, w, noise_mode="const")
    assert (ours - y).abs().max() < 1e-5
    # and the unflipped kernel would be wrong: the test can tell the difference
    assert (layer.weight - torch.from_numpy(tf_conv(layer.weight)).permute(3, 2, 0, 1)).abs().max() == 0
    flipped = layer.weight.flip([2, 3])
    assert (flipped - layer.weight).abs().max() > 1e-3


def test_resnet_generator_and_lod_aliases(tmp_path, tf_module):
    G = _random(tiny_G(architecture="resnet"))
    write_tf_pickle(tmp_path / "r.pkl", G, _random(tiny_D()), G_kwargs_tf(architecture="resnet"), D_kwargs_tf(),
                    lod_names=True)
    ck = ganforge.load(tmp_path / "r.pkl")
    assert all(torch.equal(ck.G_ema.state_dict()[k], v) for k, v in G.state_dict().items())


def test_tf_errors_are_clear(tmp_path, tf_module):
    G, D = _random(tiny_G()), _random(tiny_D())
    write_tf_pickle(tmp_path / "v3.pkl", G, D, G_kwargs_tf(), D_kwargs_tf(), version=3)
    with pytest.raises(FormatError, match="version 3 is StyleGAN \\(1\\)"):
        ganforge.load(tmp_path / "v3.pkl")
    kw = dict(G_kwargs_tf(), resolution_w=32)
    write_tf_pickle(tmp_path / "k.pkl", G, D, kw, D_kwargs_tf())
    with pytest.raises(FormatError, match="cannot map: resolution_w=32"):
        ganforge.load(tmp_path / "k.pkl")
    # a variable that fits nowhere
    top, mapping, syn = generator_vars(G)
    g = net("G", G_kwargs_tf(), top + [("mystery/weight", np.zeros(3, np.float32))],
            dict(mapping=net("m", {}, mapping), synthesis=net("s", {}, syn)))
    with open(tmp_path / "x.pkl", "wb") as f:
        pickle.dump((g, net("D", D_kwargs_tf(), discriminator_vars(D)), g), f, protocol=3)
    with pytest.raises(FormatError, match="cannot place: mystery/weight"):
        ganforge.load(tmp_path / "x.pkl")
