"""Applying an edit: only the chosen layers move, by exactly strength * direction; the figure's layout."""

import numpy as np
import torch

from testkit import tiny_G
from ganforge.editing import edit_figures, edit_walk_frames, edit_ws, walk_offsets
from ganforge.models.latents import to_uint8


def test_edit_ws_moves_only_the_chosen_layers_by_strength_times_direction():
    torch.manual_seed(0)
    ws = torch.randn(3, 6, 16)
    before = ws.clone()
    d = torch.randn(16)
    out = edit_ws(ws, d, 2.5, [1, 4])
    assert torch.equal(ws, before)                                             # the input is untouched
    others = [0, 2, 3, 5]
    assert torch.equal(out[:, others], ws[:, others])
    torch.testing.assert_close(out[:, [1, 4]] - ws[:, [1, 4]], (2.5 * d).expand(3, 2, 16), rtol=0, atol=1e-6)
    per_sample = edit_ws(ws, d, torch.tensor([0.0, 1.0, -2.0]), [0])
    torch.testing.assert_close(per_sample[:, 0] - ws[:, 0], torch.tensor([0.0, 1.0, -2.0])[:, None] * d,
                               rtol=0, atol=1e-6)


@torch.no_grad()
def test_figure_rows_are_directions_and_columns_strengths():
    G = tiny_G(res=16, img_channels=1).eval()
    ws = G.mapping(torch.randn(2, 16), None)
    dirs = torch.nn.functional.normalize(torch.randn(3, 16), dim=1)
    strengths, layers = [-2.0, 0.0, 1.0, 3.0], [0, 1, 2]
    figures, edited = edit_figures(G, ws, dirs, strengths, layers, batch_size=5)
    assert len(figures) == 2 and all(f.shape == (3 * 16, 4 * 16) for f in figures)
    assert edited.shape == (2 * 3 * 4, G.num_ws, 16)
    cells = torch.cat([edit_ws(ws[s:s + 1], dirs[k], st, layers) for s in range(2) for k in range(3)
                       for st in strengths])                                  # built here one at a time
    ref = to_uint8(G.synthesis(cells, noise_mode="const"))[:, 0].numpy().astype(int).reshape(2, 3, 4, 16, 16)
    for s in range(2):
        for k in range(3):
            for m in range(4):
                cell = figures[s][k * 16:(k + 1) * 16, m * 16:(m + 1) * 16].astype(int)
                assert np.abs(cell - ref[s, k, m]).max() <= 1, (s, k, m)
    plain = to_uint8(G.synthesis(ws, noise_mode="const"))[:, 0].numpy().astype(int)
    assert np.abs(figures[1][16:32, 16:32].astype(int) - plain[1]).max() <= 1   # strength 0 = unedited


def test_walk_loops_through_both_ends():
    s = walk_offsets(-3.0, 2.0, 40)
    assert s[0] == 0 and np.isclose(s.max(), 2.0) and np.isclose(s.min(), -3.0)
    assert np.isclose(s[10], 2.0) and np.isclose(s[30], -3.0)
    G = tiny_G(res=8).eval()
    with torch.no_grad():
        ws = G.mapping(torch.randn(3, 16), None)
    frames = list(edit_walk_frames(G, ws, torch.eye(16)[:2], [0, 1], -1.0, 1.0, frames=4, batch_size=4))
    assert len(frames) == 2 * 4 and frames[0].shape == (2 * 8, 2 * 8, 3)      # 3 cells in a 2x2 grid
    assert np.array_equal(frames[0], frames[4])                               # each direction starts unedited
