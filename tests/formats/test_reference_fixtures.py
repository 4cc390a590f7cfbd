"""Files written by the reference implementations' own serialisation, not by ganforge's writers.

data/nvidia_snapshot_tiny.pkl: a training snapshot (G, D, G_ema, the ADA pipe at p = 0.25, the
training_set_kwargs dict) pickled by NVIDIA's stylegan2-ada-pytorch exactly as its training loop
pickles network-snapshot-*.pkl (torch_utils.persistence), 32x32 unconditional, mixed-precision
settings (num_fp16_res 2, conv_clamp 256). Every `module_src` (the full text of NVIDIA's
training/networks.py and training/augment.py) was then replaced by a one-line comment: NVIDIA's
source must not be in this repository. data/rosinality_train_tiny.pt: a checkpoint saved by
rosinality's own train.py (its train() run for one iteration), 16x16. The *_expected.npz files hold
what the reference computes from these files (CPU, float32, const noise). Both are made by
scripts/reference/nvidia_networks.py and scripts/reference/rosinality.py, which also say how the
inputs were drawn.
"""

import argparse
import os
import pickletools

import numpy as np
import pytest
import torch

import ganforge
from ganforge.formats import nvidia_pkl
from ganforge.formats.unpickler import PersistentObject, load_pickle

DATA = os.path.join(os.path.dirname(__file__), "data")
NV_PKL = os.path.join(DATA, "nvidia_snapshot_tiny.pkl")
ROS_PT = os.path.join(DATA, "rosinality_train_tiny.pt")
# float32 on CPU; the references and ganforge sum in different orders. Images (std ~1.5-2.5):
# measured differences <= 4e-6 (NVIDIA), 2.5e-6 (rosinality). D logits (|x| < 1): <= 7e-7; their
# tolerance is tighter, so that a change of 0.01 in one weight of one D conv (which moves the
# logits by 2.6e-5 to 8e-5) fails the test.
TOL = 1e-4
D_TOL = 1e-5


def _max_diff(a: torch.Tensor, b: np.ndarray) -> float:
    assert tuple(a.shape) == b.shape
    return float(np.abs(a.numpy() - b).max())


@pytest.fixture(scope="module")
def nvidia():
    return ganforge.load(NV_PKL), np.load(os.path.join(DATA, "nvidia_snapshot_tiny_expected.npz"))


def test_nvidia_snapshot_outputs_match_nvidias(nvidia):
    ck, ref = nvidia
    z, img = torch.from_numpy(ref["z"]), torch.from_numpy(ref["img"])
    G = ck.G_ema
    syn = G.init_kwargs["synthesis_kwargs"]
    assert (G.img_resolution, G.c_dim, G.z_dim, syn["num_fp16_res"], syn["conv_clamp"]) == (32, 0, 16, 2, 256)
    with torch.no_grad():
        for psi in (1.0, 0.5):
            assert _max_diff(G(z, None, truncation_psi=psi, noise_mode="const"), ref[f"img_psi{psi}"]) <= TOL, psi
        assert _max_diff(G(z, None, noise_mode="none"), ref["img_noise_none"]) <= TOL
        assert _max_diff(G.mapping(z, None, truncation_psi=0.5), ref["ws_psi0.5"]) <= TOL
        assert _max_diff(ck.G(z, None, noise_mode="const"), ref["g_img"]) <= TOL  # the training G, not G_ema
        assert _max_diff(ck.D(img, None), ref["d_logits"]) <= D_TOL
    # the comparisons above can fail: truncation, noise and G vs G_ema each move the images
    assert np.abs(ref["img_psi1.0"] - ref["img_psi0.5"]).max() > 0.1
    assert np.abs(ref["img_psi1.0"] - ref["img_noise_none"]).max() > 0.1
    assert np.abs(ref["img_psi1.0"] - ref["g_img"]).max() > 0.1


def test_nvidia_snapshot_training_state_is_read(nvidia):
    ck, ref = nvidia
    training = ck.config["training"]
    assert training["augment_p"] == pytest.approx(float(ref["augment_p"]))
    assert training["training_set_kwargs"]["class_name"] == "training.dataset.ImageFolderDataset"
    assert training["training_set_kwargs"]["resolution"] == 32


def test_nvidia_snapshot_is_nvidias_pickle_without_nvidias_source():
    with open(NV_PKL, "rb") as f:
        raw = f.read()
    for text in (b"import torch", b"class MappingNetwork", b"Copyright", b"NVIDIA CORPORATION", b"def forward"):
        assert text not in raw, text
    # NVIDIA's own stream: its persistence records, its numpy-scalar activation gains
    strings = {arg for op, arg, _ in pickletools.genops(raw) if isinstance(arg, str)}
    assert {"torch_utils.persistence", "_reconstruct_persistent_obj", "dnnlib.util", "EasyDict"} <= strings
    data = load_pickle(NV_PKL)
    assert set(data) == {"training_set_kwargs", "G", "D", "G_ema", "augment_pipe"}

    seen = {}

    def walk(obj):
        assert isinstance(obj, PersistentObject)
        seen[obj.class_name] = obj.module_src
        for child in (obj.state.get("_modules") or {}).values():
            if child is not None:
                walk(child)

    for role in ("G", "D", "G_ema", "augment_pipe"):
        walk(data[role])
    assert {"Generator", "MappingNetwork", "SynthesisLayer", "Discriminator", "DiscriminatorEpilogue",
            "AugmentPipe"} <= set(seen)
    for cls, src in seen.items():
        assert src.startswith("# NVIDIA source removed: training/") and src.count("\n") == 1, cls
        assert src != nvidia_pkl.SHIM_MODULE_SRC
    assert seen["AugmentPipe"].startswith("# NVIDIA source removed: training/augment.py")


@pytest.fixture(scope="module")
def rosinality():
    return ganforge.load(ROS_PT), np.load(os.path.join(DATA, "rosinality_train_tiny_expected.npz"))


def test_rosinality_train_checkpoint_has_train_py_keys():
    with torch.serialization.safe_globals([argparse.Namespace]):
        data = torch.load(ROS_PT, map_location="cpu", weights_only=True)
    assert set(data) == {"g", "d", "g_ema", "g_optim", "d_optim", "args", "ada_aug_p"}
    assert (data["args"].size, data["args"].latent, data["args"].n_mlp) == (16, 8, 2)
    assert "latent_avg" not in data


def test_rosinality_train_checkpoint_outputs_match_rosinalitys(rosinality):
    ck, ref = rosinality
    z, img = torch.from_numpy(ref["z"]), torch.from_numpy(ref["img"])
    G = ck.G_ema
    assert (G.img_resolution, G.z_dim, G.mapping.num_layers) == (16, 8, 2)
    with torch.no_grad():
        assert _max_diff(G(z, None, noise_mode="const"), ref["img_psi1.0"]) <= TOL
        assert _max_diff(ck.G(z, None, noise_mode="const"), ref["g_img"]) <= TOL  # 'g', with its own noise buffers
        assert _max_diff(ck.D(img, None), ref["d_logits"]) <= D_TOL
    assert np.abs(ref["img_psi1.0"] - ref["g_img"]).max() > 0.1


def test_rosinality_truncation_and_estimated_w_avg(rosinality):
    ck, ref = rosinality
    G = ck.G_ema
    mean_latent = torch.from_numpy(ref["mean_latent"])
    # no latent_avg in a training checkpoint: ganforge estimates w_avg from 10,000 z, the reference
    # from 4,096 (g_ema.mean_latent); sampling error of both is ~0.01 here
    assert torch.allclose(G.mapping.w_avg, mean_latent, atol=0.05)
    z = torch.from_numpy(ref["z"])
    saved = G.mapping.w_avg.clone()
    try:
        with torch.no_grad():
            G.mapping.w_avg.copy_(mean_latent)  # the reference's truncation_latent
            out = G(z, None, truncation_psi=0.5, noise_mode="const")
    finally:
        G.mapping.w_avg.copy_(saved)
    assert _max_diff(out, ref["img_psi0.5"]) <= TOL
    assert np.abs(ref["img_psi1.0"] - ref["img_psi0.5"]).max() > 0.1
