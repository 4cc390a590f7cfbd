"""Latent editing without extra data: SeFa and GANSpace directions in W, and applying them to w's.

    from ganforge.editing import sefa_directions, ganspace_directions, edit_ws
"""

from ganforge.editing.apply import edit_figures, edit_grid_ws, edit_walk_frames, edit_ws, walk_offsets
from ganforge.editing.ganspace import ganspace_directions, sample_ws
from ganforge.editing.layers import LAYER_GROUPS, layer_group, modulated_layers, parse_layers, w_resolutions
from ganforge.editing.sefa import sefa_directions, style_weights

__all__ = ["LAYER_GROUPS", "edit_figures", "edit_grid_ws", "edit_walk_frames", "edit_ws", "ganspace_directions",
           "layer_group", "modulated_layers", "parse_layers", "sample_ws", "sefa_directions", "style_weights",
           "w_resolutions", "walk_offsets"]
