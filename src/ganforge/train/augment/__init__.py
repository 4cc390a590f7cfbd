"""Adaptive discriminator augmentation (ADA), Karras et al. 2020, "Training Generative Adversarial
Networks with Limited Data" (arXiv 2006.06676), §2-3 and Appendix B.

D only ever sees augmented images, reals and fakes alike, so the augmentations do not leak into the
generated distribution as long as each one is applied with a probability p < ~0.8. `AugmentPipe`
applies the paper's 18 transformations (6 groups) in a fixed order, each to each image independently with
probability `multiplier * p`:

  pixel blitting      x-flip, 90-degree rotations, integer translation
  general geometric   isotropic scaling, arbitrary rotation, anisotropic scaling, fractional translation
  colour              brightness, contrast, luma flip, hue rotation, saturation
  image-space filter  amplification of 4 frequency bands
  corruptions         additive RGB noise, cutout

`AdaController` adjusts p during training from the overfitting heuristic r_t = E[sign(D(x_real))].

Randomness and determinism: every draw comes from torch's global RNG on the images' device, in a
fixed order and with fixed shapes (the same order and shapes as NVIDIA's stylegan2-ada-pytorch, so a
seeded call reproduces NVIDIA's output to float tolerance). Draws are made even when p = 0, so the RNG
stream does not depend on p; at p = 0 the pipe then returns its input unchanged (exactly).

Images are [N, C, H, W] floats in about [-1, 1] (the colour transforms act around 0). The forward pass
is differentiable in the images to any order (D's fakes need first-order gradients, R1 on augmented
reals needs the gradient of a gradient).

The package, along the seams of the paper:
  matrices     homogeneous 2-D affine and 4x4 colour matrices
  geometric    pixel blitting and the alias-free geometric resampler
  color        applying a colour matrix
  filtering    the image-space filter (4 frequency bands)
  corruptions  additive noise and cutout
  pipe         the presets (AUGPIPE_SPECS), `AugmentPipe`, `build_augment_pipe`
  ada          `AdaController` and the ADA step on p
"""

# Every public transform stays importable from ganforge.train.augment (tests and notebooks do);
# __all__ keeps the names of the training API, as before the split.
from ganforge.train.augment.ada import (ADA_INTERVAL, ADA_KIMG, ADA_KIMG_TRANSFER, ADA_TARGET, AdaController,
                                        ada_adjustment)
from ganforge.train.augment.color import color_transform
from ganforge.train.augment.corruptions import add_noise, cutout
from ganforge.train.augment.filtering import band_gains, filter_images, imgfilter_bank
from ganforge.train.augment.geometric import blit, downsample2x_crop, geom_filter_taps, geometric_transform, upsample2x
from ganforge.train.augment.matrices import (affine2d, brightness_matrix, contrast_matrix, hue_rotation,
                                             luma_flip_matrix, rotation2d, saturation_matrix)
from ganforge.train.augment.pipe import AUGPIPE_SPECS, DEFAULT_AUGPIPE, AugmentPipe, build_augment_pipe, gated

__all__ = ["ADA_INTERVAL", "ADA_KIMG", "ADA_KIMG_TRANSFER", "ADA_TARGET", "AUGPIPE_SPECS", "AdaController",
           "AugmentPipe", "DEFAULT_AUGPIPE", "ada_adjustment", "build_augment_pipe"]
