"""The FID Inception-v3: TensorFlow's ``inception-2015-12-05`` graph, re-expressed in PyTorch.

This is the network behind every published FID, KID and IS (TTUR, StyleGAN*, BigGAN papers), NOT
torchvision's ImageNet Inception-v3. It differs from torchvision's in five ways:

* 1008 output classes (fc: 2048 -> 1008);
* BatchNorm eps = 1e-3;
* the 3x3 average pools of the A, C and E_1 blocks exclude padding (``count_include_pad=False``),
  as TF's avg pool does;
* the pool branch of the last block (Mixed_7c, "E_2") is a 3x3 *max* pool, stride 1, pad 1;
* inputs are uint8 [0, 255], TF1-bilinear-resized to 299 (`resize.tf1_resize_bilinear`) and scaled by
  (x - 128) / 128.

Module and parameter names equal torchvision's ``Inception3`` (aux_logits=False), so the published
state dict ``pt_inception-2015-12-05-6726825d.pth`` (pytorch-fid; identical to torch-fidelity's
``weights-inception-2015-12-05-6726825d.pth``) loads with ``strict=True``: 566 entries, 23,850,960
parameters.

Call convention (the same as NVIDIA's TorchScript ``inception-2015-12-05.pt``, so either can be used):
    net(images, return_features=True)  -> pool3 features [N, 2048]
    net(images, no_output_bias=True)   -> softmax(pool3 @ W^T)      [N, 1008]   (for IS)
    net(images)                        -> softmax(pool3 @ W^T + b)  [N, 1008]
images: uint8 (or float in [0, 255]) [N, 1|3, H, W], any H, W.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge.metrics.resize import INCEPTION_RESOLUTION, tf1_resize_bilinear, tile_greyscale

BN_EPS = 1e-3  # TF's batch-norm epsilon in the 2015-12-05 graph
NUM_CLASSES = 1008  # 1000 ImageNet classes + 8 unused (TF graph)
POOL3_DIM = 2048


class BasicConv2d(nn.Module):
    """conv (no bias) -> BatchNorm(eps 1e-3) -> ReLU; `fuse_()` folds the BN into the conv for inference."""

    def __init__(self, cin: int, cout: int, kernel_size, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.fused = None

    @torch.no_grad()
    def fuse_(self):
        """Replace conv+BN by one conv with bias: W' = W * g / sqrt(var + eps), b' = beta - mean * g / sqrt(var + eps)."""
        scale = self.bn.weight / torch.sqrt(self.bn.running_var + self.bn.eps)
        c = self.conv
        fused = nn.Conv2d(c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding, bias=True)
        fused = fused.to(device=c.weight.device, dtype=c.weight.dtype)
        fused.weight.copy_(c.weight * scale[:, None, None, None])
        fused.bias.copy_(self.bn.bias - self.bn.running_mean * scale)
        self.fused = fused
        del self.conv, self.bn

    def forward(self, x):
        if self.fused is not None:
            return F.relu(self.fused(x))
        return F.relu(self.bn(self.conv(x)))


def _avg_pool_no_pad(x):
    """TF's 3x3/1 average pool with SAME padding: padded zeros are not counted."""
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """Mixed_5b/5c/5d (FID variant: pool branch excludes padding). Output 224 + pool_features channels."""

    def __init__(self, cin: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = self.branch_pool(_avg_pool_no_pad(x))
        return torch.cat([b1, b5, b3, bp], 1)


class InceptionB(nn.Module):
    """Mixed_6a: grid reduction 35 -> 17. Output 768 channels."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3(x)
        bd = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, bd, bp], 1)


class InceptionC(nn.Module):
    """Mixed_6b..6e with factorised 7x7 convs (FID variant: pool branch excludes padding). Output 768."""

    def __init__(self, cin: int, c7: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = layer(bd)
        bp = self.branch_pool(_avg_pool_no_pad(x))
        return torch.cat([b1, b7, bd, bp], 1)


class InceptionD(nn.Module):
    """Mixed_7a: grid reduction 17 -> 8. Output 1280 channels."""

    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x):
        b3 = self.branch3x3_2(self.branch3x3_1(x))
        b7 = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b7 = layer(b7)
        bp = F.max_pool2d(x, kernel_size=3, stride=2)
        return torch.cat([b3, b7, bp], 1)


class InceptionE(nn.Module):
    """Mixed_7b ("E_1", avg pool without padding) and Mixed_7c ("E_2", 3x3/1 max pool). Output 2048."""

    def __init__(self, cin: int, pool: str):
        super().__init__()
        assert pool in ("avg", "max")
        self.pool = pool
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x):
        b1 = self.branch1x1(x)
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        if self.pool == "avg":
            p = _avg_pool_no_pad(x)
        else:
            p = F.max_pool2d(x, kernel_size=3, stride=1, padding=1)
        bp = self.branch_pool(p)
        return torch.cat([b1, b3, bd, bp], 1)


class FIDInceptionV3(nn.Module):
    """The TF inception-2015-12-05 network (see the module docstring for the call convention).

    Shapes at 299x299: 149 (1a) -> 147 (2a) -> 147 (2b) -> 73 (pool) -> 73 (3b) -> 71 (4a) -> 35 (pool)
    -> Mixed_5b/c/d 35x35x{256,288,288} -> Mixed_6a 17x17x768 -> 6b..6e -> Mixed_7a 8x8x1280
    -> Mixed_7b/7c 8x8x2048 -> global average "pool3" [N, 2048] -> fc [N, 1008].
    """

    def __init__(self):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, c7=128)
        self.Mixed_6c = InceptionC(768, c7=160)
        self.Mixed_6d = InceptionC(768, c7=160)
        self.Mixed_6e = InceptionC(768, c7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, pool="avg")
        self.Mixed_7c = InceptionE(2048, pool="max")
        self.fc = nn.Linear(POOL3_DIM, NUM_CLASSES)
        self.channels_last = False
        self.eval().requires_grad_(False)

    def fuse_(self) -> "FIDInceptionV3":
        """Fold every BatchNorm into its conv (inference only; same numbers within float rounding)."""
        for m in self.modules():
            if isinstance(m, BasicConv2d) and m.fused is None:
                m.fuse_()
        return self

    def use_channels_last_(self) -> "FIDInceptionV3":
        self.channels_last = True
        return self.to(memory_format=torch.channels_last)

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """uint8/float [0,255] [N, 1|3, H, W] -> TF1-resized to 299, scaled (x - 128) / 128, float32."""
        x = tile_greyscale(images).to(torch.float32)
        x = tf1_resize_bilinear(x, (INCEPTION_RESOLUTION, INCEPTION_RESOLUTION))
        return (x - 128) / 128

    def pool3(self, x: torch.Tensor) -> torch.Tensor:
        """Preprocessed [N, 3, 299, 299] -> pool3 features [N, 2048]."""
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e, self.Mixed_7a, self.Mixed_7b, self.Mixed_7c):
            x = block(x)
        return x.mean(dim=(2, 3))

    def forward(self, images, return_features: bool = False, no_output_bias: bool = False):
        feats = self.pool3(self.preprocess(images))
        if return_features:
            return feats
        logits = feats @ self.fc.weight.t()  # logits_unbiased: the IS reference omits the fc bias
        if not no_output_bias:
            logits = logits + self.fc.bias
        return F.softmax(logits, dim=1)
