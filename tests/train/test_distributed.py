"""Two gloo processes under real torchrun (via `--gpus 2`) == one process with the same global batch."""

import json
import os

import torch

from testkit import run_cli
from train_helpers import TINY, load_weights, write_dataset

# Global batch 8: one process with batch 8, or two with 4 each. The minibatch-stddev groups (size 4)
# hold the same samples both ways (sample i of 8 is in group i mod 2; rank r gets samples r, r+2, ...).
# The per-pixel noise of each sample is drawn for the global batch and sliced, like the latents, so it
# stays on. Augmentations are drawn per rank (as in NVIDIA's code), so they are off. 5 steps: path
# length on steps 0 and 4, R1 on step 0.
RUN = ["--kimg", "0.040", "--snap", "0.040", "--batch", "8", "--aug", "noaug", "--seed", "1", *TINY]


def test_gloo_two_processes_match_one(tmp_path):
    data = write_dataset(tmp_path / "data")
    single = tmp_path / "single"
    proc = run_cli("train", "--data", data, "--cond", "--run-dir", single, *RUN)
    assert proc.returncode == 0, proc.stderr

    # `--gpus 2` re-runs the command under PyTorch's launcher (python -m torch.distributed.run).
    multi = tmp_path / "multi"
    proc = run_cli("train", "--gpus", "2", "--data", data, "--cond", "--run-dir", multi, *RUN)
    assert proc.returncode == 0, proc.stderr[-3000:]
    opts = (multi / "training_options.json").read_text()
    assert '"gpus": 2' in opts and '"batch_gpu": 4' in opts

    a = load_weights(single / "network-snapshot-000000.040")
    b = load_weights(multi / "network-snapshot-000000.040")
    assert a.keys() == b.keys()
    strengths = [k for k in a if k.startswith("G.") and k.endswith("noise_strength")]
    assert strengths and all(a[k].abs() > 0 for k in strengths)  # the noise was on and mattered
    for k in a:  # parameters, and w_avg (updated from the all-reduced batch mean)
        # Weights are stored N(0,1)/lr_multiplier: compare relative to each tensor's scale.
        scale = a[k].abs().max().clamp_min(1.0)
        assert torch.allclose(a[k], b[k], atol=1e-5 * scale.item(), rtol=1e-5), (k, (a[k] - b[k]).abs().max())
    # Only rank 0 wrote: one log, one set of files.
    assert len((multi / "stats.jsonl").read_text().splitlines()) == 1

    # A run started on one process continues on two (same global batch, data stream, latents and
    # noise): 3 steps alone, then --resume --gpus 2 up to step 5, equals the single run again.
    moved = tmp_path / "moved"
    first_half = [a if a != "0.040" else "0.024" for a in RUN]
    proc = run_cli("train", "--data", data, "--cond", "--run-dir", moved, *first_half)
    assert proc.returncode == 0, proc.stderr
    proc = run_cli("train", "--resume", moved, "--gpus", "2", "--kimg", "0.040")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "continuing a run of 1 process(es) on 2" in proc.stderr
    c = load_weights(moved / "network-snapshot-000000.040")
    for k in a:
        scale = a[k].abs().max().clamp_min(1.0)
        assert torch.allclose(a[k], c[k], atol=1e-5 * scale.item(), rtol=1e-5), (k, (a[k] - c[k]).abs().max())


def test_gloo_two_processes_with_metrics_at_every_snapshot(tmp_path):
    # Every rank takes part in the metric's collectives (the work is split over the ranks and the
    # features all-gathered): a mid-run snapshot must not hang and the last one must not crash rank 0.
    # The two-process value equals the one-process value: same fakes (seeded per batch), same reals.
    data = write_dataset(tmp_path / "data")
    run = ["--kimg", "0.016", "--snap", "0.008", "--batch", "8", "--aug", "noaug", "--seed", "1",
           "--metrics", "swd32", *TINY]
    multi = tmp_path / "multi"
    proc = run_cli("train", "--gpus", "2", "--data", data, "--cond", "--run-dir", multi, *run, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [json.loads(l) for l in (multi / "metric-swd32.jsonl").read_text().splitlines()]
    assert [os.path.basename(l["network"]) for l in lines] == ["network-snapshot-000000.008",
                                                              "network-snapshot-000000.016"]
    assert all(l["num_gpus"] == 2 and l["results"]["swd32"] > 0 for l in lines)
    assert not (multi / "metrics.jsonl").exists()  # NVIDIA's name, one file per metric

    single = tmp_path / "single"
    proc = run_cli("train", "--data", data, "--cond", "--run-dir", single, *run)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one = [json.loads(l) for l in (single / "metric-swd32.jsonl").read_text().splitlines()]
    for a, b in zip(one, lines):
        assert abs(a["results"]["swd32"] - b["results"]["swd32"]) <= 1e-3 * a["results"]["swd32"], (a, b)
