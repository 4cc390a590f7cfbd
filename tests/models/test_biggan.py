"""BigGAN and BigGAN-deep (models/biggan.py, models/biggan_deep.py) against their definitions: the
architecture tables (parameter counts of ajbrock/BigGAN-PyTorch and pytorch-pretrained-BigGAN, measured
once from those checkouts, and the latter's `layers` lists), the hierarchical latent, the conditioning
order, the blocks' shortcuts, the projection head, train/eval behaviour and truncation-indexed statistics."""

import json

import pytest
import torch
import torch.nn.functional as F

from ganforge.models import biggan, biggan_deep
from ganforge.models.biggan import (
    G_STAGES,
    RESOLUTIONS,
    hierarchical_z_split,
    z_chunk_sizes,
)
from ganforge.models.biggan_deep import layer_specs
from ganforge.models.latents import to_uint8, truncated_z_from_seeds
from ganforge.nn.batchnorm import BatchNorm2d, ConditionalBatchNorm2d
from ganforge.nn.spectral_norm import power_iteration, spectral_norm_layers

ARCHS = {"biggan": biggan, "biggan-deep": biggan_deep}


def n_params(net):
    return sum(p.numel() for p in net.parameters())


def hier_z_dim(res, per_slot=2):
    return per_slot * (len(G_STAGES[res]) + 1)


def tiny_G(arch="biggan", res=32, ch=2, c_dim=5, attention=(), seed=0, **kw):
    torch.manual_seed(seed)
    z_dim = kw.pop("z_dim", hier_z_dim(res) if arch == "biggan" else 6)
    return ARCHS[arch].Generator(z_dim=z_dim, c_dim=c_dim, img_resolution=res, channel_width=ch, embed_dim=4,
                                 attention=attention, **{"init": "none", **kw})


def tiny_D(arch="biggan", res=32, ch=2, c_dim=5, attention=(), seed=1, **kw):
    torch.manual_seed(seed)
    return ARCHS[arch].Discriminator(c_dim=c_dim, img_resolution=res, channel_width=ch, attention=attention,
                                     **{"init": "none", **kw})


def settle_spectral_norm(net, steps=30):
    """Run the power method to convergence in every SN layer, as training would: a fresh network's
    random u, v underestimate sigma_0 and blow activations up (tanh saturates, logits reach 1e18)."""
    with torch.no_grad():
        for _, layer in spectral_norm_layers(net):
            u, v = layer.u, layer.v
            for _ in range(steps):
                u, v = power_iteration(layer.weight_matrix(), u, layer.sn_eps)
            layer.u.copy_(u)
            layer.v.copy_(v)
    return net


def labels(idx, c_dim=5):
    return torch.eye(c_dim)[list(idx)]


# -- architecture tables -----------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("res", RESOLUTIONS)
def test_every_resolution_builds_with_the_right_shapes(arch, res):
    # G's blocks double 4 -> R (BigGAN-deep: the last block of each stage), D reduces to [N, 1].
    G, D = tiny_G(arch, res, ch=4).eval(), tiny_D(arch, res, ch=4).eval()
    sizes = []
    for block in G.blocks:
        block.register_forward_hook(lambda m, i, o: sizes.append(o.shape[-1]))
    with torch.no_grad():
        img = G(torch.randn(1, G.z_dim), labels([2]))
        logits = D(img, labels([2]))
    assert list(img.shape) == [1, 3, res, res] and list(logits.shape) == [1, 1]
    depth = 1 if arch == "biggan" else 2        # BigGAN-deep: depth - 1 blocks, then one that upsamples
    expected = []
    for r in (8 * 2 ** i for i in range(len(G_STAGES[res]))):
        expected += [r // 2] * (depth - 1) + [r]
    assert sizes == expected and expected[-1] == res


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("res", [32, 64])
def test_forward_at_small_resolutions(arch, res):
    G = settle_spectral_norm(tiny_G(arch, res, ch=8, attention=(16,))).eval()
    D = settle_spectral_norm(tiny_D(arch, res, ch=8, attention=(16,))).eval()
    assert len(G.attention) >= 1 and len(D.attention) >= 1
    with torch.no_grad():
        img = G(torch.randn(2, G.z_dim), labels([0, 3]))
        logits = D(img, labels([0, 3]))
    assert img.shape == (2, 3, res, res) and logits.shape == (2, 1)
    assert torch.isfinite(logits).all() and img.abs().max() <= 1 and img.abs().max() < 0.999  # not saturated


# Parameter counts of ajbrock/BigGAN-PyTorch 98459431 (BigGAN.py, BigGANdeep.py), measured once outside
# the test (no_optim, skip_init): G_ch=D_ch=8, shared_dim 16, n_classes 10, G_attn=D_attn='16'; dim_z
# TINY_Z_DIM for BigGAN, 12 for BigGAN-deep. 512 px exists only in BigGAN.py's G.
TINY_Z_DIM = {32: 24, 64: 20, 128: 24, 256: 28, 512: 32}
BIGGAN_PYTORCH_TINY = {
    ("biggan", "G", 32): 73060, ("biggan", "G", 64): 507588, ("biggan", "G", 128): 510196,
    ("biggan", "G", 256): 593332, ("biggan", "G", 512): 595212,
    ("biggan", "D", 32): 72293, ("biggan", "D", 64): 307930, ("biggan", "D", 128): 604058,
    ("biggan", "D", 256): 685914,
    ("biggan-deep", "G", 32): 46356, ("biggan-deep", "G", 64): 255700, ("biggan-deep", "G", 128): 259452,
    ("biggan-deep", "G", 256): 285532,
    ("biggan-deep", "D", 32): 15412, ("biggan-deep", "D", 64): 77314, ("biggan-deep", "D", 128): 134850,
    ("biggan-deep", "D", 256): 148386,
}


@pytest.mark.parametrize("key", BIGGAN_PYTORCH_TINY)
def test_tables_match_biggan_pytorch(key):
    arch, role, res = key
    if role == "G":
        z_dim = TINY_Z_DIM[res] if arch == "biggan" else 12
        net = ARCHS[arch].Generator(z_dim=z_dim, c_dim=10, img_resolution=res, channel_width=8, embed_dim=16,
                                    attention=(16,), init="none")
    else:
        net = ARCHS[arch].Discriminator(c_dim=10, img_resolution=res, channel_width=8, attention=(16,), init="none")
    assert n_params(net) == BIGGAN_PYTORCH_TINY[key]


# pytorch-pretrained-BigGAN 0.1.1: BigGAN(BigGANConfig(z_dim=16, class_embed_dim=16, channel_width=8,
# num_classes=10, layers=BigGAN{128,256,512}.layers, attention_layer_position=8)), measured once.
PRETRAINED_BIGGAN_TINY = {128: 273513, 256: 302345, 512: 304373}


@pytest.mark.parametrize("res", PRETRAINED_BIGGAN_TINY)
def test_deep_generator_matches_pytorch_pretrained_biggan(res):
    # Their conv_to_rgb has channel_width outputs and keeps 3: rgb_channels = channel_width.
    G = biggan_deep.Generator(z_dim=16, embed_dim=16, c_dim=10, channel_width=8, rgb_channels=8, img_resolution=res,
                              attention=(64,), init="none")
    assert n_params(G) == PRETRAINED_BIGGAN_TINY[res]
    assert list(G.attention) == ["7"]     # their attention_layer_position 8: before block 8, after block 7


def test_real_size_parameter_counts():
    # BigGAN-PyTorch's released 128-px G: G_ch 96, dim_z 120, shared_dim 128, hier, attention 64.
    assert n_params(biggan.Generator(init="none")) == 70_433_988
    # pytorch-pretrained-BigGAN's biggan-deep-128 (its README: 50.4 M) ...
    assert n_params(biggan_deep.Generator(rgb_channels=128, init="none")) == 50_388_609
    # ... and BigGANdeep.py's G at G_ch 128, dim_z 128, shared_dim 128: 125 fewer output channels of a 3x3 conv.
    assert n_params(biggan_deep.Generator(init="none")) == 50_388_609 - 125 * (128 * 9 + 1) == 50_244_484


# pytorch-pretrained-BigGAN convert_tf_to_pytorch.py BigGAN128/256/512 `layers` (upsample, in, out).
_STAGE = [(False, 16, 16), (True, 16, 16), (False, 16, 16), (True, 16, 8)]
PRETRAINED_LAYERS = {
    128: _STAGE + [(False, 8, 8), (True, 8, 4), (False, 4, 4), (True, 4, 2), (False, 2, 2), (True, 2, 1)],
    256: _STAGE + [(False, 8, 8), (True, 8, 8), (False, 8, 8), (True, 8, 4), (False, 4, 4), (True, 4, 2),
                   (False, 2, 2), (True, 2, 1)],
    512: _STAGE + [(False, 8, 8), (True, 8, 8), (False, 8, 8), (True, 8, 4), (False, 4, 4), (True, 4, 2),
                   (False, 2, 2), (True, 2, 1), (False, 1, 1), (True, 1, 1)],
}


@pytest.mark.parametrize("res", PRETRAINED_LAYERS)
def test_layer_specs_are_pytorch_pretrained_biggans_layers(res):
    assert layer_specs(res, 2) == PRETRAINED_LAYERS[res]


def test_layer_specs_depth():
    assert layer_specs(32, 1) == [(True, 4, 4)] * 3
    assert layer_specs(64, 3)[:3] == [(False, 16, 16), (False, 16, 16), (True, 16, 16)]
    with pytest.raises(ValueError, match="depth"):
        layer_specs(64, 0)


def test_attention_placement():
    kw = {"c_dim": 10, "channel_width": 8, "init": "none"}
    assert list(biggan.Generator(**kw).attention) == ["3"]                      # 64 px: after block 3
    assert list(biggan.Discriminator(**kw).attention) == ["0"]                  # after block 0 (-> 64 px)
    # BigGAN-PyTorch's 32-px D row labels every block 16: attention 16 follows all four.
    assert list(biggan.Discriminator(img_resolution=32, attention=(16,), **kw).attention) == ["0", "1", "2", "3"]
    assert list(biggan_deep.Discriminator(**kw).attention) == ["1"]             # after stage 0 (2 blocks)
    assert list(biggan.Generator(img_resolution=32, z_dim=8, **kw).attention) == []  # no 64 at 32 px


def test_state_dict_layout():
    G = tiny_G("biggan", 32, ch=2, attention=(16,))
    sd = {k: list(v.shape) for k, v in G.state_dict().items()}
    assert sd["shared.weight"] == [5, 4]
    assert sd["linear.weight"] == [8 * 16, 2] and sd["linear.u"] == [128] and sd["linear.v"] == [2]
    assert sd["linear.sigma"] == []
    assert sd["blocks.0.bn1.running_mean"] == [8] and sd["blocks.0.bn1.gain.weight"] == [8, 4 + 2]
    assert sd["blocks.0.bn2.bias.u"] == [8] and sd["blocks.2.conv_sc.weight"] == [8, 8, 1, 1]
    assert sd["attention.1.theta.weight"] == [1, 8, 1, 1] and sd["attention.1.gamma"] == []
    assert sd["output_bn.running_var"] == [8] and sd["output_conv.weight"] == [3, 8, 3, 3]
    assert {k.split(".")[0] for k in sd} == {"shared", "linear", "blocks", "attention", "output_bn", "output_conv"}

    D = tiny_D("biggan", 32, ch=2, attention=(16,))
    sd = {k: list(v.shape) for k, v in D.state_dict().items()}
    assert sd["blocks.0.conv1.weight"] == [8, 3, 3, 3] and "blocks.3.conv_sc.weight" not in sd
    assert sd["embed.weight"] == [5, 8] and sd["embed.u"] == [5] and sd["linear.weight"] == [1, 8]
    assert {k.split(".")[0] for k in sd} == {"blocks", "attention", "linear", "embed"}

    Gd = tiny_G("biggan-deep", 32, ch=8, attention=(16,))
    sd = {k: list(v.shape) for k, v in Gd.state_dict().items()}
    assert [k for k in sd if k.startswith("blocks.5.") and k.endswith(".weight")] == [
        "blocks.5.bn1.gain.weight", "blocks.5.bn1.bias.weight", "blocks.5.conv1.weight", "blocks.5.bn2.gain.weight",
        "blocks.5.bn2.bias.weight", "blocks.5.conv2.weight", "blocks.5.bn3.gain.weight", "blocks.5.bn3.bias.weight",
        "blocks.5.conv3.weight", "blocks.5.bn4.gain.weight", "blocks.5.bn4.bias.weight", "blocks.5.conv4.weight"]
    assert sd["blocks.0.conv1.weight"] == [8, 32, 1, 1] and sd["blocks.0.bn1.gain.weight"] == [32, 4 + 6]
    assert list(Gd.attention) == ["3"]                          # after stage 1 (blocks 2, 3: 8 -> 16 px)
    Dd = tiny_D("biggan-deep", 32, ch=8)
    sd = {k: list(v.shape) for k, v in Dd.state_dict().items()}
    assert sd["input_conv.weight"] == [32, 3, 3, 3] and len(Dd.blocks) == 6 and "blocks.0.conv_sc.weight" not in sd


def test_init_kwargs_rebuild_the_network():
    for net in (tiny_G("biggan", attention=(16,), n_stats=3, truncation_mode="scale"), tiny_D("biggan"),
                tiny_G("biggan-deep", ch=8, rgb_channels=8), tiny_D("biggan-deep", ch=8)):
        kwargs = json.loads(json.dumps(net.init_kwargs))
        assert kwargs == net.init_kwargs
        twin = type(net)(**kwargs)
        assert {k: v.shape for k, v in twin.state_dict().items()} == {k: v.shape for k, v in net.state_dict().items()}
    G = tiny_G("biggan", truncation_mode="scale")
    assert G.init_kwargs["truncation_mode"] == "scale" == G.truncation_mode and G.init_kwargs["attention"] == []


def test_argument_errors():
    with pytest.raises(ValueError, match="img_resolution must be one of 32, 64, 128, 256, 512"):
        biggan.Generator(img_resolution=48)
    with pytest.raises(ValueError, match="img_resolution must be one of"):
        biggan_deep.Discriminator(img_resolution=1024)
    with pytest.raises(ValueError, match="init must be one of"):
        tiny_G(init="xavier")
    with pytest.raises(ValueError, match="c_dim"):
        tiny_D("biggan-deep", c_dim=0)
    with pytest.raises(ValueError, match="truncation_mode"):
        tiny_G("biggan-deep", truncation_mode="clip")
    with pytest.raises(ValueError, match=r"z must be \[batch, 8\]"):
        tiny_G()(torch.randn(2, 7), labels([0, 1]))


def test_ortho_init_gives_orthogonal_weights():
    G = tiny_G("biggan", init="ortho")
    w = G.blocks[0].conv1.weight.detach().reshape(8, -1)           # [8, 72]: orthonormal rows
    assert torch.allclose(w @ w.t(), torch.eye(8), atol=1e-5)
    e = G.shared.weight.detach()                                    # [5, 4]: orthonormal columns
    assert torch.allclose(e.t() @ e, torch.eye(4), atol=1e-5)


# -- hierarchical latent and conditioning -------------------------------------------------------------

def test_hierarchical_z_split_sizes():
    assert z_chunk_sizes(120, 128) == [20] * 6        # BigGAN-PyTorch's released model
    assert z_chunk_sizes(140, 256) == [20] * 7        # TF-Hub biggan-256
    assert z_chunk_sizes(128, 512) == [16] * 8        # TF-Hub biggan-512
    assert z_chunk_sizes(8, 32) == [2] * 4 and z_chunk_sizes(120, 64) == [24] * 5
    with pytest.raises(ValueError, match="multiple of 6, e.g. 120 or 126"):
        z_chunk_sizes(121, 128)
    with pytest.raises(ValueError, match="7 slots"):
        biggan.Generator(img_resolution=256)          # z_dim 120 is not a multiple of 7: no silent truncation
    z = torch.arange(12.0).reshape(1, 12)
    chunks = hierarchical_z_split(z, 4)
    assert [c.tolist() for c in chunks] == [[[0, 1, 2]], [[3, 4, 5]], [[6, 7, 8]], [[9, 10, 11]]]


def _inputs_of(modules):
    seen = []
    for m in modules:
        m.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()))
    return seen


def test_hierarchical_conditioning_puts_the_class_embedding_first():
    # z_0 feeds the linear layer; block b's BatchNorms see h_b = [e(c), z_{b+1}].
    G = tiny_G("biggan", 32).eval()
    z, c = torch.randn(2, 8), labels([1, 4])
    lin = _inputs_of([G.linear])
    bn1, bn2 = _inputs_of([b.bn1.gain for b in G.blocks]), _inputs_of([b.bn2.bias for b in G.blocks])
    with torch.no_grad():
        G(z, c)
        e = G.embed(c)
    assert torch.equal(lin[0], z[:, :2])
    for b in range(3):
        expected = torch.cat([e, z[:, 2 * (b + 1):2 * (b + 2)]], dim=1)
        assert torch.equal(bn1[b], expected) and torch.equal(bn2[b], expected)


def test_without_hier_the_whole_z_feeds_the_linear_layer():
    G = tiny_G("biggan", 32, z_dim=7, hier=False).eval()
    z, c = torch.randn(2, 7), labels([1, 4])
    lin, cond = _inputs_of([G.linear]), _inputs_of([G.blocks[1].bn1.gain])
    with torch.no_grad():
        G(z, c)
    assert torch.equal(lin[0], z) and torch.equal(cond[0], G.embed(c))


def test_deep_conditioning_is_embedding_then_z_everywhere():
    G = tiny_G("biggan-deep", 32, ch=8).eval()
    z, c = torch.randn(2, 6), labels([2, 0])
    seen = _inputs_of([G.linear] + [getattr(b, f"bn{j}").gain for b in G.blocks for j in range(1, 5)])
    with torch.no_grad():
        G(z, c)
        h = torch.cat([G.embed(c), z], dim=1)
    assert len(seen) == 1 + 4 * 6 and all(torch.equal(s, h) for s in seen)


def test_class_mixture_gives_the_embedding_midpoint():
    G = tiny_G("biggan")
    e_a, e_b = G.shared.weight[1], G.shared.weight[3]
    mix = 0.5 * labels([1]) + 0.5 * labels([3])
    assert torch.allclose(G.embed(mix)[0], 0.5 * (e_a + e_b), atol=1e-6)
    assert torch.equal(G.embed(labels([3]))[0], e_b)


# -- blocks ---------------------------------------------------------------------------------------------

def _silence(conv):
    """Make a conv's output zero (its residual branch vanishes), leaving the shortcut alone."""
    conv.register_forward_hook(lambda m, i, o: torch.zeros_like(o))


def _up(x):
    return F.interpolate(x, scale_factor=2, mode="nearest")


def _silence_shortcut(block):
    """Zero the shortcut so that the block's output is its residual branch alone."""
    if getattr(block, "conv_sc", None) is not None:
        _silence(block.conv_sc)


def test_gblock_residual_branch():
    # h = conv2(ReLU(bn2(conv1(up(ReLU(bn1(x, c))))))) ; the shortcut conv_sc(up(x)) silenced.
    block = settle_spectral_norm(biggan.GBlock(4, 2, cond_dim=3, upsample=True)).eval()
    x, h = torch.randn(2, 4, 5, 5), torch.randn(2, 3)
    with torch.no_grad():
        expected = block.conv2(F.relu(block.bn2(block.conv1(_up(F.relu(block.bn1(x, h)))), h)))
        _silence_shortcut(block)
        assert torch.allclose(block(x, h), expected, atol=1e-5)


@pytest.mark.parametrize("preactivation", [False, True])
def test_dblock_residual_branch(preactivation):
    # h = avgpool(conv2(ReLU(conv1(a(x))))), a = ReLU for every block but D's first.
    block = settle_spectral_norm(biggan.DBlock(3, 4, downsample=True, preactivation=preactivation)).eval()
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        expected = F.avg_pool2d(block.conv2(F.relu(block.conv1(F.relu(x) if preactivation else x))), 2)
        _silence_shortcut(block)
        assert torch.allclose(block(x), expected, atol=1e-5)
    D = tiny_D("biggan", 64)
    assert [b.preactivation for b in D.blocks] == [False, True, True, True, True]


def test_deep_gblock_residual_branch():
    # t = conv4(ReLU(bn4(conv3(ReLU(bn3(conv2(up(ReLU(bn2(conv1(ReLU(bn1(x)))))))))))))
    block = settle_spectral_norm(biggan_deep.BottleneckGBlock(8, 4, cond_dim=3, upsample=True)).eval()
    x, h = torch.randn(2, 8, 3, 3), torch.randn(2, 3)
    with torch.no_grad():
        t = _up(F.relu(block.bn2(block.conv1(F.relu(block.bn1(x, h))), h)))
        t = block.conv3(F.relu(block.bn3(block.conv2(t), h)))
        expected = block.conv4(F.relu(block.bn4(t, h))) + _up(x[:, :4])
        assert torch.allclose(block(x, h), expected, atol=1e-5)


def test_deep_dblock_residual_branch():
    # t = conv4(avgpool(ReLU(conv3(ReLU(conv2(ReLU(conv1(ReLU(x)))))))))
    block = settle_spectral_norm(biggan_deep.BottleneckDBlock(4, 8, downsample=True)).eval()
    x = torch.randn(2, 4, 6, 6)
    with torch.no_grad():
        t = block.conv3(F.relu(block.conv2(F.relu(block.conv1(F.relu(x))))))
        expected = block.conv4(F.avg_pool2d(F.relu(t), 2))
        _silence_shortcut(block)
        pooled = F.avg_pool2d(x, 2)
        assert torch.allclose(block(x), expected + torch.cat([pooled, torch.zeros_like(pooled)], dim=1), atol=1e-5)


def test_gblock_shortcut_is_a_1x1_conv_of_the_upsampled_input():
    block = biggan.GBlock(4, 2, cond_dim=3, upsample=True).eval()
    x, h = torch.randn(2, 4, 5, 5), torch.randn(2, 3)
    _silence(block.conv2)
    with torch.no_grad():
        expected = block.conv_sc(F.interpolate(x, scale_factor=2, mode="nearest"))
        assert torch.allclose(block(x, h), expected, atol=1e-6)


@pytest.mark.parametrize("preactivation", [False, True])
def test_dblock_shortcut(preactivation):
    block = biggan.DBlock(3, 4, downsample=True, preactivation=preactivation).eval()
    x = torch.randn(2, 3, 8, 8)
    _silence(block.conv2)
    with torch.no_grad():   # (a 1x1 conv commutes with average pooling: both orders give this)
        assert torch.allclose(block(x), F.avg_pool2d(block.conv_sc(x), 2), atol=1e-6)


def test_dblock_without_resampling_or_new_channels_has_an_identity_shortcut():
    block = biggan.DBlock(4, 4, downsample=False, preactivation=True).eval()
    x = torch.randn(2, 4, 8, 8)
    _silence(block.conv2)
    assert block.conv_sc is None
    with torch.no_grad():
        assert torch.equal(block(x), x)


def test_deep_gblock_skip_drops_channels_and_upsamples():
    block = biggan_deep.BottleneckGBlock(8, 4, cond_dim=3, upsample=True).eval()
    x, h = torch.randn(2, 8, 3, 3), torch.randn(2, 3)
    _silence(block.conv4)
    with torch.no_grad():
        assert torch.equal(block(x, h), F.interpolate(x[:, :4], scale_factor=2, mode="nearest"))
    assert not any("sc" in k for k in block.state_dict())       # no learnable shortcut


def test_deep_dblock_skip_pools_then_concatenates_new_channels():
    block = biggan_deep.BottleneckDBlock(4, 12, downsample=True).eval()
    x = torch.randn(2, 4, 6, 6)
    _silence(block.conv4)
    with torch.no_grad():
        pooled = F.avg_pool2d(x, 2)
        out = block(x)
        assert torch.equal(out[:, :4], pooled)
        assert torch.allclose(out[:, 4:], block.conv_sc(pooled), atol=1e-6)
    assert block.conv_sc.weight.shape == (8, 4, 1, 1)


def test_deep_generator_keeps_the_first_img_channels_of_rgb_channels():
    G = settle_spectral_norm(tiny_G("biggan-deep", 32, ch=8, rgb_channels=8)).eval()
    out = []
    G.output_conv.register_forward_hook(lambda m, i, o: out.append(o))
    with torch.no_grad():
        img = G(torch.randn(2, 6), labels([0, 1]))
    assert out[0].shape[1] == 8 and img.shape[1] == 3
    assert torch.allclose(img, torch.tanh(out[0][:, :3]), atol=1e-6)


# -- the projection discriminator ------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ARCHS)
def test_projection_discriminator_uses_the_label(arch):
    D = settle_spectral_norm(tiny_D(arch, ch=8)).eval()
    img = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        a, b = D(img, labels([0, 1])), D(img, labels([2, 3]))
    assert a.shape == (2, 1) and not torch.allclose(a, b)


@pytest.mark.parametrize("arch", ARCHS)
def test_head_is_linear_plus_projection_of_sum_pooled_features(arch):
    # D(x, c) = linear(phi) + <embed(c), phi>, phi = sum over positions of ReLU(h) (not the mean).
    D = settle_spectral_norm(tiny_D(arch, ch=8)).eval()
    img, c = torch.randn(2, 3, 32, 32), labels([4, 1])
    features = []
    D.blocks[-1].register_forward_hook(lambda m, i, o: features.append(o))
    with torch.no_grad():
        out = D(img, c)
        phi = F.relu(features[0]).sum(dim=(2, 3))
        E = D.embed(torch.eye(5))                                     # the normalised embedding rows
        expected = D.linear(phi) + (c @ E * phi).sum(dim=1, keepdim=True)
    assert features[0].shape[-1] == 8                                 # 32 px: 8x8 positions summed
    assert torch.allclose(out, expected, rtol=1e-5, atol=1e-4)


# -- train / eval --------------------------------------------------------------------------------------

def _buffers(net):
    return {k: v.clone() for k, v in net.named_buffers()}


@pytest.mark.parametrize("arch", ARCHS)
def test_eval_is_deterministic_and_writes_nothing(arch):
    G = settle_spectral_norm(tiny_G(arch, ch=8)).eval()
    z, c = torch.randn(3, G.z_dim), labels([0, 1, 2])
    before = _buffers(G)
    with torch.no_grad():
        a, b = G(z, c), G(z, c)
    assert torch.equal(a, b)
    assert all(torch.equal(v, before[k]) for k, v in G.named_buffers())


@pytest.mark.parametrize("arch", ARCHS)
def test_training_forward_updates_bn_statistics_and_spectral_norm_vectors(arch):
    G = tiny_G(arch, ch=8).train()
    before = _buffers(G)
    with torch.no_grad():
        G(torch.randn(4, G.z_dim), labels([0, 1, 2, 3]))
    changed = {k for k, v in G.named_buffers() if not torch.equal(v, before[k])}
    bn = {k for k in before if k.endswith(("running_mean", "running_var"))}
    sn = {k for k in before if k.rsplit(".", 1)[-1] in ("u", "v", "sigma")}
    assert bn and sn and bn | sn == set(before) and changed == set(before)


@pytest.mark.parametrize("arch", ARCHS)
def test_channels_last_gives_the_same_images(arch):
    G = settle_spectral_norm(tiny_G(arch, ch=8, attention=(16,))).eval()
    z, c = torch.randn(2, G.z_dim), labels([0, 4])
    layouts = []
    G.blocks[0].register_forward_pre_hook(
        lambda m, args: layouts.append(args[0].is_contiguous(memory_format=torch.channels_last)))
    with torch.no_grad():
        a = G.set_channels_last(True)(z, c)
        b = G.set_channels_last(False)(z, c)
    assert layouts == [True, False] and G.channels_last is False
    assert torch.allclose(a, b, atol=1e-5)


# -- truncation-indexed statistics ----------------------------------------------------------------------

@pytest.mark.parametrize("arch", ARCHS)
def test_truncation_indexed_statistics(arch):
    # n_stats = 51 (TF-Hub BigGAN-deep): `truncation` selects a statistics row.
    one = settle_spectral_norm(tiny_G(arch, ch=8, seed=3)).eval()
    many = tiny_G(arch, ch=8, seed=4, n_stats=51).eval()
    state = one.state_dict()
    for k, v in many.state_dict().items():
        v.copy_(state[k].expand_as(v) if k.endswith(("running_mean", "running_var")) else state[k])
    z, c = torch.randn(2, one.z_dim), labels([0, 1])
    with torch.no_grad():
        ref = one(z, c)
        # Equal rows: the n_stats = 1 network, whatever the truncation.
        for t in (0.4, 1.0, None):
            assert torch.allclose(many(z, c, truncation=t), ref, atol=1e-6)
        assert torch.equal(one(z, c, truncation=0.4), ref)      # n_stats = 1 ignores truncation
        # Rows that differ: the images depend on the truncation.
        torch.manual_seed(5)
        for name, buf in many.named_buffers():
            if name.endswith("running_mean"):
                buf.add_(0.3 * torch.randn_like(buf))
            elif name.endswith("running_var"):
                buf.mul_(torch.rand_like(buf) + 0.5)
        a, b = many(z, c, truncation=0.4), many(z, c, truncation=1.0)
        assert not torch.allclose(a, b, atol=1e-3)
        assert torch.equal(many(z, c, truncation=None), b)


@pytest.mark.parametrize("arch", ARCHS)
def test_every_batch_norm_reads_the_truncation(arch):
    # One layer at a time gets rows that differ: each must change the image between truncation 0.4 and 1.
    G = settle_spectral_norm(tiny_G(arch, ch=8, n_stats=51)).eval()
    z, c = torch.randn(1, G.z_dim), labels([0])
    layers = [m for m in G.modules() if isinstance(m, (BatchNorm2d, ConditionalBatchNorm2d))]
    assert len(layers) == (2 * 3 + 1 if arch == "biggan" else 4 * 6 + 1)
    torch.manual_seed(6)
    with torch.no_grad():
        for layer in layers:
            saved = layer.running_mean.clone()
            layer.running_mean.add_(torch.randn_like(saved))
            assert not torch.allclose(G(z, c, truncation=0.4), G(z, c, truncation=1.0), atol=1e-4)
            layer.running_mean.copy_(saved)


# -- sampling ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("arch", ARCHS)
def test_sample_is_deterministic_per_seed(arch):
    G = settle_spectral_norm(tiny_G(arch, ch=8)).eval()
    imgs = G.sample([7, 3, 11], class_idx=2, truncation=0.7)
    assert imgs.dtype == torch.uint8 and imgs.shape == (3, 3, 32, 32)
    assert torch.equal(G.sample([11, 7], class_idx=2, truncation=0.7, batch_size=1), imgs[[2, 0]])
    z = truncated_z_from_seeds([7, 3, 11], G.z_dim, 0.7, "resample")
    with torch.no_grad():
        assert torch.equal(imgs, to_uint8(G(z, labels([2, 2, 2]))))
    assert not torch.equal(G.sample([7], class_idx=2, truncation=0.7, truncation_mode="scale"), imgs[:1])
    assert not torch.equal(G.sample([7], class_idx=3, truncation=0.7), imgs[:1])
