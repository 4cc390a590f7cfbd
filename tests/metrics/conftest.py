"""Fixtures for the metrics tests (helpers in metrics_helpers.py)."""

import pytest
import torch

from metrics_helpers import random_inception_state_dict, random_lpips_state_dict, random_vgg16_state_dict


@pytest.fixture(scope="session")
def weights_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("detectors")
    torch.save(random_inception_state_dict(0), d / "inception-random.pth")
    torch.save(random_vgg16_state_dict(0), d / "vgg16-random.pth")
    torch.save(random_lpips_state_dict(0), d / "lpips-random.pth")
    return d


