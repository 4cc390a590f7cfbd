"""BigGAN generator and discriminator (Brock et al. 2019, "Large Scale GAN Training for High Fidelity
Natural Image Synthesis"), with the architecture tables of ajbrock/BigGAN-PyTorch's BigGAN.py.

Also the parts BigGAN-deep (models/biggan_deep.py) shares: the resolution tables' common code
(`Stage`, `G_STAGES`), the generator and discriminator bases (shared class embedding, input checks,
output layer, `sample`, the projection head) and the initialisation switch.

Shapes: z [N, z_dim], c [N, c_dim] one-hot (or a convex mixture of one-hots: class interpolation),
h (a BatchNorm's condition) [N, cond_dim], img [N, img_channels, R, R] in [-1, 1]; D(img, c) -> [N, 1].
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.models.latents import (
    TRUNCATION_MODES,
    class_labels,
    statistics_truncation,
    to_uint8,
    truncated_z_from_seeds,
)
from ganforge.nn.attention import SelfAttention
from ganforge.nn.batchnorm import BatchNorm2d, ConditionalBatchNorm2d
from ganforge.nn.init import orthogonal_init_
from ganforge.nn.resample import ChannelsLast, LayoutSetting, to_preferred_layout
from ganforge.nn.spectral_norm import ClassEmbedding, SNConv2d, SNEmbedding, SNLinear

RESOLUTIONS = (32, 64, 128, 256, 512)
BOTTOM_WIDTH = 4          # G starts from a 4x4 feature map (BigGAN-PyTorch's bottom_width)
INIT_MODES = ("ortho", "none")   # "ortho": BigGAN's --G_init/--D_init ortho; "none": PyTorch's defaults


# -- architecture tables ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Stage:
    """One row entry of an architecture table: a residual stage of in_mult*ch -> out_mult*ch channels.

    in_mult None: the stage reads the image (img_channels channels; the non-deep D's first block).
    resample: G upsamples x2 (nearest), D average-pools /2.
    resolution: the table's resolution entry, the key `attention` is matched against (G: the output
    resolution; D: BigGAN-PyTorch's D_arch 'resolution', which at 32 px is 16 for every block).
    """

    in_mult: int | None
    out_mult: int
    resample: bool
    resolution: int


def stages(in_mults: Sequence[int | None], out_mults: Sequence[int], resample: Sequence[bool],
           resolutions: Sequence[int]) -> tuple[Stage, ...]:
    """A table row from BigGAN-PyTorch's column lists (in_channels, out_channels, up/downsample, resolution)."""
    if not len(in_mults) == len(out_mults) == len(resample) == len(resolutions):
        raise ValueError("architecture table columns differ in length")
    return tuple(Stage(*row) for row in zip(in_mults, out_mults, resample, resolutions))


# G_arch of BigGAN.py (and, 32-256, identically BigGANdeep.py): every stage upsamples, 4 -> R.
G_STAGES = {
    32: stages([4, 4, 4], [4, 4, 4], [True] * 3, [8, 16, 32]),
    64: stages([16, 16, 8, 4], [16, 8, 4, 2], [True] * 4, [8, 16, 32, 64]),
    128: stages([16, 16, 8, 4, 2], [16, 8, 4, 2, 1], [True] * 5, [8, 16, 32, 64, 128]),
    256: stages([16, 16, 8, 8, 4, 2], [16, 8, 8, 4, 2, 1], [True] * 6, [8, 16, 32, 64, 128, 256]),
    512: stages([16, 16, 8, 8, 4, 2, 1], [16, 8, 8, 4, 2, 1, 1], [True] * 7, [8, 16, 32, 64, 128, 256, 512]),
}

# D_arch of BigGAN.py for 32-256 (the 32-px row's odd resolution column kept: attention matches 16 for
# every block). The 512 row is ganforge's extension: the mirror of G's 512 row followed by a
# non-downsampling 16ch -> 16ch block, the pattern of the 128 and 256 rows.
D_STAGES = {
    32: stages([None, 4, 4, 4], [4, 4, 4, 4], [True, True, False, False], [16, 16, 16, 16]),
    64: stages([None, 1, 2, 4, 8], [1, 2, 4, 8, 16], [True] * 4 + [False], [32, 16, 8, 4, 4]),
    128: stages([None, 1, 2, 4, 8, 16], [1, 2, 4, 8, 16, 16], [True] * 5 + [False], [64, 32, 16, 8, 4, 4]),
    256: stages([None, 1, 2, 4, 8, 8, 16], [1, 2, 4, 8, 8, 16, 16], [True] * 6 + [False],
                [128, 64, 32, 16, 8, 4, 4]),
    512: stages([None, 1, 1, 2, 4, 8, 8, 16], [1, 1, 2, 4, 8, 8, 16, 16], [True] * 7 + [False],
                [256, 128, 64, 32, 16, 8, 4, 4]),
}


def check_resolution(img_resolution: int) -> int:
    """img_resolution if the architecture tables have a row for it, else a ValueError."""
    if img_resolution not in RESOLUTIONS:
        raise ValueError(f"img_resolution must be one of {', '.join(map(str, RESOLUTIONS))}, got {img_resolution}")
    return int(img_resolution)


def check_attention(attention: Sequence[int]) -> tuple[int, ...]:
    """The resolutions that get self-attention, as a tuple of ints (ones the table lacks are ignored, as
    BigGAN-PyTorch ignores '64' at 32 px)."""
    if isinstance(attention, (int, str)):
        raise TypeError(f"attention must be a list of resolutions, e.g. [64], got {attention!r}")
    return tuple(int(r) for r in attention)


def constructor_kwargs(local_vars: dict) -> dict:
    """A network's init_kwargs from its __init__'s locals() taken first thing: every constructor argument,
    deep-copied, with tuples as lists (JSON-friendly)."""
    def plain(v):
        return [plain(x) for x in v] if isinstance(v, (list, tuple)) else copy.deepcopy(v)

    return {k: plain(v) for k, v in local_vars.items() if k not in ("self", "__class__")}


def apply_init(module: nn.Module, init: str) -> None:
    """BigGAN's weight initialisation of a whole network: orthogonal for every conv, linear and
    embedding weight (init="ortho", orthogonal_init_), or PyTorch's defaults (init="none")."""
    if init not in INIT_MODES:
        raise ValueError(f"init must be one of {', '.join(INIT_MODES)}, got {init!r}")
    if init == "ortho":
        orthogonal_init_(module)


def upsample_nearest(x: torch.Tensor) -> torch.Tensor:
    """x2 nearest-neighbour upsampling, G's only resampling: [N, C, H, W] -> [N, C, 2H, 2W]."""
    return F.interpolate(x, scale_factor=2, mode="nearest")


def _check_rows(name: str, x: torch.Tensor, width: int, batch: int | None = None) -> None:
    if x.ndim != 2 or x.shape[1] != width or (batch is not None and x.shape[0] != batch):
        rows = "batch" if batch is None else str(batch)
        raise ValueError(f"{name} must be [{rows}, {width}], got {list(x.shape)}")


# -- hierarchical latent ----------------------------------------------------------------------------

def z_chunk_sizes(z_dim: int, img_resolution: int) -> list[int]:
    """The hierarchical latent's chunk sizes at a resolution (BigGAN §3 / App. B, "skip-z"): one slot
    for the input linear layer and one per G block, num_slots = len(G_STAGES[R]) + 1, each of
    z_dim / num_slots (128 px: 6 slots, 120 -> 6 x 20; 256 px: 7, 140 -> 7 x 20; 512 px: 8, 128 -> 8 x 16).

    z_dim must be a multiple of num_slots: BigGAN-PyTorch silently drops the remainder; we raise.
    """
    num_slots = len(G_STAGES[check_resolution(img_resolution)]) + 1
    if z_dim < num_slots or z_dim % num_slots:
        lower, upper = max(num_slots, z_dim // num_slots * num_slots), (z_dim // num_slots + 1) * num_slots
        valid = f"{lower} or {upper}" if lower < z_dim else f"{upper}"
        raise ValueError(f"z_dim {z_dim} does not split evenly into the {num_slots} slots of a hierarchical "
                         f"{img_resolution}-px BigGAN (the input layer and {num_slots - 1} blocks): use a "
                         f"multiple of {num_slots}, e.g. {valid}, or hier=False")
    return [z_dim // num_slots] * num_slots


def hierarchical_z_split(z: torch.Tensor, num_slots: int) -> tuple[torch.Tensor, ...]:
    """Split z into equal chunks (BigGAN's hierarchical latent space):

    z = [z_0, z_1, ..., z_{S-1}],  z_s = z[:, s*k : (s+1)*k],  k = z_dim / S
    z_0 feeds the input linear layer; block b's conditional BatchNorms get h_b = [e(c), z_{b+1}].

    z: [N, z_dim] (z_dim a multiple of num_slots S) -> S tensors [N, z_dim / S]
    """
    if z.ndim != 2 or z.shape[1] % num_slots:
        raise ValueError(f"z must be [batch, z_dim] with z_dim a multiple of {num_slots}, got {list(z.shape)}")
    return torch.split(z, z.shape[1] // num_slots, dim=1)


# -- what both generators share ---------------------------------------------------------------------

class ConditionalGenerator(LayoutSetting, nn.Module):
    """Base of the BigGAN generators: the shared class embedding e(c) = c E (E: `shared.weight`
    [c_dim, embed_dim], no spectral norm, as in BigGAN-PyTorch), input checks, the output layer

        img = tanh(output_conv(ReLU(output_bn(x)))[:, :img_channels])     x: [N, ch, R, R]

    and `sample`. Subclasses build `linear`, `blocks`, `attention` between `_build_embedding` and
    `_build_output`.
    """

    def _build_embedding(self, z_dim: int, c_dim: int, img_resolution: int, img_channels: int, embed_dim: int,
                         truncation_mode: str) -> None:
        if c_dim < 1:
            raise ValueError(f"BigGAN is class-conditional: c_dim (the number of classes) must be >= 1, got {c_dim}")
        if truncation_mode not in TRUNCATION_MODES:
            raise ValueError(f"truncation_mode must be one of {', '.join(TRUNCATION_MODES)}, got {truncation_mode!r}")
        self.z_dim, self.c_dim, self.embed_dim = int(z_dim), int(c_dim), int(embed_dim)
        self.img_resolution, self.img_channels = check_resolution(img_resolution), int(img_channels)
        self.truncation_mode = truncation_mode
        self.channels_last: ChannelsLast = None
        self.shared = ClassEmbedding(c_dim, embed_dim)

    def _build_output(self, channels: int, out_channels: int, out_bn_eps: float, n_stats: int, sn_eps: float,
                      sn_eval_mode: str) -> None:
        if out_channels < self.img_channels:
            raise ValueError(f"rgb_channels ({out_channels}) must be >= img_channels ({self.img_channels})")
        self.output_bn = BatchNorm2d(channels, eps=out_bn_eps, n_stats=n_stats)
        self.output_conv = SNConv2d(channels, out_channels, kernel_size=3, sn_eps=sn_eps, sn_eval_mode=sn_eval_mode)

    def embed(self, c: torch.Tensor) -> torch.Tensor:
        """The shared class embedding e(c) = c E: c [N, c_dim] -> [N, embed_dim] (linear in c, so a
        mixture of one-hots gives the same mixture of class embeddings)."""
        _check_rows("c", c, self.c_dim)
        return self.shared(c)

    def _check_inputs(self, z: torch.Tensor, c: torch.Tensor) -> None:
        _check_rows("z", z, self.z_dim)
        _check_rows("c", c, self.c_dim, z.shape[0])

    def _input_map(self, x: torch.Tensor) -> torch.Tensor:
        """The input linear layer's output [N, C0 * 4 * 4] viewed channel-major as [N, C0, 4, 4]."""
        x = x.reshape(x.shape[0], -1, BOTTOM_WIDTH, BOTTOM_WIDTH)
        return to_preferred_layout(x, self.channels_last)

    def _to_image(self, x: torch.Tensor, truncation: float | None) -> torch.Tensor:
        x = self.output_conv(F.relu(self.output_bn(x, truncation)))
        return torch.tanh(x[:, :self.img_channels]).contiguous()

    def sample(self, seeds: Sequence[int], class_idx: int | None = None, truncation: float | None = None,
               truncation_mode: str | None = None, batch_size: int = 16) -> torch.Tensor:
        """Images of class `class_idx` for integer seeds, as uint8 [N, img_channels, R, R].

        z = truncated_z_from_seeds(seeds, z_dim, truncation, mode) (mode: this network's truncation_mode
        unless given); n_stats > 1 networks normalise with the statistics for
        statistics_truncation(truncation, mode) (the scale of "scale" sampling).
        Runs in the network's current mode: call .eval() first (training mode normalises with the batch's
        moments, so an image would depend on the others in its batch).
        """
        mode = self.truncation_mode if truncation_mode is None else truncation_mode
        device = next(self.parameters()).device
        out = []
        with torch.no_grad():
            for i in range(0, len(seeds), batch_size):
                chunk = list(seeds[i:i + batch_size])
                z = truncated_z_from_seeds(chunk, self.z_dim, truncation, mode).to(device)
                c = class_labels(class_idx, self.c_dim, len(chunk)).to(device)
                out.append(to_uint8(self(z, c, truncation=statistics_truncation(truncation, mode))).cpu())
        if not out:
            return torch.zeros([0, self.img_channels, self.img_resolution, self.img_resolution], dtype=torch.uint8)
        return torch.cat(out)


class ProjectionDiscriminator(LayoutSetting, nn.Module):
    """Base of the BigGAN discriminators: input checks and the projection head (Miyato & Koyama 2018):

        phi   = sum_{x,y} ReLU(h[:, :, y, x])                    global sum pooling, [N, C]
        D(x, c) = linear(phi) + sum_k embed(c)_k phi_k           [N, 1]

    linear: SNLinear(C -> 1); embed: SNEmbedding(c_dim, C) (weight [c_dim, C]).
    """

    def _build_input(self, c_dim: int, img_resolution: int, img_channels: int) -> None:
        if c_dim < 1:
            raise ValueError(f"BigGAN is class-conditional: c_dim (the number of classes) must be >= 1, got {c_dim}")
        self.c_dim, self.img_channels = int(c_dim), int(img_channels)
        self.img_resolution = check_resolution(img_resolution)
        self.channels_last: ChannelsLast = None

    def _build_head(self, channels: int, sn_eps: float, sn_eval_mode: str) -> None:
        self.linear = SNLinear(channels, 1, sn_eps=sn_eps, sn_eval_mode=sn_eval_mode)
        self.embed = SNEmbedding(self.c_dim, channels, sn_eps=sn_eps, sn_eval_mode=sn_eval_mode)

    def _check_inputs(self, img: torch.Tensor, c: torch.Tensor) -> None:
        expected = [self.img_channels, self.img_resolution, self.img_resolution]
        if img.ndim != 4 or list(img.shape[1:]) != expected:
            raise ValueError(f"D expects images [batch, {', '.join(map(str, expected))}], got {list(img.shape)}")
        _check_rows("c", c, self.c_dim, img.shape[0])

    def _head(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        phi = F.relu(h).sum(dim=(2, 3))
        return self.linear(phi) + (self.embed(c) * phi).sum(dim=1, keepdim=True)


# -- BigGAN ---------------------------------------------------------------------------------------

class GBlock(nn.Module):
    """BigGAN's residual up-block (BigGAN-PyTorch layers.GBlock; paper Fig. 15b):

        h   = conv2(ReLU(bn2(conv1(up(ReLU(bn1(x, c_b)))), c_b)))     conv1, conv2: SN 3x3
        out = h + conv_sc(up(x))          conv_sc: SN 1x1 when in != out or upsampling, else identity

    bn1, bn2: ConditionalBatchNorm2d with condition c_b = [e(c), z_{b+1}] (or e(c) without hier).
    x: [N, in, H, W], c_b: [N, cond_dim] -> [N, out, 2H, 2W] (H, W when not upsampling)
    """

    def __init__(self, in_channels: int, out_channels: int, cond_dim: int, upsample: bool = True,
                 bn_eps: float = 1e-5, n_stats: int = 1, sn_eps: float = 1e-6, sn_eval_mode: str = "stored"):
        super().__init__()
        sn = {"sn_eps": sn_eps, "sn_eval_mode": sn_eval_mode}
        self.upsample = upsample
        self.bn1 = ConditionalBatchNorm2d(in_channels, cond_dim, eps=bn_eps, n_stats=n_stats, **sn)
        self.conv1 = SNConv2d(in_channels, out_channels, kernel_size=3, **sn)
        self.bn2 = ConditionalBatchNorm2d(out_channels, cond_dim, eps=bn_eps, n_stats=n_stats, **sn)
        self.conv2 = SNConv2d(out_channels, out_channels, kernel_size=3, **sn)
        self.conv_sc = (SNConv2d(in_channels, out_channels, kernel_size=1, **sn)
                        if in_channels != out_channels or upsample else None)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, truncation: float | None = None) -> torch.Tensor:
        h = F.relu(self.bn1(x, cond, truncation))
        if self.upsample:
            h, x = upsample_nearest(h), upsample_nearest(x)
        h = self.conv2(F.relu(self.bn2(self.conv1(h), cond, truncation)))
        return h + (self.conv_sc(x) if self.conv_sc is not None else x)


class Generator(ConditionalGenerator):
    """BigGAN generator (Brock et al. 2019, App. B Table 4; BigGAN-PyTorch BigGAN.Generator).

    128 px, channel_width ch = 96, z_dim 120, hier (the released BigGAN-PyTorch model):
        z [N, 120] -> 6 chunks of 20;  e = shared(c) [N, 128]
        linear(z_0): SNLinear 20 -> 16ch*4*4, viewed [N, 16ch, 4, 4]
        GBlock 16ch->16ch (8), 16ch->8ch (16), 8ch->4ch (32), 4ch->2ch (64) + attention, 2ch->ch (128),
            block b conditioned on h_b = [e, z_{b+1}] ([N, 128 + 20])
        output: BatchNorm2d(out_bn_eps) -> ReLU -> SNConv3x3(ch -> img_channels) -> tanh
    Other resolutions: G_STAGES. hier=False: the whole z feeds `linear` and every h_b = e.

    G(z [N, z_dim], c [N, c_dim], truncation=None) -> img [N, img_channels, R, R]; `truncation` picks
    the BatchNorm statistics when n_stats > 1 (None: 1.0) and is ignored otherwise.
    Self-attention (SelfAttention, `attention.{i}`) follows block i when its output resolution is in
    `attention`. out_bn_eps: BigGAN-PyTorch's output BN uses 1e-5 whatever --BN_eps is.
    """

    def __init__(self, z_dim: int = 120, c_dim: int = 1000, img_resolution: int = 128, img_channels: int = 3,
                 channel_width: int = 96, embed_dim: int = 128, hier: bool = True, attention: Sequence[int] = (64,),
                 bn_eps: float = 1e-5, out_bn_eps: float = 1e-5, sn_eps: float = 1e-6, sn_eval_mode: str = "stored",
                 n_stats: int = 1, truncation_mode: str = "resample", init: str = "ortho"):
        init_kwargs = constructor_kwargs(locals())
        super().__init__()
        self.init_kwargs = init_kwargs
        attention = check_attention(attention)
        self._build_embedding(z_dim, c_dim, img_resolution, img_channels, embed_dim, truncation_mode)
        table = G_STAGES[self.img_resolution]
        self.channel_width, self.hier, self.n_stats, self.attention_resolutions = channel_width, hier, n_stats, attention
        self.num_slots = len(z_chunk_sizes(z_dim, img_resolution)) if hier else 1
        self.z_chunk_size = z_dim // self.num_slots if hier else 0
        self.cond_dim = embed_dim + self.z_chunk_size
        sn = {"sn_eps": sn_eps, "sn_eval_mode": sn_eval_mode}
        ch = channel_width
        self.linear = SNLinear(z_dim // self.num_slots, table[0].in_mult * ch * BOTTOM_WIDTH ** 2, **sn)
        self.blocks = nn.ModuleList([GBlock(s.in_mult * ch, s.out_mult * ch, self.cond_dim, upsample=s.resample,
                                            bn_eps=bn_eps, n_stats=n_stats, **sn) for s in table])
        self.attention = nn.ModuleDict({str(i): SelfAttention(s.out_mult * ch, **sn)
                                        for i, s in enumerate(table) if s.resolution in attention})
        self._build_output(table[-1].out_mult * ch, img_channels, out_bn_eps, n_stats, **sn)
        apply_init(self, init)

    def forward(self, z: torch.Tensor, c: torch.Tensor, truncation: float | None = None) -> torch.Tensor:
        self._check_inputs(z, c)
        e = self.shared(c)
        if self.hier:
            z0, *chunks = hierarchical_z_split(z, self.num_slots)
            conds = [torch.cat([e, z_b.to(e.dtype)], dim=1) for z_b in chunks]
        else:
            z0, conds = z, [e] * len(self.blocks)
        x = self._input_map(self.linear(z0.to(e.dtype)))
        for i, (block, cond) in enumerate(zip(self.blocks, conds)):
            x = block(x, cond, truncation)
            if str(i) in self.attention:
                x = self.attention[str(i)](x)
        return self._to_image(x, truncation)


class DBlock(nn.Module):
    """BigGAN's residual down-block (BigGAN-PyTorch layers.DBlock; paper Fig. 15c):

        h   = pool(conv2(ReLU(conv1(a(x)))))         a = ReLU (preactivation) or identity (first block)
        out = h + pool(conv_sc(x))    (preactivation)   |   h + conv_sc(pool(x))   (first block)

    conv1: SN 3x3 in -> hidden, conv2: SN 3x3 hidden -> out, hidden = out (wide) or in; conv_sc: SN 1x1,
    present when in != out or downsampling (else identity); pool: 2x2 average pooling when downsampling.
    x: [N, in, H, W] -> [N, out, H/2, W/2] (H, W without downsampling)
    """

    def __init__(self, in_channels: int, out_channels: int, downsample: bool, preactivation: bool, wide: bool = True,
                 sn_eps: float = 1e-6, sn_eval_mode: str = "stored"):
        super().__init__()
        sn = {"sn_eps": sn_eps, "sn_eval_mode": sn_eval_mode}
        hidden = out_channels if wide else in_channels
        self.downsample, self.preactivation = downsample, preactivation
        self.conv1 = SNConv2d(in_channels, hidden, kernel_size=3, **sn)
        self.conv2 = SNConv2d(hidden, out_channels, kernel_size=3, **sn)
        self.conv_sc = (SNConv2d(in_channels, out_channels, kernel_size=1, **sn)
                        if in_channels != out_channels or downsample else None)

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) if self.downsample else x

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.conv_sc is None:
            return self._pool(x)
        return self._pool(self.conv_sc(x)) if self.preactivation else self.conv_sc(self._pool(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(x) if self.preactivation else x   # out of place: the shortcut reads x
        h = self._pool(self.conv2(F.relu(self.conv1(h))))
        return h + self.shortcut(x)


class Discriminator(ProjectionDiscriminator):
    """BigGAN discriminator (Brock et al. 2019, App. B Table 4; BigGAN-PyTorch BigGAN.Discriminator).

    128 px, channel_width ch = 96:
        DBlock img->ch (64) + attention, ch->2ch (32), 2ch->4ch (16), 4ch->8ch (8), 8ch->16ch (4),
        16ch->16ch (4, no downsampling); the first block without preactivation
        head: ReLU -> global sum pooling -> SNLinear(16ch -> 1) + projection sum(embed(c) * phi)
    Other resolutions: D_STAGES (32-256 as BigGAN-PyTorch, whose 32-px row matches attention 16 for
    every block; 512 is ganforge's extension). Attention (`attention.{i}`) follows block i when its
    table resolution is in `attention`.

    D(img [N, img_channels, R, R], c [N, c_dim]) -> [N, 1]
    """

    def __init__(self, c_dim: int = 1000, img_resolution: int = 128, img_channels: int = 3, channel_width: int = 96,
                 attention: Sequence[int] = (64,), sn_eps: float = 1e-6, sn_eval_mode: str = "stored",
                 wide: bool = True, init: str = "ortho"):
        init_kwargs = constructor_kwargs(locals())
        super().__init__()
        self.init_kwargs = init_kwargs
        attention = check_attention(attention)
        self._build_input(c_dim, img_resolution, img_channels)
        self.channel_width, self.wide, self.attention_resolutions = channel_width, wide, attention
        sn = {"sn_eps": sn_eps, "sn_eval_mode": sn_eval_mode}
        ch = channel_width
        table = D_STAGES[self.img_resolution]
        self.blocks = nn.ModuleList([
            DBlock(img_channels if s.in_mult is None else s.in_mult * ch, s.out_mult * ch, downsample=s.resample,
                   preactivation=i > 0, wide=wide, **sn) for i, s in enumerate(table)])
        self.attention = nn.ModuleDict({str(i): SelfAttention(s.out_mult * ch, **sn)
                                        for i, s in enumerate(table) if s.resolution in attention})
        self._build_head(table[-1].out_mult * ch, **sn)
        apply_init(self, init)

    def forward(self, img: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        self._check_inputs(img, c)
        h = img.to(self.linear.weight.dtype)
        for i, block in enumerate(self.blocks):
            h = to_preferred_layout(block(h), self.channels_last)
            if str(i) in self.attention:
                h = self.attention[str(i)](h)
        return self._head(h, c)


__all__ = ["BOTTOM_WIDTH", "D_STAGES", "G_STAGES", "INIT_MODES", "RESOLUTIONS", "ConditionalGenerator",
           "DBlock", "Discriminator", "GBlock", "Generator", "ProjectionDiscriminator", "Stage",
           "apply_init", "check_attention", "check_resolution", "constructor_kwargs", "hierarchical_z_split",
           "stages", "upsample_nearest", "z_chunk_sizes"]
