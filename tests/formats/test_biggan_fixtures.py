"""The committed BigGAN fixtures are present and say what their scripts say (no reference code here).

data/biggan_pytorch_tiny/, data/biggan_deep_pytorch_tiny/: weights folders written by
ajbrock/BigGAN-PyTorch's own utils.save_weights after two training iterations (32x32, 10 classes,
G_ch = D_ch = 4, hier, shared embedding, attention at 16 px); made by
scripts/reference/biggan_pytorch.py. data/hf_biggan_deep_tiny/: config.json + pytorch_model.bin of
huggingface/pytorch-pretrained-BigGAN (the 128-px BigGAN-deep block list, channel_width 4, z_dim 8,
legacy torch.save format, converter-like non-contiguous weights); made by
scripts/reference/hf_biggan.py. The *_expected.npz files hold what the references compute from them.
These tests check the files against each other and against the documented inputs; the importer
tests compare ganforge's outputs with the expected arrays.
"""

import io
import json
import os
import pickle
import pickletools
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
import torch
from scipy.stats import truncnorm

DATA = os.path.join(os.path.dirname(__file__), "data")
BIGGAN_FILES = {"G.pth", "G_ema.pth", "D.pth", "G_optim.pth", "D_optim.pth", "state_dict.pth"}
# run -> (model, effective dim_z, width of the first linear layer's input, conditioning input of each ccbn)
BIGGAN_RUNS = {
    "biggan_pytorch_tiny": ("BigGAN", 20, 5, 13),         # hier: 4 slots of 5; ccbn gets [shared(y) (8), z chunk (5)]
    "biggan_deep_pytorch_tiny": ("BigGANdeep", 16, 24, 24),  # linear and every ccbn get [shared(y) (8), z (16)]
}
HF = os.path.join(DATA, "hf_biggan_deep_tiny")
HF_LAYERS = [[False, 16, 16], [True, 16, 16], [False, 16, 16], [True, 16, 8], [False, 8, 8],
             [True, 8, 4], [False, 4, 4], [True, 4, 2], [False, 2, 2], [True, 2, 1]]   # BigGAN128's
HF_TRUNCATIONS = (0.4, 0.5, 1.0, 0.33, 0.345, 0.14)


def _pickle_globals(data: bytes) -> set[str]:
    """The GLOBAL opcodes of a pickle, read without running it."""
    return {arg for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"}


# ------------------------------------------------------------------------------------------------
# BigGAN-PyTorch


@pytest.mark.parametrize("run", sorted(BIGGAN_RUNS))
def test_biggan_pytorch_folder_is_what_save_weights_writes(run):
    folder = os.path.join(DATA, run)
    assert set(os.listdir(folder)) == BIGGAN_FILES
    assert sum(os.path.getsize(os.path.join(folder, f)) for f in BIGGAN_FILES) < 1_000_000
    G = torch.load(os.path.join(folder, "G.pth"), map_location="cpu", weights_only=True)
    G_ema = torch.load(os.path.join(folder, "G_ema.pth"), map_location="cpu", weights_only=True)
    D = torch.load(os.path.join(folder, "D.pth"), map_location="cpu", weights_only=True)
    assert list(G) == list(G_ema)
    assert all(G[k].shape == G_ema[k].shape and G[k].dtype == torch.float32 for k in G)
    # the EMA copy is a different network (decay 0.5 over two iterations)
    assert max(float((G[k] - G_ema[k]).abs().max()) for k in G) > 0.01
    for sd in (G, D):
        # BigGAN-PyTorch's own spectral norm: weight (not weight_orig), u0 [1, out] and sv0 [1], no v
        for k, w in sd.items():
            if k.endswith(".u0"):
                base = k[: -len("u0")]
                assert sd[base + "sv0"].shape == (1,) and w.shape == (1, sd[base + "weight"].shape[0])
        assert not any(k.endswith(("weight_orig", "weight_u", "weight_v")) for k in sd)
    _, _, linear_in, ccbn_in = BIGGAN_RUNS[run]
    assert G["linear.weight"].shape == (16 * 4 * 4, linear_in)   # 16 channels at 4x4, channel-major
    assert G["shared.weight"].shape == (10, 8)
    assert G["blocks.0.0.bn1.gain.weight"].shape[1] == ccbn_in
    assert "blocks.0.0.bn1.gain.bias" not in G   # with G_shared the ccbn linears have no bias
    gammas = [v for k, v in {**G, **D}.items() if k.endswith("gamma")]
    assert gammas and all(g.shape == () and float(g) != 0 for g in gammas)   # attention is switched on
    assert D["embed.weight"].shape == (10, 16) and D["linear.weight"].shape == (1, 16)
    optim = torch.load(os.path.join(folder, "G_optim.pth"), map_location="cpu", weights_only=True)
    assert len(optim["param_groups"][0]["params"]) == len(optim["state"]) > 0


@pytest.mark.parametrize("run", sorted(BIGGAN_RUNS))
def test_biggan_pytorch_state_dict_needs_a_stand_in_for_relu(run):
    path = os.path.join(DATA, run, "state_dict.pth")
    # its config holds the nn.ReLU objects of utils.activation_dict: the plain safe load refuses it
    with pytest.raises(pickle.UnpicklingError, match="ReLU"):
        torch.load(path, map_location="cpu", weights_only=True)
    with zipfile.ZipFile(path) as z:
        (pkl,) = [n for n in z.namelist() if n.endswith("/data.pkl")]
        globals_ = _pickle_globals(z.read(pkl))
    assert globals_ == {"torch.nn.modules.activation ReLU", "__builtin__ set", "collections OrderedDict"}
    with torch.serialization.safe_globals([torch.nn.ReLU]):
        state = torch.load(path, map_location="cpu", weights_only=True)
    model, dim_z, _, _ = BIGGAN_RUNS[run]
    cfg = state["config"]
    assert {k: state[k] for k in ("itr", "epoch")} == {"itr": 2, "epoch": 0}
    assert (cfg["model"], cfg["resolution"], cfg["n_classes"], cfg["G_ch"], cfg["D_ch"]) == (model, 32, 10, 4, 4)
    assert (cfg["hier"], cfg["G_shared"], cfg["shared_dim"]) == (True, True, 8)
    assert (cfg["G_attn"], cfg["D_attn"]) == ("16", "16")
    assert cfg["dim_z"] == dim_z and (cfg["SN_eps"], cfg["BN_eps"]) == (1e-6, 1e-5)
    assert isinstance(cfg["G_activation"], torch.nn.ReLU) and cfg["G_activation"].inplace


@pytest.mark.parametrize("run", sorted(BIGGAN_RUNS))
def test_biggan_pytorch_expected_arrays_match_their_documented_inputs(run):
    ref = np.load(os.path.join(DATA, f"{run}_expected.npz"))
    assert set(ref.files) == {"z", "y", "img_in", "img_G_ema", "img_G", "d_logits", "d_logits_fake"}
    _, dim_z, _, _ = BIGGAN_RUNS[run]
    rs = np.random.RandomState(11)   # as scripts/reference/biggan_pytorch.py draws them
    np.testing.assert_array_equal(ref["z"], rs.randn(4, dim_z).astype(np.float32))
    np.testing.assert_array_equal(ref["y"], rs.randint(0, 10, size=4).astype(np.int64))
    np.testing.assert_array_equal(ref["img_in"], rs.uniform(-1, 1, size=(4, 3, 32, 32)).astype(np.float32))
    for k in ("img_G_ema", "img_G"):
        assert ref[k].shape == (4, 3, 32, 32) and ref[k].dtype == np.float32
        assert np.isfinite(ref[k]).all() and np.abs(ref[k]).max() <= 1   # tanh output
        assert ref[k].std() > 0.1
    assert np.abs(ref["img_G"] - ref["img_G_ema"]).max() > 0.01
    for k in ("d_logits", "d_logits_fake"):
        assert ref[k].shape == (4, 1) and np.isfinite(ref[k]).all()
    assert not np.allclose(ref["d_logits"], ref["d_logits_fake"])


# ------------------------------------------------------------------------------------------------
# pytorch-pretrained-BigGAN


def test_hf_config_is_the_128px_block_list_at_width_4():
    with open(os.path.join(HF, "config.json"), encoding="utf-8") as f:
        cfg = json.load(f)
    assert cfg == {"output_dim": 128, "z_dim": 8, "class_embed_dim": 8, "channel_width": 4, "num_classes": 1000,
                   "layers": HF_LAYERS, "attention_layer_position": 8, "eps": 1e-4, "n_stats": 51}
    assert 4 * 2 ** sum(up for up, _, _ in cfg["layers"]) == cfg["output_dim"]


def test_hf_weights_are_a_legacy_state_dict_with_converter_strides():
    path = os.path.join(HF, "pytorch_model.bin")
    assert not zipfile.is_zipfile(path)
    with open(path, "rb") as f:
        assert pickle.load(f) == 0x1950A86A20F9469CFC6C   # torch's legacy magic number
        assert pickle.load(f) == 1001                     # legacy protocol version
        pickle.load(f)                                    # sys_info
        globals_ = _pickle_globals(f.read())
    assert {"collections OrderedDict", "torch._utils _rebuild_tensor_v2", "torch FloatStorage"} <= globals_
    sd = torch.load(path, map_location="cpu", weights_only=True)
    assert isinstance(sd, OrderedDict) and len(sd) == 506
    assert sd._metadata["generator.gen_z"]["spectral_norm"] == {"weight.version": 1}
    ch = 4
    assert sd["embeddings.weight"].shape == (8, 1000)                      # Linear(num_classes, z_dim)
    assert sd["generator.gen_z.weight_orig"].shape == (4 * 4 * 16 * ch, 2 * 8)   # input cat(z, embed)
    assert {"generator.gen_z.weight_u", "generator.gen_z.weight_v"} <= set(sd)
    # attention is generator.layers.8, so the ten GenBlocks are layers 0..7, 9 and 10
    blocks = sorted({int(k.split(".")[2]) for k in sd if k.startswith("generator.layers.") and ".bn_0." in k})
    assert blocks == [0, 1, 2, 3, 4, 5, 6, 7, 9, 10]
    assert sd["generator.layers.8.gamma"].shape == (1,) and float(sd["generator.layers.8.gamma"]) != 0
    assert sd["generator.layers.8.snconv1x1_theta.weight_orig"].shape == (1, 8, 1, 1)   # 2 * ch channels // 8
    for i, (_, cin, cout) in zip(blocks, HF_LAYERS):
        assert sd[f"generator.layers.{i}.bn_0.running_means"].shape == (51, ch * cin)
        assert sd[f"generator.layers.{i}.conv_3.weight_orig"].shape == (ch * cout, ch * cin // 4, 1, 1)
    assert sd["generator.conv_to_rgb.weight_orig"].shape == (ch, ch, 3, 3)   # channel_width outputs, first 3 kept
    # the rows of running statistics differ, so the truncation value selects something
    means = sd["generator.layers.0.bn_0.running_means"]
    assert not torch.equal(means[20], means[25])
    assert (sd["generator.layers.0.bn_0.running_vars"] > 0).all()
    # the converter's np.transpose views: non-contiguous 2-D and 4-D weights; .view() on them fails
    assert not sd["generator.gen_z.weight_orig"].is_contiguous()
    assert sd["generator.layers.0.conv_1.weight_orig"].stride() == (1, 16, 768, 256)
    with pytest.raises(RuntimeError):
        sd["generator.gen_z.weight_orig"].view(-1)
    # the bytes round-trip: the legacy format keeps the strides
    buf = io.BytesIO()
    torch.save(sd, buf, _use_new_zipfile_serialization=False)
    again = torch.load(io.BytesIO(buf.getvalue()), weights_only=True)
    assert again["generator.gen_z.weight_orig"].stride() == (1, 1024)


def test_hf_expected_arrays_match_their_documented_inputs():
    ref = np.load(os.path.join(HF, os.pardir, "hf_biggan_deep_tiny_expected.npz"))
    keys = {"class_idx", "one_hot", "z", "class_mix", "img_mix_t0.5"}
    keys |= {f"{p}_t{t}" for t in HF_TRUNCATIONS for p in ("z", "img")}
    keys |= {f"trunc_noise_seed{s}_t0.5" for s in (0, 1, 2)}
    assert set(ref.files) == keys
    np.testing.assert_array_equal(ref["class_idx"], np.random.RandomState(12).randint(0, 1000, size=3))
    assert ref["one_hot"].shape == (3, 1000) and (ref["one_hot"].argmax(1) == ref["class_idx"]).all()
    np.testing.assert_array_equal(ref["one_hot"].sum(1), 1)
    np.testing.assert_array_equal(ref["class_mix"], 0.5 * ref["one_hot"] + 0.5 * ref["one_hot"][[1, 2, 0]])
    # their sampler: scipy's truncnorm(-2, 2) drawn with RandomState(seed), times the truncation
    draws = truncnorm.rvs(-2, 2, size=(3, 8), random_state=np.random.RandomState(12)).astype(np.float32)
    np.testing.assert_array_equal(ref["z"], draws)
    for t in HF_TRUNCATIONS:
        np.testing.assert_array_equal(ref[f"z_t{t}"], t * draws)
        img = ref[f"img_t{t}"]
        assert img.shape == (3, 3, 128, 128) and np.isfinite(img).all() and np.abs(img).max() <= 1
        assert img.std() > 0.1
    for s in (0, 1, 2):
        want = 0.5 * truncnorm.rvs(-2, 2, size=(1, 8), random_state=np.random.RandomState(s)).astype(np.float32)
        np.testing.assert_array_equal(ref[f"trunc_noise_seed{s}_t0.5"], want)
    assert np.abs(ref["img_t0.4"] - ref["img_t0.5"]).max() > 0.1
    assert np.abs(ref["img_mix_t0.5"] - ref["img_t0.5"]).max() > 0.01   # the class mixture changes the image
