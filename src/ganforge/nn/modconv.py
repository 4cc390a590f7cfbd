"""Weight modulation and demodulation (StyleGAN2 §2.2), the replacement for AdaIN.

Two ways to run the same math, chosen by the caller (they agree to float tolerance):
- fused: build one kernel per sample and run a grouped convolution (batch folded into groups);
- non-fused: scale the input channels by the styles, run one shared-weight convolution over the
  whole batch, scale the output channels by the demodulation coefficients. This is the faster
  path on CPUs and for training, because the shared convolution is one big matrix product.
"""

from __future__ import annotations

import torch

from ganforge.nn.resample import conv2d_resample

DEMOD_EPS = 1e-8  # epsilon inside the demodulation rsqrt (StyleGAN2 eq. 3)


def modulate(weight: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """Scale each input feature map's kernels by its style (StyleGAN2 eq. 1).

    w'_ijk = s_i * w_ijk

    weight: [out_channels, in_channels, kh, kw]
    styles: [batch, in_channels]
    returns [batch, out_channels, in_channels, kh, kw]
    """
    return weight.unsqueeze(0) * styles.reshape(styles.shape[0], 1, -1, 1, 1)


def demodulation_coefficients(weight: torch.Tensor, styles: torch.Tensor, eps: float = DEMOD_EPS) -> torch.Tensor:
    """Per-sample, per-output-channel scale that restores unit output variance (StyleGAN2 eq. 3).

    sigma_j = sqrt( sum_{i,k} (s_i * w_ijk)^2 + eps ),   returns 1 / sigma_j

    Computed without materialising the modulated kernels:
    sum_{i,k} s_i^2 w_ijk^2 = (s^2) @ (sum_k w_ijk^2)^T.

    weight: [out_channels, in_channels, kh, kw]
    styles: [batch, in_channels]
    returns [batch, out_channels]
    """
    wsq = weight.square().sum(dim=[2, 3])  # [O, I]
    return (styles.square() @ wsq.t() + eps).rsqrt()


def demodulate(weight: torch.Tensor, styles: torch.Tensor, eps: float = DEMOD_EPS) -> torch.Tensor:
    """Modulate a conv kernel per sample and demodulate it (StyleGAN2, eq. 1-3).

    w'_ijk  = s_i * w_ijk                              (modulation)
    w''_ijk = w'_ijk / sqrt(sum_ik w'_ijk^2 + eps)     (demodulation)

    weight: [out_channels, in_channels, kh, kw]
    styles: [batch, in_channels]
    returns [batch, out_channels, in_channels, kh, kw]
    """
    w = modulate(weight, styles)
    return w * (w.square().sum(dim=[2, 3, 4], keepdim=True) + eps).rsqrt()


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, noise: torch.Tensor | None = None,
                     up: int = 1, down: int = 1, padding: int = 0, resample_filter: torch.Tensor | None = None,
                     demodulate: bool = True, flip_weight: bool = True, fused_modconv: bool = False) -> torch.Tensor:
    """Modulated (and optionally demodulated) convolution with optional FIR resampling and added noise.

    y_bj = (1/sigma_bj if demodulate) * sum_i conv(x_bi * s_bi, w_ij) + noise_b

    x:      [batch, in_channels, height, width]
    weight: [out_channels, in_channels, kh, kw]
    styles: [batch, in_channels]
    noise:  None or broadcastable to [batch, out_channels, height*up/down, width*up/down]
    returns [batch, out_channels, height * up / down, width * up / down]

    With float16 inputs the weight and styles are first scaled by their max-norms so the modulated
    kernels cannot overflow; demodulation makes the result independent of that scale.
    """
    batch = x.shape[0]
    out_channels, in_channels, kh, kw = weight.shape
    if x.dtype == torch.float16 and demodulate:
        weight = weight * (1 / (in_channels * kh * kw) ** 0.5 / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)
    dcoefs = demodulation_coefficients(weight, styles) if demodulate else None

    if kh == 1 and kw == 1 and up == 1 and down == 1 and padding == 0:
        # 1x1 (ToRGB): per-sample [O, I] matrices times the pixels, one batched matmul, no scaled copy of x.
        w = weight[None, :, :, 0, 0] * styles.reshape(batch, 1, -1)
        if dcoefs is not None:
            w = w * dcoefs.reshape(batch, -1, 1)
        h, wd = x.shape[2:]
        if x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous():
            # channels_last x is a [batch, H*W, in] matrix per sample: its rows times w^T, no layout change.
            y = torch.bmm(x.permute(0, 2, 3, 1).reshape(batch, h * wd, in_channels), w.to(x.dtype).transpose(1, 2))
            x = y.reshape(batch, h, wd, out_channels).permute(0, 3, 1, 2)
        else:
            x = torch.bmm(w.to(x.dtype), x.reshape(batch, in_channels, -1)).reshape(batch, out_channels, h, wd)
        return x + noise.to(x.dtype) if noise is not None else x

    if not fused_modconv:
        x = x * styles.to(x.dtype).reshape(batch, -1, 1, 1)
        x = conv2d_resample(x, weight.to(x.dtype), resample_filter, up=up, down=down, padding=padding,
                            flip_weight=flip_weight)
        if dcoefs is not None:
            x = x * dcoefs.to(x.dtype).reshape(batch, -1, 1, 1)
        if noise is not None:
            x = x + noise.to(x.dtype)
        return x

    w = modulate(weight, styles)
    if dcoefs is not None:
        w = w * dcoefs.reshape(batch, -1, 1, 1, 1)
    x = x.reshape(1, -1, *x.shape[2:])
    w = w.reshape(-1, in_channels, kh, kw)
    x = conv2d_resample(x, w.to(x.dtype), resample_filter, up=up, down=down, padding=padding,
                        groups=batch, flip_weight=flip_weight)
    x = x.reshape(batch, -1, *x.shape[2:])
    if noise is not None:
        x = x + noise.to(x.dtype)
    return x


def modulated_conv2d_bias_act(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, bias: torch.Tensor,
                              noise: torch.Tensor | None = None, up: int = 1, padding: int = 0,
                              resample_filter: torch.Tensor | None = None, flip_weight: bool = True,
                              fused_modconv: bool = False, act: str = "lrelu", gain: float = 1.0,
                              clamp: float | None = None) -> torch.Tensor:
    """One StyleGAN2 synthesis layer's arithmetic: bias_act(modulated_conv2d(x, W, s) + noise, b).

    y = clamp(act(demod * conv(x * s, W) + noise + b) * gain, -clamp, clamp)

    x: [batch, in_channels, H, W], weight: [out_channels, in_channels, k, k], styles: [batch, in_channels],
    bias: [out_channels], noise: broadcastable to the output -> [batch, out_channels, H*up, W*up]

    For positively homogeneous activations (linear, lrelu) the gain is folded into the demodulation
    coefficients and the bias: act(a) * g = act(a * g) for g > 0. When autograd is not recording
    (sampling, metrics) everything after the convolution then runs in place on its output; when it
    is (training), demodulation and bias are one fused multiply-add. That saves full-size
    temporaries, which dominate on CPUs; the numbers agree with the composed path to float rounding.
    """
    from ganforge.nn.activation import bias_act

    if fused_modconv or act not in ("lrelu", "linear") or gain <= 0 or x.dtype == torch.float16:
        y = modulated_conv2d(x, weight, styles, noise=noise, up=up, padding=padding, resample_filter=resample_filter,
                             flip_weight=flip_weight, fused_modconv=fused_modconv)
        return bias_act(y, bias.to(y.dtype), act=act, gain=gain, clamp=clamp)
    from ganforge.nn.activation import LRELU_SLOPE

    batch = x.shape[0]
    dg = (demodulation_coefficients(weight, styles) * gain).to(x.dtype).reshape(batch, -1, 1, 1)
    bg = (bias * gain).to(x.dtype).reshape(1, -1, 1, 1)
    y = conv2d_resample(x * styles.to(x.dtype).reshape(batch, -1, 1, 1), weight.to(x.dtype), resample_filter,
                        up=up, padding=padding, flip_weight=flip_weight)
    needs_grad = torch.is_grad_enabled() and any(t is not None and t.requires_grad
                                                  for t in (x, weight, styles, bias, noise))
    if needs_grad:  # autograd records every op: one fused multiply-add instead of multiply, add, multiply,
        # then the noise and the activation in place on that fresh tensor (addcmul keeps its inputs, not its
        # output, for backward; leaky_relu_ keeps its result, whose sign is the input's).
        y = torch.addcmul(bg, y, dg)
        if noise is not None:
            y.add_((noise * gain).to(y.dtype))
        if act == "lrelu":
            y = torch.nn.functional.leaky_relu_(y, LRELU_SLOPE)
        return y.clamp(-clamp, clamp) if clamp is not None and clamp >= 0 else y
    y.mul_(dg)
    if noise is not None:
        y.add_((noise * gain).to(y.dtype))
    y.add_(bg)
    if act == "lrelu":
        torch.nn.functional.leaky_relu_(y, LRELU_SLOPE)
    if clamp is not None and clamp >= 0:
        y.clamp_(-clamp, clamp)
    return y
