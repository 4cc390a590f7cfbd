"""A run SIGKILLed at random moments (start-up, a step, a snapshot) and resumed each time finishes
identical to the uninterrupted run in every saved field."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import torch

from train_helpers import TINY, write_dataset

# 18 steps of batch 4, a snapshot every 3 steps (so kills land in snapshots too), ADA on (it draws from
# the global torch stream), path length and R1 in both halves.
RUN = ["--kimg", "0.072", "--snap", "0.012", "--batch", "4", "--seed", "5", "--aug", "ada", "--target", "0",
       "--ada-kimg", "0.05", *TINY]


def _start(args):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "ganforge", "train", *map(str, args)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)


def _equal(a, b, path="state"):
    """Recursive equality of saved values (tensors bit for bit); returns the first differing path."""
    if isinstance(a, dict):
        if a.keys() != b.keys():
            return f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            d = _equal(a[k], b[k], f"{path}.{k}")
            if d:
                return d
        return None
    if isinstance(a, (list, tuple)):
        if len(a) != len(b):
            return f"{path}: length"
        for i, (x, y) in enumerate(zip(a, b)):
            d = _equal(x, y, f"{path}[{i}]")
            if d:
                return d
        return None
    if isinstance(a, torch.Tensor):
        return None if (a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)) else path
    return None if a == b else f"{path}: {a!r} != {b!r}"


def _snapshot_fields(snap):
    from safetensors.torch import load_file

    state = torch.load(snap / "training_state.pt", weights_only=True)
    state.pop("elapsed_s")  # wall-clock time: the only field that may differ
    config = json.loads((snap / "config.json").read_text())
    return {"weights": load_file(snap / "model.safetensors"), "state": state, "config": config}


def test_random_kills_resume_to_the_uninterrupted_run(tmp_path):
    data = write_dataset(tmp_path / "data")
    ref = tmp_path / "ref"
    t0 = time.time()
    proc = _start(["--data", data, "--cond", "--run-dir", ref, *RUN])
    assert proc.wait(timeout=300) == 0, proc.stderr.read()
    duration = time.time() - t0

    run = tmp_path / "killed"
    rng = np.random.RandomState(2026)
    kills = 0
    for attempt in range(20):
        args = (["--resume", run] if (run / "training_options.json").exists()
                else ["--data", data, "--cond", "--run-dir", run, *RUN])
        proc = _start(args)
        if kills < 6:
            try:
                proc.wait(timeout=rng.uniform(0.05, 0.6) * duration)
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=60)
                kills += 1
                continue
        rc = proc.wait(timeout=300)
        assert rc == 0, proc.stderr.read()
        break
    else:
        raise AssertionError("the run never finished")
    assert kills >= 3, kills

    names = sorted(p.name for p in ref.glob("network-snapshot-*"))
    assert len(names) == 6 and names == sorted(p.name for p in run.glob("network-snapshot-*"))
    assert (run / "latest").read_text() == (ref / "latest").read_text()
    for name in names:  # every snapshot, not only the last, in every saved field
        diff = _equal(_snapshot_fields(ref / name), _snapshot_fields(run / name), name)
        assert diff is None, diff
    leftovers = [p.name for p in run.iterdir() if p.name.startswith(".") or ".old-" in p.name]
    assert leftovers == [], leftovers
