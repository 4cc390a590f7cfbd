"""NVIDIA network pickles: parity with NVIDIA's code, round trips, clear errors.

data/nvidia_tiny_cond.pkl was written by ganforge's own writer (module_src = the two-line import
shim, no NVIDIA source) from a network built with random weights by NVIDIA's stylegan2-ada-pytorch;
data/nvidia_tiny_cond_expected.npz holds what NVIDIA's code computes after loading that same file
with its own loader (legacy.load_network_pkl), CPU float32, noise_mode='const';
scripts/reference/nvidia_networks.py regenerates it (and says how z, c and img were drawn).
"""

import io
import os
import pickletools

import numpy as np
import pytest
import torch

import ganforge
from testkit import tiny_D, tiny_G
from ganforge.errors import FormatError, UsageError
from ganforge.formats import Checkpoint, nvidia_pkl
from ganforge.formats.unpickler import PersistentObject, load_pickle

DATA = os.path.join(os.path.dirname(__file__), "data")
# float32 on CPU: the reference and ganforge sum in different orders; measured differences are ~1e-6.
TOL = 1e-4


def _state_equal(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_parity_with_nvidia_reference_outputs():
    ck = ganforge.load(os.path.join(DATA, "nvidia_tiny_cond.pkl"))
    ref = np.load(os.path.join(DATA, "nvidia_tiny_cond_expected.npz"))
    z, c, img = (torch.from_numpy(ref[k]) for k in ("z", "c", "img"))
    assert ck.G_ema.c_dim == 2 and ck.G_ema.img_resolution == 16
    with torch.no_grad():
        for psi in (1.0, 0.5):
            out = ck.G_ema(z, c, truncation_psi=psi, noise_mode="const").numpy()
            assert np.abs(out - ref[f"img_psi{psi}"]).max() <= TOL
        assert np.abs(ck.G_ema.mapping(z, c, truncation_psi=0.5).numpy() - ref["ws_psi0.5"]).max() <= TOL
        assert np.abs(ck.D(img, c).numpy() - ref["d_logits"]).max() <= TOL


def _checkpoint():
    G = tiny_G(c_dim=3, architecture="resnet", num_fp16_res=2, conv_clamp=256, seed=0)
    G_ema = tiny_G(c_dim=3, architecture="resnet", num_fp16_res=2, conv_clamp=256, seed=4)
    with torch.no_grad():
        G_ema.mapping.w_avg.normal_()
    D = tiny_D(c_dim=3, architecture="skip", num_fp16_res=1, conv_clamp=256,
               epilogue_kwargs=dict(mbstd_group_size=2))
    return Checkpoint(G=G, G_ema=G_ema, D=D, config={"training": {"training_set_kwargs": {"path": "x.zip"}}})


def test_round_trip_native_nvidia_native_is_bit_exact(tmp_path):
    ck = _checkpoint()
    ck.save(tmp_path / "a")
    nvidia_pkl.write(ganforge.load(tmp_path / "a"), tmp_path / "b.pkl")
    back = ganforge.load(tmp_path / "b.pkl")
    back.save(tmp_path / "c")
    final = ganforge.load(tmp_path / "c")
    for role in ("G", "G_ema", "D"):
        assert _state_equal(getattr(ck, role), getattr(final, role)), role
        assert getattr(ck, role).init_kwargs == getattr(final, role).init_kwargs, role
    assert final.G_ema.init_kwargs["synthesis_kwargs"]["num_fp16_res"] == 2
    assert final.G_ema.init_kwargs["synthesis_kwargs"]["conv_clamp"] == 256
    assert final.config["training"]["training_set_kwargs"] == {"path": "x.zip"}
    z, c = torch.randn(2, 16), torch.eye(3)[:2]
    with torch.no_grad():
        want = ck.G_ema.eval().requires_grad_(False)(z, c, noise_mode="const")
        assert torch.equal(want, final.G_ema(z, c, noise_mode="const"))


def test_written_pickle_has_nvidia_layout(tmp_path):
    ck = _checkpoint()
    nvidia_pkl.write(ck, tmp_path / "n.pkl")
    raw = (tmp_path / "n.pkl").read_bytes()
    strings = [arg for op, arg, _ in pickletools.genops(raw) if isinstance(arg, str)]
    assert "torch_utils.persistence" in strings and "_reconstruct_persistent_obj" in strings
    data = load_pickle(tmp_path / "n.pkl")
    assert set(data) == {"G", "D", "G_ema", "augment_pipe", "training_set_kwargs"}
    g = data["G_ema"]
    assert isinstance(g, PersistentObject) and g.class_name == "Generator" and g.version == 6
    assert g.module_src == nvidia_pkl.SHIM_MODULE_SRC
    layer = g.state["_modules"]["synthesis"].state["_modules"]["b8"].state["_modules"]["conv0"]
    assert layer.class_name == "SynthesisLayer"
    # the plain attributes NVIDIA's forward reads
    assert {"resolution", "up", "use_noise", "activation", "conv_clamp", "padding", "act_gain"} <= set(layer.state)
    assert layer.state["up"] == 2 and layer.state["conv_clamp"] == 256
    assert isinstance(layer.state["_parameters"]["weight"], torch.Tensor)
    # module_src is text shared by all objects (memoized once), never run
    assert raw.count(b"from training.networks import *") == 1


def test_nvidia_src_is_embedded(tmp_path):
    src = tmp_path / "networks.py"
    src.write_text("\ufeff# fake\nfrom torch_utils import persistence\n@persistence.persistent_class\nclass Generator: pass\n",
                   encoding="utf-8")
    nvidia_pkl.write(_checkpoint(), tmp_path / "n.pkl", nvidia_src=src)
    data = load_pickle(tmp_path / "n.pkl")
    assert data["G"].module_src.startswith("# fake")  # BOM dropped, as inspect.getsource does
    assert _state_equal(ganforge.load(tmp_path / "n.pkl").D, _checkpoint().D)
    (tmp_path / "other.py").write_text("print('hi')\n")
    with pytest.raises(UsageError, match="does not look like NVIDIA"):
        nvidia_pkl.write(_checkpoint(), tmp_path / "m.pkl", nvidia_src=tmp_path / "other.py")


def _records(net_kwargs_G, state_override=None):
    """A pickle of NVIDIA layout written from a ganforge G, with optional state surgery."""
    G = tiny_G()
    rec = nvidia_pkl._record(G, "", init_kwargs=net_kwargs_G or G.init_kwargs)
    if state_override:
        state_override(rec.meta)
    buf = io.BytesIO()
    nvidia_pkl._NvidiaPickler(buf, protocol=2).dump({"G": rec, "G_ema": rec, "D": None})
    return buf.getvalue()


def test_protocol_2_pickles_read(tmp_path):
    (tmp_path / "p2.pkl").write_bytes(_records(None))
    ck = ganforge.load(tmp_path / "p2.pkl")
    assert _state_equal(ck.G_ema, tiny_G()) and ck.G is ck.G_ema and ck.D is None


def test_declared_and_stored_shapes_must_agree(tmp_path):
    kw = tiny_G().init_kwargs
    kw["w_dim"] = 24  # declared w_dim differs from the stored tensors
    (tmp_path / "bad.pkl").write_bytes(_records(kw))
    with pytest.raises(FormatError, match=r"bad\.pkl: G.*stored shape differs from declared"):
        ganforge.load(tmp_path / "bad.pkl")


def test_stylegan3_is_reported_as_unsupported(tmp_path):
    def as_sg3(meta):
        syn = meta["state"]["_modules"]["synthesis"].meta
        syn["state"]["_modules"] = {"input": nvidia_pkl._PersistentRecord(dict(
            type="class", version=6, module_src="", class_name="SynthesisInput",
            state={"_parameters": {}, "_buffers": {}, "_modules": {}}))}
    (tmp_path / "sg3.pkl").write_bytes(_records(None, as_sg3))
    with pytest.raises(FormatError, match="StyleGAN3 .*not support yet"):
        ganforge.load(tmp_path / "sg3.pkl")


def test_sg3_style_flat_kwargs_and_recorded_w_avg_beta():
    """stylegan3's StyleGAN2 Generator records synthesis kwargs flat; w_avg_beta comes from the state."""
    G = tiny_G()
    rec = nvidia_pkl._record(G, "", init_kwargs=dict(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3,
                                                     mapping_kwargs={"num_layers": 2}, channel_base=256,
                                                     channel_max=32, fused_modconv_default="inference_only"))
    rec.meta["state"]["_modules"]["mapping"].meta["state"]["w_avg_beta"] = 0.998
    buf = io.BytesIO()
    nvidia_pkl._NvidiaPickler(buf, protocol=4).dump(rec)
    obj = load_pickle(io.BytesIO(buf.getvalue()))
    kw = nvidia_pkl.generator_kwargs(obj)
    assert kw["synthesis_kwargs"] == {"channel_base": 256, "channel_max": 32}
    assert kw["mapping_kwargs"] == {"num_layers": 2, "w_avg_beta": 0.998}


def test_plain_pickle_without_networks_is_a_clear_error(tmp_path):
    import pickle

    (tmp_path / "d.pkl").write_bytes(pickle.dumps({"a": [1, 2, 3]}))
    with pytest.raises(FormatError, match="not a network pickle"):
        ganforge.load(tmp_path / "d.pkl")
