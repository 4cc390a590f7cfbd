"""The distance the projector minimises and attribution reports: LPIPS-VGG16 when its weights are found,
otherwise a stated pixel-space distance. One run uses one of them, named in every output; never both.

Both take images in [0, 255], [N, C, H, W] (C = 1 is tiled to RGB by LPIPS), and first area-downsample
images larger than 256x256 to 256x256 (NVIDIA projector.py: "VGG was built for 224x224 images").

* ``lpips-vgg16``: LPIPS v0.1 (Zhang et al. 2018) with the VGG16 trunk, exactly as the metrics use it
  (`ganforge.metrics.detectors.get_detector('lpips')`: torchvision vgg16-397923af.pth + lpips vgg.pth,
  or NVIDIA's TorchScript vgg16.pt):  d(x, y) = ||e(x) - e(y)||^2, e = net(x, resize_images=False,
  return_lpips=True). This is NVIDIA's projector distance.
* ``pixel-mse+msssim`` (the fallback, ganforge's own; not a published distance): on x, y scaled to [0, 1],

      d(x, y) = mean((x - y)^2) + (1/J) sum_{j<J} (1 - SSIM(x_j, y_j))

  with x_0 = x, x_{j+1} = avg_pool2d(x_j, 2), all levels whose side is >= 8 (J levels), and SSIM of
  Wang et al. 2004 (Gaussian window sigma 1.5, 7x7, reflection padding, C1 = 0.01^2, C2 = 0.03^2)
  averaged over pixels and channels. Its values are not comparable with LPIPS values.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ganforge.errors import FormatError, UsageError

LPIPS_NAME = "lpips-vgg16"
PIXEL_NAME = "pixel-mse+msssim"
MAX_DISTANCE_RESOLUTION = 256  # area-downsample to 256x256 first (NVIDIA projector.py)
SSIM_SIGMA = 1.5  # Wang et al. 2004
SSIM_WINDOW = 7
SSIM_C1 = 0.01 ** 2  # (K1 L)^2, L = 1
SSIM_C2 = 0.03 ** 2  # (K2 L)^2
SSIM_MIN_SIDE = 8  # pyramid levels down to 8x8
LPIPS_HOWTO = ("for LPIPS put torchvision's vgg16-397923af.pth and lpips v0.1 vgg.pth (or NVIDIA's vgg16.pt) in "
               "~/.cache/ganforge/detectors or pass --detector PATH")


def downsample_256(images: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] -> area-downsampled to 256x256 when H > 256 (F.interpolate mode='area'), else as is."""
    if images.shape[2] > MAX_DISTANCE_RESOLUTION:
        images = F.interpolate(images, size=(MAX_DISTANCE_RESOLUTION, MAX_DISTANCE_RESOLUTION), mode="area")
    return images


@dataclass
class Distance:
    """d(target, image) -> [N]. `features(targets)` once, then `__call__(features, images)` per step."""

    name: str
    net: torch.nn.Module | None = None  # LPIPS network, None for the pixel distance
    identity: str = ""  # which weights (SHA-256 prefixes) for LPIPS

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """images [N, C, H, W] in [0, 255] -> what the distance compares (LPIPS embedding [N, D], or pixels)."""
        x = downsample_256(images.to(torch.float32))
        if self.net is not None:
            return self.net(x, resize_images=False, return_lpips=True)
        return x / 255

    def __call__(self, target_features: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
        f = self.features(images)
        if self.net is not None:
            return (target_features - f).square().sum(dim=1)
        return pixel_distance(target_features, f)

    def pairwise(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """d(a_i, b_i) for two image batches in [0, 255] -> [N]."""
        return self(self.features(a), b)


def _gaussian_window(channels: int, device) -> torch.Tensor:
    x = torch.arange(SSIM_WINDOW, dtype=torch.float32, device=device) - (SSIM_WINDOW - 1) / 2
    g = torch.exp(-x ** 2 / (2 * SSIM_SIGMA ** 2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, SSIM_WINDOW, SSIM_WINDOW).contiguous()


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """SSIM (Wang et al. 2004) per image, mean over pixels and channels.  x, y: [N, C, H, W] in [0, 1] -> [N].

    SSIM = (2 mu_x mu_y + C1)(2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1)(sigma_x^2 + sigma_y^2 + C2)),
    local statistics under a Gaussian window (sigma 1.5, 7x7) with reflection padding.
    """
    c = x.shape[1]
    win = _gaussian_window(c, x.device)
    pad = SSIM_WINDOW // 2
    mode = "reflect" if min(x.shape[2:]) > pad else "replicate"

    def blur(t):
        return F.conv2d(F.pad(t, [pad] * 4, mode=mode), win, groups=c)

    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    s = ((2 * mx * my + SSIM_C1) * (2 * sxy + SSIM_C2)) / ((mx * mx + my * my + SSIM_C1) * (sxx + syy + SSIM_C2))
    return s.mean(dim=(1, 2, 3))


def pixel_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """mean((x-y)^2) + (1/J) sum_j (1 - SSIM(x_j, y_j)) over the 2x2-average pyramid down to 8x8.
    x, y: [N, C, H, W] in [0, 1] -> [N]."""
    mse = (x - y).square().mean(dim=(1, 2, 3))
    terms = []
    while True:
        terms.append(1 - ssim(x, y))
        if min(x.shape[2:]) // 2 < SSIM_MIN_SIDE:
            break
        x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    return mse + torch.stack(terms).mean(dim=0)


def pixel() -> Distance:
    return Distance(PIXEL_NAME)


def lpips(detectors=None, device="cpu") -> Distance:
    """LPIPS-VGG16 from the metrics' detector lookup; UsageError (with what to download) when absent.
    detectors: ganforge.metrics.detectors.DetectorOptions (files, dirs, verify)."""
    from ganforge.metrics.detectors import get_detector

    net, identity = get_detector("lpips", detectors, device)
    return Distance(LPIPS_NAME, net=net, identity=identity)


def resolve_distance(kind: str = "auto", detectors=None, device="cpu") -> tuple[Distance, str]:
    """(distance, one line saying which one and why) for kind 'auto' | 'lpips' | 'pixel'.

    'auto': LPIPS when the VGG16 and LPIPS weights are found, else the pixel distance. A weight file that
    is found but refused (wrong hash, wrong layout) is an error, never a silent fallback.
    """
    if kind == "pixel":
        return pixel(), f"distance: {PIXEL_NAME} (as asked; {LPIPS_HOWTO})"
    if kind not in ("auto", "lpips"):
        raise UsageError(f"--distance {kind!r}: use auto, lpips or pixel")
    try:
        d = lpips(detectors, device)
    except FormatError:
        raise
    except UsageError:
        if kind == "lpips":
            raise
        return pixel(), (f"distance: {PIXEL_NAME} (LPIPS weights not found; {LPIPS_HOWTO}; "
                         "its values are not comparable with LPIPS values)")
    return d, f"distance: {LPIPS_NAME} ({d.identity})"
