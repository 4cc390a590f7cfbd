"""Shared helpers for the tests: tiny networks and CLI runners (import as `from testkit import ...`)."""

import os
import subprocess
import sys

import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


def tiny_G(res=16, img_channels=3, c_dim=0, architecture="skip", seed=0, **kw):
    from ganforge.models.stylegan2 import Generator

    torch.manual_seed(seed)
    syn = dict(channel_base=256, channel_max=32, architecture=architecture)
    syn.update(kw)
    return Generator(z_dim=16, c_dim=c_dim, w_dim=16, img_resolution=res, img_channels=img_channels,
                     mapping_kwargs=dict(num_layers=2), synthesis_kwargs=syn)


def tiny_D(res=16, img_channels=3, c_dim=0, architecture="resnet", seed=1, **kw):
    from ganforge.models.stylegan2 import Discriminator

    torch.manual_seed(seed)
    kw = {"channel_base": 256, "channel_max": 32, **kw}
    return Discriminator(c_dim=c_dim, img_resolution=res, img_channels=img_channels, architecture=architecture, **kw)


def run_cli(*args, cwd=None, env=None, timeout=300):
    """Run `python -m ganforge ARGS` in a subprocess -> CompletedProcess (text)."""
    e = dict(os.environ)
    e.setdefault("OMP_NUM_THREADS", "1")
    if env:
        e.update(env)
    return subprocess.run([sys.executable, "-m", "ganforge", *map(str, args)], cwd=cwd, env=e,
                          capture_output=True, text=True, timeout=timeout)


def assert_usage_error(proc, *fragments):
    """Exit code 2, one line on stderr starting with 'error:', no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    err = proc.stderr.strip()
    assert "Traceback" not in err, err
    assert err.startswith("error:") and len(err.splitlines()) == 1, err
    for frag in fragments:
        assert frag in err, (frag, err)


def usage_error_in_process(capsys, *args) -> str:
    """Run `ganforge <args>` in this process (faster than run_cli); assert exit 2 with one 'error:' line
    on stderr and return that line."""
    from ganforge.cli import main

    capsys.readouterr()
    assert main([str(a) for a in args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1, err
    return err
