import numpy as np
import pytest
import torch

from testkit import tiny_D, tiny_G
from ganforge.models.latents import z_from_seeds
from ganforge.models.stylegan2 import Discriminator, Generator, channels_for


@pytest.mark.parametrize("res", [4, 8, 32])
@pytest.mark.parametrize("img_channels", [1, 3, 4])
@pytest.mark.parametrize("arch", ["skip", "orig", "resnet"])
def test_generator_and_discriminator_shapes(res, img_channels, arch):
    G = tiny_G(res=res, img_channels=img_channels, architecture=arch)
    D = tiny_D(res=res, img_channels=img_channels, architecture={"skip": "skip", "orig": "orig",
                                                                  "resnet": "resnet"}[arch])
    assert G.num_ws == 2 * int(np.log2(res)) - 2
    img = G(torch.randn(4, 16), None)
    assert img.shape == (4, img_channels, res, res) and img.dtype == torch.float32
    assert D(img, None).shape == (4, 1)


def test_num_ws_and_channel_table_match_config_f():
    assert [channels_for(r, 32768, 512) for r in (4, 64, 128, 256, 512, 1024)] == [512, 512, 256, 128, 64, 32]
    G = Generator(512, 0, 512, 1024, 3)
    assert G.num_ws == 18
    assert G.synthesis.b1024.conv0.weight.shape == (32, 64, 3, 3)
    n_params = sum(p.numel() for p in G.parameters())
    assert n_params == 30_370_060  # config F 1024x1024 generator (NVIDIA's FFHQ network)


def test_state_dict_names_follow_nvidia_layout():
    G = tiny_G(res=8, c_dim=3)
    keys = set(G.state_dict())
    expected = {
        "mapping.embed.weight", "mapping.embed.bias", "mapping.fc0.weight", "mapping.fc1.bias", "mapping.w_avg",
        "synthesis.b4.const", "synthesis.b4.resample_filter", "synthesis.b4.conv1.weight",
        "synthesis.b4.conv1.noise_strength", "synthesis.b4.conv1.noise_const", "synthesis.b4.conv1.affine.weight",
        "synthesis.b4.conv1.affine.bias", "synthesis.b4.conv1.bias", "synthesis.b4.conv1.resample_filter",
        "synthesis.b4.torgb.weight", "synthesis.b4.torgb.bias", "synthesis.b4.torgb.affine.weight",
        "synthesis.b8.conv0.weight", "synthesis.b8.conv0.resample_filter", "synthesis.b8.conv0.noise_const",
        "synthesis.b8.conv1.weight", "synthesis.b8.torgb.affine.bias", "synthesis.b8.resample_filter",
    }
    assert expected <= keys
    assert G.state_dict()["mapping.fc0.weight"].shape == (16, 32)  # z (16) + embed (16)
    D = tiny_D(res=8, c_dim=3)
    dkeys = set(D.state_dict())
    assert {"b8.fromrgb.weight", "b8.conv0.weight", "b8.conv1.weight", "b8.skip.weight", "b8.resample_filter",
            "b4.conv.weight", "b4.fc.weight", "b4.out.weight", "mapping.embed.weight", "mapping.fc0.weight"} <= dkeys
    assert "b8.skip.bias" not in dkeys
    assert D.state_dict()["b4.conv.weight"].shape[1] == D.state_dict()["b4.conv.weight"].shape[0] + 1  # + mbstd


def test_truncation_psi_zero_gives_w_avg_and_one_is_identity():
    G = tiny_G().eval()
    G.mapping.w_avg.copy_(torch.randn(16))
    z = torch.randn(3, 16)
    w1 = G.mapping(z, None)
    assert torch.equal(G.mapping(z, None, truncation_psi=1), w1)
    w0 = G.mapping(z, None, truncation_psi=0)
    assert torch.allclose(w0, G.mapping.w_avg.expand_as(w0))
    w_half = G.mapping(z, None, truncation_psi=0.5, truncation_cutoff=2)
    assert torch.allclose(w_half[:, :2], G.mapping.w_avg + 0.5 * (w1[:, :2] - G.mapping.w_avg), atol=1e-6)
    assert torch.equal(w_half[:, 2:], w1[:, 2:])


def test_w_avg_tracks_batch_mean_with_beta_0995_in_training():
    G = tiny_G().train()
    G.mapping.w_avg.zero_()
    z = torch.randn(8, 16)
    with torch.no_grad():
        ws = G.mapping(z, None)
    assert torch.allclose(G.mapping.w_avg, (1 - 0.995) * ws[:, 0].mean(0), atol=1e-6)
    G.eval()
    before = G.mapping.w_avg.clone()
    G.mapping(z, None)
    assert torch.equal(G.mapping.w_avg, before)


def test_noise_modes():
    G = tiny_G().eval()
    for name, p in G.named_parameters():
        if name.endswith("noise_strength"):
            p.data.fill_(0.5)
    ws = G.mapping(torch.randn(2, 16), None)
    const_a, const_b = G.synthesis(ws, noise_mode="const"), G.synthesis(ws, noise_mode="const")
    assert torch.equal(const_a, const_b)
    rand_a, rand_b = G.synthesis(ws, noise_mode="random"), G.synthesis(ws, noise_mode="random")
    assert not torch.allclose(rand_a, rand_b)
    none = G.synthesis(ws, noise_mode="none")
    for name, p in G.named_parameters():
        if name.endswith("noise_strength"):
            p.data.zero_()
    assert torch.allclose(G.synthesis(ws, noise_mode="const"), none, atol=1e-6)
    G.synthesis.b8.conv1.noise_const.add_(1.0)
    assert torch.allclose(G.synthesis(ws, noise_mode="const"), none, atol=1e-6)  # strength 0: buffer ignored
    with pytest.raises(ValueError):
        G.synthesis(ws, noise_mode="bogus")


def test_each_torgb_shares_w_with_next_conv0():
    G = tiny_G(res=16).eval()
    ws = G.mapping(torch.randn(1, 16), None)
    slices = G.synthesis.block_ws(ws)
    assert [s.shape[1] for s in slices] == [2, 3, 3]
    assert torch.equal(slices[0][:, 1], slices[1][:, 0])  # b4.torgb and b8.conv0 both read ws[:, 1]


def test_style_mixing_layers_come_from_second_w():
    # Style mixing (StyleGAN §3.1): w_mix[:, l] = w1[:, l] for l < cutoff and w2[:, l] for l >= cutoff, and each
    # synthesis layer reads only its own w, so the image of w_mix depends on w2 only through layers >= cutoff.
    from ganforge.synthesis.mixing import mix_at, mix_styles

    G = tiny_G(res=16).eval()
    g = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(2, 16, generator=g), torch.randn(2, 16, generator=g)
    ws1, ws2 = G.mapping(z1, None), G.mapping(z2, None)
    assert G.num_ws == 6
    for cutoff in (1, 3, 5):
        mixed = mix_at([ws1, ws2], [cutoff])
        for layer in range(G.num_ws):
            assert torch.equal(mixed[:, layer], (ws1 if layer < cutoff else ws2)[:, layer]), (cutoff, layer)
        assert torch.equal(mix_styles(ws1, ws2, range(cutoff, G.num_ws)), mixed)  # the figure's form
        img = G.synthesis(mixed, noise_mode="const")
        assert not torch.allclose(img, G.synthesis(ws1, noise_mode="const"), atol=1e-3)
        assert not torch.allclose(img, G.synthesis(ws2, noise_mode="const"), atol=1e-3)
        # w2's layers below the cutoff do not reach the image; its layers at and above it do.
        ws2_low = ws2.clone()
        ws2_low[:, :cutoff] += torch.randn(2, cutoff, 16, generator=g)
        assert torch.equal(G.synthesis(mix_at([ws1, ws2_low], [cutoff]), noise_mode="const"), img)
        ws2_high = ws2.clone()
        ws2_high[:, cutoff] += torch.randn(2, 16, generator=g)
        assert not torch.allclose(G.synthesis(mix_at([ws1, ws2_high], [cutoff]), noise_mode="const"), img, atol=1e-3)
    assert torch.equal(mix_at([ws1, ws2], [0]), ws2) and torch.equal(mix_at([ws1, ws2], [G.num_ws]), ws1)
    three = mix_at([ws1, ws2, ws1.flip(0)], [2, 4])
    assert torch.equal(three[:, :2], ws1[:, :2]) and torch.equal(three[:, 2:4], ws2[:, 2:4])
    assert torch.equal(three[:, 4:], ws1.flip(0)[:, 4:])
    assert torch.equal(mix_styles(ws1, ws2, [0, 4]), torch.stack([ws2[:, 0], ws1[:, 1], ws1[:, 2], ws1[:, 3],
                                                                 ws2[:, 4], ws1[:, 5]], dim=1))


def test_style_mixing_figure_cells_are_synthesis_of_the_mixed_ws(tmp_path):
    # ganforge.synthesis.mixing.style_mixing_figure (what `ganforge mix` runs): cell (r, c) is the row seed's
    # w with the `styles` layers taken from the column seed; here styles = cutoff.. so that the cell is
    # ws(r) below the cutoff and ws(c) from it on.
    from PIL import Image

    from ganforge.models.latents import to_uint8
    from ganforge.synthesis.mixing import style_mixing_figure

    G = tiny_G(res=16).eval()
    cutoff = 2
    out = style_mixing_figure(G, str(tmp_path), [5, 9], [11], list(range(cutoff, G.num_ws)))
    with torch.no_grad():
        ws = {s: G.mapping(z_from_seeds([s], 16), None) for s in (5, 9, 11)}
        for r in (5, 9):
            mixed = torch.cat([ws[r][:, :cutoff], ws[11][:, cutoff:]], dim=1)
            ref = to_uint8(G.synthesis(mixed, noise_mode="const"))[0].permute(1, 2, 0).numpy().astype(int)
            cell = np.asarray(Image.open(tmp_path / f"{r}-11.png")).astype(int)
            assert np.abs(cell - ref).max() <= 1, r
            unmixed = to_uint8(G.synthesis(ws[r], noise_mode="const"))[0].permute(1, 2, 0).numpy().astype(int)
            assert np.abs(cell - unmixed).max() > 8  # the mixing changed the image
    assert out["grid"] == str(tmp_path / "grid.png")


def test_conditional_networks_need_labels():
    G = tiny_G(c_dim=4).eval()
    c = torch.eye(4)[[0, 1]]
    assert G(torch.randn(2, 16), c).shape == (2, 3, 16, 16)
    with pytest.raises(ValueError, match="conditional"):
        G(torch.randn(2, 16), None)
    z = torch.randn(2, 16)
    assert ((G(z, c, noise_mode="const") - G(z, c.flip(0), noise_mode="const")).abs().amax(dim=(1, 2, 3)) > 1e-2).all()
    D = tiny_D(c_dim=4)
    assert D(torch.randn(2, 3, 16, 16), c).shape == (2, 1)


def test_projection_discriminator_uses_the_label():
    # Projection discriminator (Miyato & Koyama 2018; NVIDIA's epilogue): logit = <phi(x), cmap(c)> / sqrt(cmap_dim),
    # phi(x) = b4.out's output [N, cmap_dim], cmap(c) = D.mapping(c) [N, cmap_dim]. Change one input at a time.
    D = tiny_D(c_dim=4).eval()
    img = torch.randn(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    c_a, c_b = torch.eye(4)[[0, 1]], torch.eye(4)[[2, 3]]
    feats, cmaps = [], []
    D.b4.out.register_forward_hook(lambda m, i, o: feats.append(o.detach()))
    D.mapping.register_forward_hook(lambda m, i, o: cmaps.append(o.detach()))
    with torch.no_grad():
        a, a_again, b = D(img, c_a), D(img, c_a), D(img, c_b)
    assert torch.equal(a, a_again)                       # same images, same labels: same logits
    assert ((a - b).abs() > 1e-3).all(), (a, b)           # same images, other labels: every logit moves
    assert torch.equal(feats[0], feats[2])               # ... and only through cmap: phi(x) ignores c
    assert not torch.allclose(cmaps[0], cmaps[2])
    for logit, phi, cmap in ((a, feats[0], cmaps[0]), (b, feats[2], cmaps[2])):
        assert phi.shape == cmap.shape == (2, D.cmap_dim)
        assert torch.allclose(logit, (phi * cmap).sum(1, keepdim=True) / D.cmap_dim ** 0.5, atol=1e-6)


def test_seeds_give_numpy_randomstate_latents():
    z = z_from_seeds([0, 42], 512)
    assert torch.equal(z[1], torch.from_numpy(np.random.RandomState(42).randn(512)).float())


def test_sample_is_deterministic_uint8():
    # G.sample(seeds) = uint8(synthesis(w_avg + psi (mapping(z(seed), one_hot(class)) - w_avg), const noise)), with
    # z = RandomState(seed).randn(z_dim) and NVIDIA's uint8 rounding clamp(x * 127.5 + 128), written out here.
    G = tiny_G(c_dim=3).eval()
    G.mapping.w_avg.copy_(torch.randn(16, generator=torch.Generator().manual_seed(3)))
    a = G.sample([1, 2, 3], class_idx=2, truncation_psi=0.7)
    assert a.dtype == torch.uint8 and a.shape == (3, 3, 16, 16)
    assert torch.equal(a, G.sample([1, 2, 3], class_idx=2, truncation_psi=0.7, batch_size=2))
    z = torch.from_numpy(np.stack([np.random.RandomState(s).randn(16) for s in (1, 2, 3)])).float()
    with torch.no_grad():
        w = G.mapping(z, torch.tensor([[0.0, 0.0, 1.0]]).repeat(3, 1))
        w = G.mapping.w_avg + 0.7 * (w - G.mapping.w_avg)
        x = G.synthesis(w, noise_mode="const")
    ref = (x * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    diff = (a.int() - ref.int()).abs()
    assert diff.max() <= 1 and diff.eq(0).float().mean() > 0.99  # 1 level: float rounding at .5 boundaries only
    for other in (G.sample([1, 2, 3], class_idx=1, truncation_psi=0.7), G.sample([1, 2, 3], class_idx=2),
                  G.sample([2, 3, 4], class_idx=2, truncation_psi=0.7)):
        assert ((other.int() - a.int()).abs().amax(dim=(1, 2, 3)) > 8).all()  # class, psi and seed all matter


def test_freeze_d_turns_first_layers_into_buffers():
    D = tiny_D(res=16, block_kwargs=dict(freeze_layers=2))
    names = dict(D.named_parameters())
    assert "b16.fromrgb.weight" not in names and "b16.conv0.weight" not in names
    assert "b16.conv1.weight" in names
    assert "b16.fromrgb.weight" in D.state_dict()


def test_mapping_network_defaults_are_the_papers():
    # StyleGAN §C / NVIDIA defaults: 8 layers, lr multiplier 0.01, lrelu, w_avg decay 0.995.
    from ganforge.models.stylegan2 import MappingNetwork

    m = MappingNetwork(z_dim=512, c_dim=0, w_dim=512, num_ws=18)
    assert m.num_layers == 8 and m.w_avg_beta == 0.995
    assert m.fc0.weight_gain == pytest.approx(0.01 / 512 ** 0.5) and m.fc0.bias_gain == 0.01
    assert m.fc0.activation == "lrelu"
    G = Generator(512, 0, 512, 16, 3)
    assert G.synthesis.b8.conv0.affine.bias.detach().eq(1).all()  # style bias init 1 (StyleGAN2 §2.2)


def test_noise_source_supplies_the_random_noise_of_every_layer():
    # synthesis(ws, noise=fn): noise_mode='random' takes each layer's [N, 1, res, res] noise from fn:
    # the output is then a function of fn's noise only (the global RNG no longer matters).
    from ganforge.models.stylegan2 import SynthesisLayer

    G = tiny_G(res=16)
    for m in G.synthesis.modules():
        if isinstance(m, SynthesisLayer):
            m.noise_strength.data.fill_(0.5)
    ws = G.mapping(torch.randn(3, G.z_dim), None)
    calls = []

    def fn(layer, batch, res, device):
        calls.append((type(layer).__name__, batch, res))
        g = torch.Generator().manual_seed(res)
        return torch.randn([batch, 1, res, res], generator=g)

    outs = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        outs.append(G.synthesis(ws, noise_mode="random", noise=fn))
    assert torch.equal(outs[0], outs[1])
    assert {c[2] for c in calls} == {4, 8, 16} and all(c[1] == 3 for c in calls)
    torch.manual_seed(1)
    assert not torch.allclose(G.synthesis(ws, noise_mode="random"), outs[0])  # without: the global RNG
    assert torch.equal(G.synthesis(ws, noise_mode="const", noise=fn), G.synthesis(ws, noise_mode="const"))

