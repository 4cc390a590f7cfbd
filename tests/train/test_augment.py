"""The ADA augmentation pipe and the adaptive-p controller (ganforge.train.augment) against closed forms,
hand-computed pixel operations, finite differences and NVIDIA's outputs (tests/train/data)."""

import math
import os

import numpy as np
import pytest
import torch

from ganforge.errors import UsageError
from ganforge.train.augment import (AUGPIPE_SPECS, AdaController, AugmentPipe, ada_adjustment, affine2d, blit,
                                    brightness_matrix, build_augment_pipe, color_transform, contrast_matrix,
                                    geometric_transform, hue_rotation, imgfilter_bank, luma_flip_matrix,
                                    saturation_matrix, geom_filter_taps, upsample2x,
                                    downsample2x_crop)

DATA = os.path.join(os.path.dirname(__file__), "data", "augment_reference.npz")


def images(n=4, c=3, h=24, w=24, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand([n, c, h, w], generator=g, dtype=torch.float64) * 2 - 1).to(dtype)


def run(pipe, x, seed):
    torch.manual_seed(seed)
    return pipe(x)


# -- p = 0, determinism, presets ------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(AUGPIPE_SPECS))
def test_p0_is_the_exact_identity_and_draws_do_not_depend_on_p(name):
    x = images(3, 3, 24, 24)
    pipe = build_augment_pipe(name, p=0.0)
    assert torch.equal(run(pipe, x, 1), x)
    state_p0 = torch.get_rng_state()
    pipe.p.fill_(0.7)
    y = run(pipe, x, 1)
    assert not torch.equal(y, x)
    # Same number and shapes of draws at any p: the RNG stream after the call is the same.
    assert torch.equal(torch.get_rng_state(), state_p0)
    assert torch.equal(run(pipe, x, 1), y)  # seeded -> deterministic


def test_presets_nest_like_the_paper_and_unknown_names_are_usage_errors():
    # bgcfnc = blit + geom + color + filter + noise + cutout, each prefix adding one group (ADA Fig. 4).
    chain = ["blit", "bg", "bgc", "bgcf", "bgcfn", "bgcfnc"]
    for a, b in zip(chain, chain[1:]):
        assert set(AUGPIPE_SPECS[a]) < set(AUGPIPE_SPECS[b])
    assert AUGPIPE_SPECS["bg"] == {**AUGPIPE_SPECS["blit"], **AUGPIPE_SPECS["geom"]}
    assert AUGPIPE_SPECS["bgc"] == {**AUGPIPE_SPECS["bg"], **AUGPIPE_SPECS["color"]}
    assert all(v == 1 for spec in AUGPIPE_SPECS.values() for v in spec.values())
    with pytest.raises(UsageError) as e:
        build_augment_pipe("bgcx")
    msg = str(e.value)
    assert "\n" not in msg and "'bgcx'" in msg and all(n in msg for n in AUGPIPE_SPECS)
    with pytest.raises(UsageError):
        build_augment_pipe("bgc", p=1.5)


def test_unsupported_channel_counts_and_sizes_are_usage_errors():
    with pytest.raises(UsageError, match="2 channels"):
        build_augment_pipe("bgc", p=0.5)(images(2, 2, 16, 16))
    with pytest.raises(UsageError, match="4 channels"):  # raised at any p, not only once p has grown
        build_augment_pipe("color", p=0.0)(images(2, 4, 16, 16))
    # Channel-agnostic pipes take any channel count.
    assert build_augment_pipe("bg", p=0.5)(images(2, 4, 16, 16)).shape == (2, 4, 16, 16)
    with pytest.raises(UsageError, match="larger than 21x21"):
        build_augment_pipe("filter")(images(2, 3, 16, 16))
    with pytest.raises(UsageError, match="4 values"):
        AugmentPipe(imgfilter=1, imgfilter_bands=[1, 1, 1])


def test_pipe_state_is_only_p():
    pipe = build_augment_pipe("bgcfnc", p=0.25)
    sd = pipe.state_dict()
    assert list(sd) == ["p"] and sd["p"].item() == 0.25
    other = build_augment_pipe("bgcfnc")
    other.load_state_dict(sd)
    assert other.p.item() == 0.25


# -- pixel blitting ------------------------------------------------------------------------------------

def test_xflip_gives_exactly_flipped_or_identical_images():
    x = images(16, 3, 8, 8)
    y = run(AugmentPipe(xflip=1), x, 3)
    flipped = [torch.equal(y[i], x[i].flip(2)) for i in range(16)]
    same = [torch.equal(y[i], x[i]) for i in range(16)]
    assert all(f or s for f, s in zip(flipped, same))
    assert any(flipped) and any(same)


def test_rotate90_gives_exact_quarter_turns():
    x = images(32, 1, 8, 8)
    y = run(AugmentPipe(rotate90=1), x, 4)
    seen = set()
    for i in range(32):
        ks = [k for k in range(4) if torch.equal(y[i], torch.rot90(x[i], k, dims=(1, 2)))]
        assert len(ks) == 1
        seen.add(ks[0])
    assert seen == {0, 1, 2, 3}


def reflect_shift(x: np.ndarray, dx: int, dy: int) -> np.ndarray:
    """Hand-made integer translation with reflect padding: y[i, j] = x[r(i - dy), r(j - dx)]."""
    h, w = x.shape[-2:]

    def r(k, n):
        k = -k if k < 0 else k
        return 2 * (n - 1) - k if k > n - 1 else k

    y = np.empty_like(x)
    for i in range(h):
        for j in range(w):
            y[..., i, j] = x[..., r(i - dy, h), r(j - dx, w)]
    return y


def test_integer_translation_is_a_reflect_padded_shift_of_the_drawn_amount():
    n, h, w, xint_max = 8, 6, 10, 0.3
    x = images(n, 2, h, w)
    y = run(AugmentPipe(xint=1, xint_max=xint_max), x, 5)
    # The draws, by hand: t ~ U(-xint_max, xint_max)^2, applied when u < p (p = 1 here).
    torch.manual_seed(5)
    t = (torch.rand([n, 2]) * 2 - 1) * xint_max
    assert (torch.rand([n, 1]) < 1).all()
    shifts = [(round(float(t[i, 0]) * w), round(float(t[i, 1]) * h)) for i in range(n)]
    assert any(dx != 0 and dy != 0 for dx, dy in shifts)
    for i, (dx, dy) in enumerate(shifts):
        assert np.array_equal(y[i].numpy(), reflect_shift(x[i].numpy(), dx, dy)), (i, dx, dy)


def test_resampling_path_reproduces_integer_translations():
    # The general path (pad, 2x sym6 upsampling, bilinear sampling, downsampling) is the identity for
    # integer translations because the sym6 filter is orthogonal: it must agree with the exact blit.
    x = images(4, 3, 16, 16)
    t = torch.tensor([[0.0, 0.0], [3.0, -2.0], [-5.0, 1.0], [2.0, 7.0]])
    G = affine2d(1, 0, -t[:, 0], 0, 1, -t[:, 1], like=t[:, 0])
    y = geometric_transform(x, G, geom_filter_taps())
    assert torch.allclose(y, blit(x, G), atol=2e-5)


def test_polyphase_resampling_equals_the_direct_fir_ops():
    # upsample2x / downsample2x_crop filter at the low rate; they must equal zero insertion + FIR filtering.
    from ganforge.nn.resample import upfirdn2d, upsample2d

    taps = geom_filter_taps()
    f = torch.outer(taps, taps)
    x = images(2, 3, 10, 14)
    assert torch.allclose(upsample2x(x, taps), upsample2d(x, f, up=2), atol=1e-6)
    z = images(2, 3, 2 * 5 + 12, 2 * 7 + 12)
    direct = upfirdn2d(z, f, down=2, padding=[-1, -1, -1, -1], flip_filter=True)
    assert direct.shape == (2, 3, 5, 7)
    assert torch.allclose(downsample2x_crop(z, taps), direct, atol=1e-6)


# -- general geometry ----------------------------------------------------------------------------------

def blob(n, h, w, cx, cy, sigma=2.0):
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    return torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * sigma**2)).expand(n, 1, h, w).clone()


def centroid(img):
    h, w = img.shape[-2:]
    yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float64), torch.arange(w, dtype=torch.float64), indexing="ij")
    m = img.double().sum((-1, -2))
    return (img.double() * xx).sum((-1, -2)) / m, (img.double() * yy).sum((-1, -2)) / m


def test_fractional_translation_and_rotation_move_a_blob_as_the_matrix_says():
    f = geom_filter_taps()
    x = blob(2, 24, 24, 11.5, 11.5)
    # G_inv = translate(-d): content moves by +d (sub-pixel).
    d = torch.tensor([[0.3, -0.7], [-1.25, 0.5]])
    y = geometric_transform(x, affine2d(1, 0, -d[:, 0], 0, 1, -d[:, 1], like=d[:, 0]), f)
    cx, cy = centroid(y[:, 0])
    assert torch.allclose(cx - 11.5, d[:, 0].double(), atol=2e-3)
    assert torch.allclose(cy - 11.5, d[:, 1].double(), atol=2e-3)
    # Rotation about the image centre: output pixel p shows input pixel G_inv p, so with G_inv = R(theta)^-1
    # a blob at offset (5, 0) from the centre appears at 5 (cos theta, sin theta). Compared inside a disc
    # that reflections of the padding cannot reach; the resampler is not exact for rotations (bilinear on
    # the 2x grid, and the asymmetric sym6 filter), hence the tolerance (a wrong angle or sign gives ~1).
    theta = torch.tensor([0.7, -2.0])
    R_inv = affine2d(torch.cos(theta), torch.sin(theta), 0, -torch.sin(theta), torch.cos(theta), 0, like=theta)
    y = geometric_transform(blob(2, 24, 24, 11.5 + 5, 11.5), R_inv, f)
    yy, xx = torch.meshgrid(torch.arange(24.0), torch.arange(24.0), indexing="ij")
    disc = (xx - 11.5) ** 2 + (yy - 11.5) ** 2 <= 10**2
    for i in range(2):
        expected = blob(1, 24, 24, 11.5 + 5 * math.cos(theta[i]), 11.5 + 5 * math.sin(theta[i]))[0, 0]
        assert (y[i, 0] - expected)[disc].abs().max() < 0.06


def test_geometric_pipeline_keeps_a_constant_image_constant():
    x = torch.full([8, 3, 16, 16], 0.37)
    y = run(build_augment_pipe("bg", p=1.0), x, 6)
    assert (y - 0.37).abs().max() < 1e-5


# -- colour ----------------------------------------------------------------------------------------------

def luma(x):
    return x.mean(dim=1)  # v^T x / sqrt(3) with v = (1, 1, 1)/sqrt(3)


def test_colour_matrices_follow_their_equations():
    x = images(3, 3, 5, 5)
    b = torch.tensor([0.3, -0.2, 0.0])
    y = color_transform(x, brightness_matrix(b))
    assert torch.allclose(y - x, b.reshape(3, 1, 1, 1).expand_as(x), atol=1e-6)
    c = torch.tensor([2.0, 0.5, 1.0])
    assert torch.allclose(color_transform(x, contrast_matrix(c)), x * c.reshape(3, 1, 1, 1), atol=1e-6)
    # Saturation 0 leaves only luma: every channel becomes the mean of r, g, b.
    grey = color_transform(x, saturation_matrix(torch.zeros(3)))
    assert torch.allclose(grey, luma(x).unsqueeze(1).expand_as(x), atol=1e-6)
    s = torch.tensor([1.7, 0.3, 1.0])
    y = color_transform(x, saturation_matrix(s))
    assert torch.allclose(luma(y), luma(x), atol=1e-6)
    assert torch.allclose(y - luma(y).unsqueeze(1), (x - luma(x).unsqueeze(1)) * s.reshape(3, 1, 1, 1), atol=1e-6)
    # Hue rotation keeps luma and the chroma length, and is a rotation (orthogonal, det 1).
    theta = torch.tensor([0.5, -2.5, math.pi])
    R = hue_rotation(theta)
    y = color_transform(x, R)
    assert torch.allclose(luma(y), luma(x), atol=1e-6)
    chroma = lambda z: (z - luma(z).unsqueeze(1)).norm(dim=1)  # noqa: E731
    assert torch.allclose(chroma(y), chroma(x), atol=1e-5)
    assert torch.allclose(R @ R.transpose(1, 2), torch.eye(4).expand(3, 4, 4), atol=1e-6)
    assert torch.allclose(torch.linalg.det(R), torch.ones(3), atol=1e-6)
    # Luma flip negates luma and keeps chroma.
    y = color_transform(x, luma_flip_matrix(torch.tensor([1.0, 0.0, 1.0])))
    assert torch.allclose(luma(y), luma(x) * torch.tensor([-1.0, 1.0, -1.0]).reshape(3, 1, 1), atol=1e-6)
    assert torch.allclose(chroma(y), chroma(x), atol=1e-5)


def test_greyscale_colour_is_the_mean_of_the_rgb_transform():
    # A 1-channel image is treated as (g, g, g): transformed in RGB and averaged back.
    g = images(3, 1, 4, 4)
    C = brightness_matrix(torch.tensor([0.1, 0.2, -0.3])) @ contrast_matrix(torch.tensor([1.5, 0.7, 1.0])) \
        @ luma_flip_matrix(torch.tensor([1.0, 0.0, 1.0])) @ hue_rotation(torch.tensor([0.4, 1.0, -2.0]))
    expected = color_transform(g.expand(3, 3, 4, 4), C).mean(dim=1, keepdim=True)
    assert torch.allclose(color_transform(g, C), expected, atol=1e-6)


# -- image-space filter, noise, cutout ---------------------------------------------------------------------

def test_filter_bank_is_a_partition_of_unity_into_dyadic_bands():
    bank = imgfilter_bank()
    assert bank.shape == (4, 43)
    delta = np.zeros(43)
    delta[21] = 1
    assert np.allclose(bank.sum(0), delta, atol=1e-12)       # sum of the bands = identity filter
    assert np.allclose(bank, bank[:, ::-1], atol=1e-12)      # symmetric (zero phase)
    freq = np.abs(np.fft.rfft(bank, 4096, axis=1))           # band i peaks inside [pi/2^(4-i), pi/2^(3-i)]
    w = np.linspace(0, np.pi, freq.shape[1])
    edges = [0, np.pi / 8, np.pi / 4, np.pi / 2, np.pi]
    for i in range(4):
        assert edges[i] <= w[freq[i].argmax()] <= edges[i + 1]


def test_noise_and_cutout_do_what_they_say():
    x = images(16, 3, 16, 16)
    y = run(AugmentPipe(cutout=1, cutout_size=0.5), x, 7)
    for i in range(16):
        zero = (y[i] == 0).all(dim=0)
        assert zero.sum() > 0 and zero.sum() <= 64  # at most an 8x8 square
        rows, cols = zero.nonzero(as_tuple=True)
        assert zero[rows.min():rows.max() + 1, cols.min():cols.max() + 1].all()  # one rectangle
        assert torch.equal(y[i][:, ~zero], x[i][:, ~zero])
    y = run(AugmentPipe(noise=1, noise_std=0.1), x, 8)
    d = (y - x).reshape(16, -1)
    assert (d.std(dim=1) < 0.5).all() and (d.mean(dim=1).abs() < 4 * d.std(dim=1) / 27).all()


# -- gradients ---------------------------------------------------------------------------------------------

def test_gradient_matches_finite_differences_for_a_fixed_draw():
    # For a fixed draw the pipe is affine in the images (resampling, colour matrix, filter, noise, mask),
    # so finite differences in float64 are exact up to rounding.
    pipe = build_augment_pipe("bgcfnc", p=0.8)
    x = images(2, 3, 22, 22, dtype=torch.float64).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: run(pipe, z, 9), (x,), eps=1e-6, atol=1e-7, fast_mode=True)


def test_second_order_gradients_flow_for_r1_on_augmented_reals():
    # R1 differentiates grad_x D(aug(x)) again w.r.t. D's parameters: the pipe must be twice differentiable.
    pipe = build_augment_pipe("bgc", p=1.0)
    x = images(2, 3, 8, 8, dtype=torch.float64).requires_grad_(True)
    w = torch.randn(3, 8, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda z, v: torch.tanh(run(pipe, z, 10) * v).sum(), (x, w), fast_mode=True)


# -- parity with NVIDIA's pipe --------------------------------------------------------------------------

def test_matches_nvidia_reference_outputs():
    """tests/train/data/augment_reference.npz holds, per preset, an input x, a seed s, p and y =
    (torch.manual_seed(s); AugmentPipe(**spec)(x)) computed with NVIDIA's stylegan2-ada-pytorch
    training/augment.py on CPU (commit stored in the file), by scripts/reference/ada_pipeline.py (which also
    says how x was drawn). ganforge draws the same random numbers in the same order, so outputs agree to float
    rounding of the resampling (atol 1e-4; the full-size comparison in /work/ref/ada/parity.py sees <= 9e-5).
    NVIDIA's flips and 90-degree rotations go through the resampler, so 'blit' is compared with
    lossless_blit=False."""
    ref = np.load(DATA)
    for name in ("bgc", "blit", "bgcfnc"):
        x = torch.from_numpy(ref[f"{name}/x"])
        pipe = AugmentPipe(**AUGPIPE_SPECS[name], lossless_blit=False)
        pipe.p.fill_(float(ref[f"{name}/p"]))
        y = run(pipe, x, int(ref[f"{name}/seed"]))
        expected = torch.from_numpy(ref[f"{name}/y"])
        assert (expected - x).abs().max() > 0.1  # the reference really augments
        assert torch.allclose(y, expected, atol=1e-4), (name, (y - expected).abs().max())


# -- the ADA controller ------------------------------------------------------------------------------------

def logits_with_mean_sign(mean_sign: float, n: int = 10) -> torch.Tensor:
    k = round((mean_sign + 1) / 2 * n)  # k positive, n - k negative
    return torch.tensor([1.5] * k + [-0.5] * (n - k)).reshape(n, 1)


def test_ada_adjustment_is_the_papers_step():
    # delta_p = sign(r_t - target) * batch * interval / (kimg * 1000)
    assert ada_adjustment(0.8, 0.6, batch_size=64, interval=4, kimg=500) == 64 * 4 / 500_000
    assert ada_adjustment(0.2, 0.6, batch_size=64, interval=4, kimg=500) == -64 * 4 / 500_000
    assert ada_adjustment(0.6, 0.6, batch_size=64, interval=4, kimg=500) == 0.0


def test_ada_controller_raises_lowers_and_clamps_p():
    pipe = build_augment_pipe("bgc", p=0.0)
    ada = AdaController(pipe, batch_size=5, interval=4, kimg=0.1)  # one step = 20 / 100 = 0.2
    step = 5 * 4 / 100
    ps = []
    # r_t per interval: 1.0, 0.8 (> 0.6: up), 0.6 (= target: stay), 0.2, -1.0, -1.0 (down, clamped at 0)
    for r in (1.0, 0.8, 0.6, 0.2, -1.0, -1.0):
        for b in range(4):
            ada.accumulate(logits_with_mean_sign(r))
            adjusted = ada.step()
            assert adjusted == (b == 3)
            if b < 3:  # p only moves every `interval` minibatches
                assert ps == [] or pipe.p.item() == ps[-1]
        ps.append(pipe.p.item())
    expected = [step, 2 * step, 2 * step, step, 0.0, 0.0]
    assert np.allclose(ps, expected, atol=1e-7)
    # r_t pools all logits of the interval: mean sign 0.5 overall (< 0.6) even though one pass had 1.0.
    pipe.p.fill_(0.5)
    for r in (1.0, 1.0, 0.0, 0.0):
        ada.accumulate(logits_with_mean_sign(r))
        ada.step()
    assert pipe.p.item() == pytest.approx(0.5 - step)
    # No logits seen in an interval: p stays.
    for _ in range(4):
        ada.step()
    assert pipe.p.item() == pytest.approx(0.5 - step)


def test_ada_controller_state_round_trip_resumes_exactly():
    seq = [0.8, 1.0, 0.2, 0.6, -0.4, 1.0, 1.0, 0.8, 0.2, 0.0, 0.4, 1.0, 0.6, 0.8]

    def drive(ada, rs):
        for r in rs:
            ada.accumulate(logits_with_mean_sign(r))
            ada.accumulate(logits_with_mean_sign(r, n=4))  # e.g. Dmain and Dreg passes
            ada.step()

    full = AdaController(build_augment_pipe("bgc", p=0.1), batch_size=8, kimg=0.2)
    drive(full, seq)
    first = AdaController(build_augment_pipe("bgc", p=0.1), batch_size=8, kimg=0.2)
    drive(first, seq[:6])  # stop mid-interval (6 = 4 + 2): pending sums and counter matter
    state = first.state_dict()
    assert state["batches"] == 2 and state["count"] == 28
    resumed = AdaController(build_augment_pipe("bgc", p=0.0), batch_size=8, kimg=0.2)
    resumed.load_state_dict({k: v for k, v in state.items()})
    drive(resumed, seq[6:])
    assert resumed.pipe.p.item() == full.pipe.p.item() != 0.1
    assert resumed.state_dict() == full.state_dict()


def _ada_rank(rank: int, world: int, init_file: str, out_file: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        ada = AdaController(build_augment_pipe("bgc", p=0.5), batch_size=8, kimg=0.1)
        # Rank 0 sees mostly positive logits, rank 1 mostly negative: only the pooled r_t decides.
        r = [1.0, 0.4][rank]  # pooled: (1.0 * 10 + 0.4 * 10) / 20 = 0.7 > 0.6 -> p rises
        for _ in range(4):
            ada.accumulate(logits_with_mean_sign(r))
            ada.step()
        p_after_first = ada.pipe.p.item()
        ada.accumulate(logits_with_mean_sign([0.0, 1.0][rank]))  # pending: rank 0: 0.0, rank 1: 1.0
        ada.synchronize()
        state = ada.state_dict()
        torch.save({"p": p_after_first, "state": state}, f"{out_file}.{rank}")
    finally:
        dist.destroy_process_group()


def test_ada_controller_pools_signs_over_ranks(tmp_path):
    import torch.multiprocessing as mp

    out = str(tmp_path / "out")
    mp.start_processes(_ada_rank, args=(2, str(tmp_path / "init"), out), nprocs=2, join=True, start_method="fork")
    r0, r1 = (torch.load(f"{out}.{r}", weights_only=True) for r in range(2))
    step = 8 * 4 / 100
    assert r0["p"] == r1["p"] == pytest.approx(0.5 + step)  # rank 1 alone (0.4 < 0.6) would have lowered p
    # synchronize() gathers the pending sums on rank 0, so rank 0's state alone resumes exactly.
    assert (r0["state"]["sign_sum"], r0["state"]["count"]) == (10.0, 20.0)
    assert (r1["state"]["sign_sum"], r1["state"]["count"]) == (0.0, 0.0)
