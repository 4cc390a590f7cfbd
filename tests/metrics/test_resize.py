import numpy as np
import torch
import torch.nn.functional as F

from ganforge.metrics.resize import tf1_resize_bilinear, to_uint8


def tf1_reference(img: np.ndarray, oh: int, ow: int) -> np.ndarray:
    """Independent per-pixel TF1 ResizeBilinear (align_corners=False, half_pixel_centers=False), float64.

    in_y = y * (H / oh); y0 = floor(in_y); y1 = min(ceil(in_y), H - 1); same for x; the four corners are
    blended with weights (1-dy)(1-dx), (1-dy)dx, dy(1-dx), dy dx.
    img: [H, W] -> [oh, ow]
    """
    h, w = img.shape
    out = np.zeros((oh, ow))
    for y in range(oh):
        in_y = y * (h / oh)
        y0 = int(np.floor(in_y)); y1 = min(int(np.ceil(in_y)), h - 1); dy = in_y - np.floor(in_y)
        for x in range(ow):
            in_x = x * (w / ow)
            x0 = int(np.floor(in_x)); x1 = min(int(np.ceil(in_x)), w - 1); dx = in_x - np.floor(in_x)
            out[y, x] = ((1 - dy) * (1 - dx) * img[y0, x0] + (1 - dy) * dx * img[y0, x1]
                         + dy * (1 - dx) * img[y1, x0] + dy * dx * img[y1, x1])
    return out


def test_tf1_resize_matches_independent_formula_up_and_down():
    rng = np.random.RandomState(0)
    for (h, w, oh, ow) in [(7, 5, 29, 23), (32, 32, 299, 299), (40, 37, 13, 11)]:
        img = rng.randint(0, 256, size=(h, w)).astype(np.float64)
        ours = tf1_resize_bilinear(torch.tensor(img, dtype=torch.float32)[None, None], (oh, ow))[0, 0].numpy()
        ref = tf1_reference(img, oh, ow)
        # float32 vs float64 arithmetic on a 0..255 scale: agreement to ~1e-4 absolute.
        assert np.abs(ours - ref).max() < 2e-3, (h, w, oh, ow)


def test_tf1_resize_hand_computed_2_to_4():
    # Source coords 0, 0.5, 1, 1.5; 1.5 clamps its upper neighbour to index 1.
    x = torch.tensor([[[[10.0, 30.0]]]])
    out = tf1_resize_bilinear(x, (1, 4))
    assert out.flatten().tolist() == [10.0, 20.0, 30.0, 30.0]


def test_tf1_resize_is_identity_at_same_size_and_differs_from_half_pixel():
    x = torch.rand(2, 3, 299, 299) * 255
    assert torch.equal(tf1_resize_bilinear(x, (299, 299)), x)
    small = torch.rand(1, 3, 32, 32) * 255
    ours = tf1_resize_bilinear(small, (299, 299))
    half_pixel = F.interpolate(small, size=(299, 299), mode="bilinear", align_corners=False)
    assert (ours - half_pixel).abs().max() > 1.0  # the grids really differ (pytorch-fid's mistake)


def test_tf1_resize_equals_nvidia_grid_sample_trick():
    # NVIDIA's TorchScript detector: affine_grid shifted by 1/in - 1/out, grid_sample(border).
    x = torch.rand(2, 3, 48, 40) * 255
    oh, ow = 299, 299
    theta = torch.tensor([[1, 0, 1 / 40 - 1 / ow], [0, 1, 1 / 48 - 1 / oh]], dtype=torch.float32)
    grid = F.affine_grid(theta[None].expand(2, 2, 3), [2, 3, oh, ow], align_corners=False)
    ref = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    assert (tf1_resize_bilinear(x, (oh, ow)) - ref).abs().max() < 1e-2


def test_to_uint8_rounds_to_nearest():
    img = torch.tensor([-1.0, -0.999, 0.0, 0.5, 1.0, 1.5])
    # (x * 127.5 + 128) truncated == round(x * 127.5 + 127.5), clamped.
    assert to_uint8(img).tolist() == [0, 0, 128, 191, 255, 255]
