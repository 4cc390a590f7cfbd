"""VGG16 for precision/recall (fc2 features) and LPIPS v0.1 (five conv taps + learned linear heads).

Parameter names equal torchvision's ``vgg16`` state dict (``features.N.weight``, ``classifier.N.weight``),
so ``vgg16-397923af.pth`` (torchvision IMAGENET1K_V1) loads with ``strict=True``. The LPIPS heads use the
layout of the ``lpips`` package's ``weights/v0.1/vgg.pth``: ``lin{0..4}.model.1.weight`` of shape
[1, C, 1, 1] (``model.0`` is a parameter-free Dropout).

Call convention (the same as NVIDIA's TorchScript ``vgg16.pt``):
    net(images, return_features=True)                    -> fc2 features after ReLU [N, 4096]
    net(images, resize_images=False, return_lpips=True)  -> LPIPS embedding [N, D] such that
        ||e(x) - e(y)||^2 = LPIPS(x, y)                      (needs the LPIPS heads)
images: uint8 or float in [0, 255], [N, 1|3, H, W].

Note: NVIDIA's vgg16.pt holds the original Oxford VGG16 weights, torchvision's file the torchvision
retraining; P&R values computed with the two differ slightly.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from ganforge.metrics.resize import VGG_RESOLUTION, tf1_resize_bilinear, tile_greyscale

# torchvision's configuration "D": conv widths, "M" = 2x2 max pool.
VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]
# Indices in `features` of relu1_2, relu2_2, relu3_3, relu4_3, relu5_3: the LPIPS taps.
LPIPS_TAPS = (3, 8, 15, 22, 29)
LPIPS_CHANNELS = (64, 128, 256, 512, 512)
# LPIPS v0.1 ScalingLayer: input in [-1, 1] is mapped to (x - shift) / scale (ImageNet mean/std).
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
FC2_DIM = 4096


def lpips_normalize(feat: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Unit-normalise features along channels (LPIPS): f / (sqrt(sum_c f^2) + eps).  feat: [N, C, H, W]."""
    return feat / (torch.sqrt(torch.sum(feat * feat, dim=1, keepdim=True)) + eps)


class LinearHead(nn.Module):
    """One LPIPS 'NetLinLayer': Dropout (index 0, no parameters) then a 1x1 conv C -> 1 without bias."""

    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, bias=False))


class LPIPSHeads(nn.Module):
    """The five LPIPS v0.1 linear heads, keys lin0..lin4.model.1.weight."""

    def __init__(self):
        super().__init__()
        for i, c in enumerate(LPIPS_CHANNELS):
            setattr(self, f"lin{i}", LinearHead(c))

    def weights(self):
        return [getattr(self, f"lin{i}").model[1].weight.view(-1) for i in range(len(LPIPS_CHANNELS))]


class VGG16(nn.Module):
    def __init__(self, with_classifier: bool = True):
        super().__init__()
        layers, cin = [], 3
        for v in VGG16_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(cin, v, 3, padding=1), nn.ReLU(inplace=True)]
                cin = v
        self.features = nn.Sequential(*layers)
        self.classifier = None
        if with_classifier:
            self.classifier = nn.Sequential(
                nn.Linear(512 * 7 * 7, FC2_DIM), nn.ReLU(True), nn.Dropout(),
                nn.Linear(FC2_DIM, FC2_DIM), nn.ReLU(True), nn.Dropout(),
                nn.Linear(FC2_DIM, 1000),
            )
        self.lpips = None  # LPIPSHeads, attached by the loader
        self.eval().requires_grad_(False)

    def fc2(self, images: torch.Tensor) -> torch.Tensor:
        """[0,255] images -> TF1-resize to 224 -> ImageNet normalisation -> fc2 after ReLU [N, 4096]."""
        if self.classifier is None:
            raise RuntimeError("this VGG16 was built without its classifier (fc layers)")
        x = tile_greyscale(images).to(torch.float32)
        x = tf1_resize_bilinear(x, (VGG_RESOLUTION, VGG_RESOLUTION)) / 255
        mean = torch.tensor(IMAGENET_MEAN, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, device=x.device).view(1, 3, 1, 1)
        x = self.features((x - mean) / std)
        x = F.adaptive_avg_pool2d(x, 7).flatten(1)
        for i in range(5):  # fc1, relu, dropout(eval: identity), fc2, relu
            x = self.classifier[i](x)
        return x

    def lpips_taps(self, x: torch.Tensor):
        """x already scaled by the LPIPS ScalingLayer -> the five tapped activations."""
        taps = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in LPIPS_TAPS:
                taps.append(x)
                if len(taps) == len(LPIPS_TAPS):
                    break
        return taps

    def lpips_embedding(self, images: torch.Tensor) -> torch.Tensor:
        """LPIPS v0.1 as an embedding e(x) with ||e(x) - e(y)||^2 = LPIPS(x, y).

        LPIPS(x, y) = sum_l mean_{h,w} sum_c w_lc (f^_l(x) - f^_l(y))_{c,h,w}^2
        with f^_l the channel-unit-normalised activation of tap l and w_l >= 0 the lin weights, so
        e(x) = concat_l flatten( f^_l(x) * sqrt(w_l) / sqrt(H_l W_l) ).

        images: [N, 3, H, W] float in [0, 255]   returns [N, D]
        """
        if self.lpips is None:
            raise RuntimeError("LPIPS needs the lin weights (lpips v0.1 vgg.pth); none were loaded")
        x = tile_greyscale(images).to(torch.float32) / 127.5 - 1
        shift = torch.tensor(LPIPS_SHIFT, device=x.device).view(1, 3, 1, 1)
        scale = torch.tensor(LPIPS_SCALE, device=x.device).view(1, 3, 1, 1)
        taps = self.lpips_taps((x - shift) / scale)
        out = []
        for f, w in zip(taps, self.lpips.weights()):
            f = lpips_normalize(f) * w.clamp(min=0).sqrt().view(1, -1, 1, 1)
            out.append(f.flatten(1) / (f.shape[2] * f.shape[3]) ** 0.5)
        return torch.cat(out, dim=1)

    def forward(self, images, resize_images: bool = True, return_features: bool = False,
                return_lpips: bool = False):
        if return_lpips:
            if resize_images:
                x = tile_greyscale(images).to(torch.float32)
                images = tf1_resize_bilinear(x, (VGG_RESOLUTION, VGG_RESOLUTION))
            return self.lpips_embedding(images)
        if return_features:
            return self.fc2(images)
        feats = self.fc2(images)
        return F.softmax(self.classifier[6](feats), dim=1)


def lpips_distance(net: nn.Module, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """LPIPS(a, b) for images in [0, 255] [N, 3, H, W] (no resize) -> [N]."""
    ea = net(a, resize_images=False, return_lpips=True)
    eb = net(b, resize_images=False, return_lpips=True)
    return (ea - eb).square().sum(dim=1)
