"""BigGAN-deep generator and discriminator (Brock et al. 2019, App. B, Fig. 16 and Table 5;
ajbrock/BigGAN-PyTorch's BigGANdeep.py; the generator also as huggingface/pytorch-pretrained-BigGAN's
model.py builds it from TF-Hub's biggan-deep-{128,256,512}).

Differences from BigGAN (models/biggan.py): `depth` bottleneck residual blocks per resolution, no z
split (h = [e(c), z] conditions every BatchNorm and feeds the input layer), skip connections that drop
channels instead of a learnable 1x1 in G, a conv stem and channel-concatenating shortcuts in D.

Shapes: z [N, z_dim], c [N, c_dim], h [N, embed_dim + z_dim], img [N, img_channels, R, R]; D -> [N, 1].
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ganforge.models.biggan import (
    BOTTOM_WIDTH,
    G_STAGES,
    ConditionalGenerator,
    ProjectionDiscriminator,
    apply_init,
    check_attention,
    check_resolution,
    constructor_kwargs,
    stages,
    upsample_nearest,
)
from ganforge.nn.attention import SelfAttention
from ganforge.nn.batchnorm import ConditionalBatchNorm2d
from ganforge.nn.resample import to_preferred_layout
from ganforge.nn.spectral_norm import SNConv2d, SNLinear

CHANNEL_RATIO = 4   # bottleneck width: hidden = in / 4 (G) or out / 4 (D)

# D_arch of BigGANdeep.py for 32-256: stage i reads in_mult*ch after the conv stem (img -> in_mults[0]*ch).
# The 512 row is ganforge's extension: the mirror of G's 512 row, as the 128 and 256 rows mirror theirs.
D_DEEP_STAGES = {
    32: stages([4, 4, 4], [4, 4, 4], [True, True, False], [16, 16, 16]),
    64: stages([1, 2, 4, 8], [2, 4, 8, 16], [True] * 4, [32, 16, 8, 4]),
    128: stages([1, 2, 4, 8, 16], [2, 4, 8, 16, 16], [True] * 5, [64, 32, 16, 8, 4]),
    256: stages([1, 2, 4, 8, 8, 16], [2, 4, 8, 8, 16, 16], [True] * 6, [128, 64, 32, 16, 8, 4]),
    512: stages([1, 1, 2, 4, 8, 8, 16], [1, 2, 4, 8, 8, 16, 16], [True] * 7, [256, 128, 64, 32, 16, 8, 4]),
}


def _check_depth(depth: int) -> int:
    if int(depth) != depth or depth < 1:
        raise ValueError(f"depth (residual blocks per resolution) must be an integer >= 1, got {depth}")
    return int(depth)


def layer_specs(img_resolution: int, depth: int = 2) -> list[tuple[bool, int, int]]:
    """The deep generator's blocks in order as (upsample, in_mult, out_mult), in channel_width units:
    per G_STAGES stage (in, out), depth - 1 blocks (False, in, in) then one (True, in, out).

    This is pytorch-pretrained-BigGAN's config `layers` (its BigGAN128/256/512 lists equal
    layer_specs(128 | 256 | 512, 2)), so an importer can check a config against it.
    """
    specs = []
    for s in G_STAGES[check_resolution(img_resolution)]:
        specs += [(False, s.in_mult, s.in_mult)] * (_check_depth(depth) - 1) + [(True, s.in_mult, s.out_mult)]
    return specs


class BottleneckGBlock(nn.Module):
    """BigGAN-deep's generator block (paper Fig. 16b; BigGANdeep.GBlock; pytorch-pretrained GenBlock):

        t    = ReLU(bn2(conv1(ReLU(bn1(x, h))), h))            conv1: SN 1x1, in -> in / channel_ratio
        skip = x[:, :out]                                      (drop channels when out < in)
        t, skip = up(t), up(skip)                              (x2 nearest, when upsampling)
        t    = conv4(ReLU(bn4(conv3(ReLU(bn3(conv2(t), h))), h)))   conv2, conv3: SN 3x3; conv4: SN 1x1 -> out
        out  = t + skip

    bn1..bn4: ConditionalBatchNorm2d on h = [e(c), z]. There is no learnable shortcut.
    x: [N, in, H, W], h: [N, cond_dim] -> [N, out, 2H, 2W] (H, W without upsampling)
    """

    def __init__(self, in_channels: int, out_channels: int, cond_dim: int, upsample: bool,
                 channel_ratio: int = CHANNEL_RATIO, bn_eps: float = 1e-5, n_stats: int = 1, sn_eps: float = 1e-6,
                 sn_eval_mode: str = "stored"):
        super().__init__()
        if out_channels > in_channels:
            raise ValueError(f"a BigGAN-deep G block can only keep or drop channels, got {in_channels} -> {out_channels}")
        sn = {"sn_eps": sn_eps, "sn_eval_mode": sn_eval_mode}
        bn = {"eps": bn_eps, "n_stats": n_stats, **sn}
        hidden = in_channels // channel_ratio
        self.out_channels, self.upsample = out_channels, upsample
        self.bn1 = ConditionalBatchNorm2d(in_channels, cond_dim, **bn)
        self.conv1 = SNConv2d(in_channels, hidden, kernel_size=1, **sn)
        self.bn2 = ConditionalBatchNorm2d(hidden, cond_dim, **bn)
        self.conv2 = SNConv2d(hidden, hidden, kernel_size=3, **sn)
        self.bn3 = ConditionalBatchNorm2d(hidden, cond_dim, **bn)
        self.conv3 = SNConv2d(hidden, hidden, kernel_size=3, **sn)
        self.bn4 = ConditionalBatchNorm2d(hidden, cond_dim, **bn)
        self.conv4 = SNConv2d(hidden, out_channels, kernel_size=1, **sn)

    def forward(self, x: torch.Tensor, cond: torch.Tensor, truncation: float | None = None) -> torch.Tensor:
        t = F.relu(self.bn2(self.conv1(F.relu(self.bn1(x, cond, truncation))), cond, truncation))
        skip = x[:, :self.out_channels]
        if self.upsample:
            t, skip = upsample_nearest(t), upsample_nearest(skip)
        t = self.conv3(F.relu(self.bn3(self.conv2(t), cond, truncation)))
        t = self.conv4(F.relu(self.bn4(t, cond, truncation)))
        return t + skip


class Generator(ConditionalGenerator):
    """BigGAN-deep generator (Brock et al. 2019, App. B Table 5; BigGANdeep.Generator; pytorch-pretrained-BigGAN).

    128 px, channel_width ch = 128, depth 2, z_dim 128, embed_dim 128:
        h = [e(c), z]  [N, 256]   (embedding first; TF-Hub / pytorch-pretrained-BigGAN concatenate z first)
        linear(h): SNLinear 256 -> 16ch*4*4, viewed channel-major [N, 16ch, 4, 4]
        per stage (in -> out, from G_STAGES): block (in -> in) then block (in -> out, x2 up): 4 -> 128 px
        attention after the last block of the 64-px stage (pytorch-pretrained-BigGAN's
            attention_layer_position 8: before its 9th block, i.e. after flat block 7)
        output: BatchNorm2d(out_bn_eps) -> ReLU -> SNConv3x3(ch -> rgb_channels) -> first img_channels -> tanh
    Blocks are `blocks.{k}` with k the flat index (layer_specs order), attention `attention.{k}`.
    rgb_channels (default img_channels): TF-Hub's conv_to_rgb has ch outputs and keeps the first 3.

    G(z [N, z_dim], c [N, c_dim], truncation=None) -> img [N, img_channels, R, R]; `truncation` picks
    the BatchNorm statistics when n_stats > 1 (None: 1.0; TF-Hub's networks store 51) and is ignored otherwise.
    """

    def __init__(self, z_dim: int = 128, c_dim: int = 1000, img_resolution: int = 128, img_channels: int = 3,
                 channel_width: int = 128, embed_dim: int = 128, depth: int = 2, attention: Sequence[int] = (64,),
                 channel_ratio: int = CHANNEL_RATIO, bn_eps: float = 1e-5, out_bn_eps: float = 1e-5,
                 sn_eps: float = 1e-6, sn_eval_mode: str = "stored", n_stats: int = 1, rgb_channels: int | None = None,
                 truncation_mode: str = "resample", init: str = "ortho"):
        init_kwargs = constructor_kwargs(locals())
        super().__init__()
        self.init_kwargs = init_kwargs
        attention = check_attention(attention)
        self._build_embedding(z_dim, c_dim, img_resolution, img_channels, embed_dim, truncation_mode)
        specs = layer_specs(self.img_resolution, depth)
        self.channel_width, self.depth, self.n_stats, self.attention_resolutions = channel_width, depth, n_stats, attention
        self.channel_ratio = channel_ratio
        self.rgb_channels = img_channels if rgb_channels is None else int(rgb_channels)
        self.cond_dim = embed_dim + z_dim
        sn = {"sn_eps": sn_eps, "sn_eval_mode": sn_eval_mode}
        ch = channel_width
        self.linear = SNLinear(self.cond_dim, specs[0][1] * ch * BOTTOM_WIDTH ** 2, **sn)
        self.blocks = nn.ModuleList([
            BottleneckGBlock(i * ch, o * ch, self.cond_dim, upsample=up, channel_ratio=channel_ratio, bn_eps=bn_eps,
                             n_stats=n_stats, **sn) for up, i, o in specs])
        resolutions = [4 * 2 ** sum(up for up, _, _ in specs[:k + 1]) for k in range(len(specs))]
        self.attention = nn.ModuleDict({str(k): SelfAttention(o * ch, **sn) for k, ((up, _, o), res)
                                        in enumerate(zip(specs, resolutions)) if up and res in attention})
        self._build_output(specs[-1][2] * ch, self.rgb_channels, out_bn_eps, n_stats, **sn)
        apply_init(self, init)

    def forward(self, z: torch.Tensor, c: torch.Tensor, truncation: float | None = None) -> torch.Tensor:
        self._check_inputs(z, c)
        e = self.shared(c)
        cond = torch.cat([e, z.to(e.dtype)], dim=1)
        x = self._input_map(self.linear(cond))
        for k, block in enumerate(self.blocks):
            x = block(x, cond, truncation)
            if str(k) in self.attention:
                x = self.attention[str(k)](x)
        return self._to_image(x, truncation)


class BottleneckDBlock(nn.Module):
    """BigGAN-deep's discriminator block (paper Fig. 16c; BigGANdeep.DBlock):

        t    = ReLU(conv3(ReLU(conv2(ReLU(conv1(ReLU(x)))))))  conv1: SN 1x1 in -> out / ratio; conv2, conv3: SN 3x3
        t    = conv4(pool(t))                                  conv4: SN 1x1 -> out
        skip = pool(x);  skip = [skip, conv_sc(skip)] when out > in   (conv_sc: SN 1x1 in -> out - in)
        out  = t + skip

    pool: 2x2 average pooling when downsampling (the first block of a downsampling stage).
    x: [N, in, H, W] -> [N, out, H/2, W/2] (H, W without downsampling)
    """

    def __init__(self, in_channels: int, out_channels: int, downsample: bool, channel_ratio: int = CHANNEL_RATIO,
                 sn_eps: float = 1e-6, sn_eval_mode: str = "stored"):
        super().__init__()
        if out_channels < in_channels:
            raise ValueError(f"a BigGAN-deep D block can only keep or add channels, got {in_channels} -> {out_channels}")
        sn = {"sn_eps": sn_eps, "sn_eval_mode": sn_eval_mode}
        hidden = out_channels // channel_ratio
        self.downsample = downsample
        self.conv1 = SNConv2d(in_channels, hidden, kernel_size=1, **sn)
        self.conv2 = SNConv2d(hidden, hidden, kernel_size=3, **sn)
        self.conv3 = SNConv2d(hidden, hidden, kernel_size=3, **sn)
        self.conv4 = SNConv2d(hidden, out_channels, kernel_size=1, **sn)
        self.conv_sc = (SNConv2d(in_channels, out_channels - in_channels, kernel_size=1, **sn)
                        if out_channels != in_channels else None)

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 2) if self.downsample else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.conv2(F.relu(self.conv1(F.relu(x))))     # out of place: the shortcut reads x
        t = self.conv4(self._pool(F.relu(self.conv3(F.relu(t)))))
        skip = self._pool(x)
        if self.conv_sc is not None:
            skip = torch.cat([skip, self.conv_sc(skip)], dim=1)
        return t + skip


class Discriminator(ProjectionDiscriminator):
    """BigGAN-deep discriminator (Brock et al. 2019, App. B Table 5; BigGANdeep.Discriminator).

    128 px, channel_width ch = 128, depth 2:
        input_conv: SNConv3x3 img -> ch (128 px)
        per stage (in -> out, D_DEEP_STAGES): block (in -> out, /2 pool when the stage downsamples),
            then depth - 1 blocks (out -> out): ch->2ch (64) + attention, 2ch->4ch (32), 4ch->8ch (16),
            8ch->16ch (8), 16ch->16ch (4)
        head: ReLU -> global sum pooling -> SNLinear(16ch -> 1) + projection sum(embed(c) * phi)
    32-256 as BigGAN-PyTorch (its 32-px row matches attention 16 for every stage); 512 is ganforge's.
    Attention (`attention.{k}`) follows the last block k of a stage whose table resolution is in `attention`.

    D(img [N, img_channels, R, R], c [N, c_dim]) -> [N, 1]
    """

    def __init__(self, c_dim: int = 1000, img_resolution: int = 128, img_channels: int = 3, channel_width: int = 128,
                 depth: int = 2, attention: Sequence[int] = (64,), channel_ratio: int = CHANNEL_RATIO,
                 sn_eps: float = 1e-6, sn_eval_mode: str = "stored", init: str = "ortho"):
        init_kwargs = constructor_kwargs(locals())
        super().__init__()
        self.init_kwargs = init_kwargs
        attention = check_attention(attention)
        self._build_input(c_dim, img_resolution, img_channels)
        self.channel_width, self.depth, self.attention_resolutions = channel_width, _check_depth(depth), attention
        self.channel_ratio = channel_ratio
        sn = {"sn_eps": sn_eps, "sn_eval_mode": sn_eval_mode}
        ch = channel_width
        table = D_DEEP_STAGES[self.img_resolution]
        self.input_conv = SNConv2d(img_channels, table[0].in_mult * ch, kernel_size=3, **sn)
        blocks, attn = [], {}
        for s in table:
            for d in range(self.depth):
                blocks.append(BottleneckDBlock(s.in_mult * ch if d == 0 else s.out_mult * ch, s.out_mult * ch,
                                               downsample=s.resample and d == 0, channel_ratio=channel_ratio, **sn))
            if s.resolution in attention:
                attn[str(len(blocks) - 1)] = SelfAttention(s.out_mult * ch, **sn)
        self.blocks = nn.ModuleList(blocks)
        self.attention = nn.ModuleDict(attn)
        self._build_head(table[-1].out_mult * ch, **sn)
        apply_init(self, init)

    def forward(self, img: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        self._check_inputs(img, c)
        h = to_preferred_layout(self.input_conv(img.to(self.input_conv.weight.dtype)), self.channels_last)
        for k, block in enumerate(self.blocks):
            h = block(h)
            if str(k) in self.attention:
                h = self.attention[str(k)](h)
        return self._head(h, c)


__all__ = ["CHANNEL_RATIO", "D_DEEP_STAGES", "BottleneckDBlock", "BottleneckGBlock", "Discriminator",
           "Generator", "layer_specs"]
