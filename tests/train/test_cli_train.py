"""`ganforge train` end to end, and its answers to bad input."""

import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image

from testkit import assert_usage_error, run_cli, usage_error_in_process
from train_helpers import TINY, write_dataset


def test_train_end_to_end_writes_snapshots_grid_and_log(tmp_path):
    data = write_dataset(tmp_path / "data")
    proc = run_cli("train", "--data", data, "--cond", "--outdir", tmp_path / "runs", "--kimg", "0.016",
                   "--snap", "0.008", "--batch", "4", "--metrics", "swd32", *TINY)
    assert proc.returncode == 0, proc.stderr
    runs = os.listdir(tmp_path / "runs")
    assert runs == ["00000-small-data-gpus1-batch4-gamma0.1-cond"]
    run = tmp_path / "runs" / runs[0]
    assert (run / "latest").read_text().strip() == "network-snapshot-000000.016"
    for snap in ("network-snapshot-000000.008", "network-snapshot-000000.016"):
        assert sorted(os.listdir(run / snap)) == ["config.json", "model.safetensors", "training_state.pt"]
    # Grid: one row per class (2 classes x 16 px), 8 columns.
    for png in ("fakes_init.png", "fakes000000.008.png", "fakes000000.016.png", "reals.png"):
        assert Image.open(run / png).size == (8 * 16, 2 * 16), png
    log = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [r["kimg"] for r in log] == [0.008, 0.016] and log[1]["snapshot"] == "network-snapshot-000000.016"
    assert all(np.isfinite(r["loss/G"]) and np.isfinite(r["loss/D"]) and r["sec_per_kimg"] > 0 for r in log)
    # --metrics ran at each snapshot (SWD of 32 generated vs 32 real images).
    # One file per metric, NVIDIA's name and record layout.
    metrics = [json.loads(line) for line in (run / "metric-swd32.jsonl").read_text().splitlines()]
    assert [m["network"] for m in metrics] == ["network-snapshot-000000.008", "network-snapshot-000000.016"]
    assert all(m["metric"] == "swd32" and m["results"]["swd32"] > 0 for m in metrics)
    assert log[1]["metrics/swd32"] == metrics[1]["results"]["swd32"]
    # The snapshot is an ordinary checkpoint: sample the class-1 row from it.
    from ganforge import load
    from ganforge.train.rundir import next_run_dir

    G = load(run / "network-snapshot-000000.016").G_ema
    assert G.c_dim == 2 and tuple(G.sample([0, 1], class_idx=1).shape) == (2, 1, 16, 16)
    # The next run goes into the next numbered directory.
    assert os.path.basename(next_run_dir(str(tmp_path / "runs"), "x")) == "00001-x"


def test_bad_input_is_one_line_exit_2(tmp_path, capsys):
    # Through a real subprocess once (the format of the message), then in-process for speed.
    assert_usage_error(run_cli("train", "--data", tmp_path / "missing", "--outdir", tmp_path / "o"), "does not exist")
    def usage_error(*args):
        return usage_error_in_process(capsys, "train", *args)

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("no images here")
    assert "no images" in usage_error("--data", empty, "--outdir", tmp_path / "o")
    data = write_dataset(tmp_path / "data")
    assert "32x32" in usage_error("--data", data, "--cfg", "cifar", "--outdir", tmp_path / "o", "--workers", "0")
    unlabelled = write_dataset(tmp_path / "unlabelled")
    os.remove(os.path.join(unlabelled, "dataset.json"))
    assert "labels" in usage_error("--data", unlabelled, "--cond", "--outdir", tmp_path / "o")
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "x").write_text("x")
    assert "not empty" in usage_error("--data", data, "--run-dir", existing, *TINY)
    assert not (tmp_path / "o").exists() or os.listdir(tmp_path / "o") == []


DISK_FULL = r"""
import errno, sys
import ganforge.formats.native as native
calls = [0]
real = native.save_file
def save_file(*a, **k):
    calls[0] += 1
    if calls[0] >= 2:   # the second snapshot's weights: the disk is full
        raise OSError(errno.ENOSPC, "No space left on device")
    return real(*a, **k)
native.save_file = save_file
from ganforge.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_disk_full_mid_snapshot_keeps_the_previous_one(tmp_path):
    from ganforge.formats import load

    data = write_dataset(tmp_path / "data")
    run = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, "-c", DISK_FULL, "train", "--data", data, "--run-dir", str(run),
                           "--kimg", "0.016", "--snap", "0.008", "--batch", "4", *TINY],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2, proc.stderr
    err = proc.stderr.strip()
    assert err.startswith("error:") and len(err.splitlines()) == 1 and "No space left" in err, err
    assert (run / "latest").read_text().strip() == "network-snapshot-000000.008"
    assert sorted(n for n in os.listdir(run) if n.startswith("network-snapshot")) == ["network-snapshot-000000.008"]
    assert not [n for n in os.listdir(run) if n.startswith(".")]  # no half-written leftovers
    ckpt = load(run / "network-snapshot-000000.008")
    assert ckpt.D is not None
    # ... and the run continues from it once there is space again.
    proc = run_cli("train", "--resume", run)
    assert proc.returncode == 0, proc.stderr
    assert (run / "latest").read_text().strip() == "network-snapshot-000000.016"
