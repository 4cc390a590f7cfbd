"""The projector's schedules and constants (NVIDIA stylegan2-ada-pytorch projector.py `project()`, identical
to the TF StyleGAN2 `Projector`, sg2:projector.py L17-26; the StyleGAN2 paper, App. D).

For step i of `num_steps`, t = i / num_steps in [0, 1):

    lr(t)    = lr_max * min(1, t / lr_rampup) * (0.5 - 0.5 * cos(pi * min(1, (1 - t) / lr_rampdown)))
    sigma(t) = w_std * noise_factor * max(0, 1 - t / noise_ramp)^2     (std of the noise added to w)

lr is 0 at step 0 (t = 0), ramps up linearly over the first 5 % of the steps and down along a half
cosine over the last 25 %. The latent noise starts at 5 % of w_std (the RMS distance of w's to their
mean) and reaches 0 at 75 % of the steps ("stabilizes finding of the global optimum", App. D).
"""

from __future__ import annotations

import math

NUM_STEPS = 1000  # Adam steps (NVIDIA --num-steps default)
W_AVG_SAMPLES = 10000  # z samples for w_avg and w_std
W_AVG_SEED = 123  # np.random.RandomState(123).randn(10000, z_dim)
INITIAL_LEARNING_RATE = 0.1  # peak lr
LR_RAMPUP_LENGTH = 0.05  # fraction of steps with a linear ramp-up (50 of 1000)
LR_RAMPDOWN_LENGTH = 0.25  # fraction of steps with the cosine ramp-down (the last 250 of 1000)
INITIAL_NOISE_FACTOR = 0.05  # latent-noise std at t = 0, as a fraction of w_std
NOISE_RAMP_LENGTH = 0.75  # the latent noise decays (quadratically) to 0 over the first 75 % of the steps
REGULARIZE_NOISE_WEIGHT = 1e5  # alpha: weight of the noise autocorrelation penalty
ADAM_BETAS = (0.9, 0.999)  # Adam, default eps 1e-8
DEFAULT_SEED = 303  # NVIDIA projector.py --seed: noise-buffer init and latent noise


def learning_rate(t: float, initial_lr: float = INITIAL_LEARNING_RATE, rampup: float = LR_RAMPUP_LENGTH,
                  rampdown: float = LR_RAMPDOWN_LENGTH) -> float:
    """lr(t) = lr_max * min(1, t/rampup) * (0.5 - 0.5 cos(pi * min(1, (1-t)/rampdown))), t = step/num_steps."""
    ramp = min(1.0, (1.0 - t) / rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    ramp = ramp * min(1.0, t / rampup)
    return initial_lr * ramp


def latent_noise_scale(t: float, w_std: float, noise_factor: float = INITIAL_NOISE_FACTOR,
                       ramp: float = NOISE_RAMP_LENGTH) -> float:
    """sigma(t) = w_std * noise_factor * max(0, 1 - t/ramp)^2: std of the Gaussian noise added to w at t."""
    return w_std * noise_factor * max(0.0, 1.0 - t / ramp) ** 2
