"""Exact resume: N steps in one go == N/2 steps, SIGKILL, --resume for N/2 (bit for bit)."""

import json
import os
import signal
import subprocess
import sys

import torch

from testkit import run_cli, usage_error_in_process
from train_helpers import TINY, load_weights, write_dataset

# 18 steps of batch 4: path length on steps 0,4,...,16 and R1 on 0 and 16, so both halves regularize.
# ADA moves fast (p by 0.32 per adjustment) so that the second half trains on augmented images and
# the snapshot at step 9 holds pending ADA sums (9 = 2 adjustments + 1 minibatch).
RUN = ["--kimg", "0.072", "--snap", "0.036", "--batch", "4", "--seed", "3", "--aug", "ada", "--target", "0",
       "--ada-kimg", "0.05", *TINY]


def _train(*args, env=None):
    proc = run_cli("train", *args, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_kill_and_resume_is_bit_identical(tmp_path):
    data = write_dataset(tmp_path / "data")
    one_go = tmp_path / "one_go"
    _train("--data", data, "--cond", "--run-dir", one_go, *RUN)

    # The same run, told to go on much longer, SIGKILLed right after its first snapshot's log line;
    # then continued up to the same 72 images (a resumed run may change --kimg).
    killed = tmp_path / "killed"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    long_run = [a if a != "0.072" else "5" for a in RUN]
    proc = subprocess.Popen([sys.executable, "-m", "ganforge", "train", "--data", data, "--cond",
                             "--run-dir", str(killed), *long_run], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env=env)
    try:
        for line in proc.stdout:
            if "snapshot network-snapshot-000000.036" in line:
                break
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert (killed / "latest").read_text().strip() == "network-snapshot-000000.036"
    assert not (killed / "network-snapshot-000000.072").exists()

    _train("--resume", killed, "--kimg", "0.072")  # the run's own options (threads included) are reused
    a = load_weights(one_go / "network-snapshot-000000.072")
    b = load_weights(killed / "network-snapshot-000000.072")
    assert a.keys() == b.keys() and len(a) > 0
    assert all(torch.equal(a[k], b[k]) for k in a), [k for k in a if not torch.equal(a[k], b[k])][:5]
    sa = torch.load(one_go / "network-snapshot-000000.072" / "training_state.pt", weights_only=True)
    sb = torch.load(killed / "network-snapshot-000000.072" / "training_state.pt", weights_only=True)
    assert sa["cur_nimg"] == sb["cur_nimg"] == 72 and sa["step"] == sb["step"] == 18
    assert sa["tick"] == sb["tick"] == 1   # the resumed run goes on with the tick after the snapshot's
    assert torch.equal(sa["pl_mean"], sb["pl_mean"]) and sa["pl_mean"].item() > 0
    assert sa["sampler"] == sb["sampler"]
    assert sa["augment"] == sb["augment"] and sa["augment"]["p"] > 0, (sa["augment"], sb["augment"])
    half = torch.load(killed / "network-snapshot-000000.036" / "training_state.pt", weights_only=True)
    assert half["augment"]["batches"] == 1 and half["augment"]["count"] > 0
    for opt in ("G_opt", "D_opt"):
        for i, st in sa[opt]["state"].items():
            for k, v in st.items():
                assert torch.equal(v, sb[opt]["state"][i][k]), (opt, i, k)
    # The log continued where it stopped: one line per snapshot, kimg increasing.
    lines = (killed / "stats.jsonl").read_text().splitlines()
    assert [round(json.loads(l)["kimg"], 3) for l in lines] == [0.036, 0.072]
    assert [json.loads(l)["tick"] for l in lines] == [0, 1]


def test_resume_from_checkpoint_fine_tunes_its_weights(tmp_path, tiny_checkpoint):
    # tiny_checkpoint: 16x16 greyscale, 10 classes. One step of Adam moves each weight by at most ~lr.
    from ganforge.formats import load

    data = write_dataset(tmp_path / "data", classes=10, n=40)
    run = tmp_path / "ft"
    _train("--data", data, "--cond", "--resume", tiny_checkpoint, "--run-dir", run, "--kimg", "0.004",
           "--snap", "0.004", "--batch", "4", "--workers", "0", "--threads", "1")
    src = load(tiny_checkpoint)
    out = load(run / "network-snapshot-000000.004")
    for name in ("G", "D"):
        s = dict(getattr(src, name).named_parameters())
        o = dict(getattr(out, name).named_parameters())
        assert s.keys() == o.keys()
        worst = max((s[k] - o[k]).abs().max().item() for k in s)
        assert 0 < worst <= 3 * 0.0025, (name, worst)  # loaded, then trained one step


def test_resume_errors(tmp_path, tiny_checkpoint, capsys):
    def usage_error(*args):
        return usage_error_in_process(capsys, "train", *args)

    data = write_dataset(tmp_path / "data")
    not_a_run = tmp_path / "empty"
    not_a_run.mkdir()
    assert "neither a ganforge run directory" in usage_error("--resume", not_a_run, "--data", data)
    # Options that are not a run's (a damaged run directory) are refused, naming what is missing.
    half = tmp_path / "half"
    half.mkdir()
    (half / "training_options.json").write_text("{}")
    assert "lacks data, cond, mirror, seed, snap, tick, config; the run directory is damaged" in usage_error(
        "--resume", half)
    # Settings fixed by a run cannot change when continuing it.
    run = tmp_path / "run"
    run.mkdir()
    (run / "training_options.json").write_text(json.dumps(
        {"data": data, "cond": False, "mirror": False, "seed": 0, "snap": 4, "tick": 1, "config": {}}))
    (run / "latest").write_text("network-snapshot-000000.004\n")
    (run / "network-snapshot-000000.004").mkdir()
    (run / "network-snapshot-000000.004" / "training_state.pt").write_bytes(b"")
    assert "--batch, --lr cannot change" in usage_error("--resume", run, "--batch", "8", "--lr", "0.1")
    # A checkpoint whose resolution differs from the dataset's.
    data8 = write_dataset(tmp_path / "data8", res=8, classes=10, n=20)
    assert "16x16" in usage_error("--resume", tiny_checkpoint, "--data", data8, "--cond", "--workers", "0")
    # A checkpoint whose labels differ from the dataset's.
    assert "c_dim=10" in usage_error("--resume", tiny_checkpoint, "--data", data, "--workers", "0")


def test_continuing_on_another_number_of_processes_keeps_the_global_batch():
    from types import SimpleNamespace

    import pytest

    from ganforge.errors import UsageError
    from ganforge.train.loop import Trainer

    def adapt(world, batch_gpu=None, batch=8, saved_batch_gpu=8):
        t = SimpleNamespace(cfg=SimpleNamespace(batch=batch, batch_gpu=saved_batch_gpu, gpus=1),
                            info=SimpleNamespace(world_size=world, is_main=False))
        Trainer._adapt_to_processes(t, batch_gpu)
        return t.cfg.gpus, t.cfg.batch_gpu

    assert adapt(2) == (2, 4) and adapt(4) == (4, 2) and adapt(1, batch_gpu=2) == (1, 2)
    with pytest.raises(UsageError, match="global batch 8 cannot be split over 3 processes"):
        adapt(3)
    with pytest.raises(UsageError, match="--batch-gpu 3 must divide the per-process batch 4"):
        adapt(2, batch_gpu=3)


def test_a_resumed_run_keeps_what_was_changed_for_it(tmp_path):
    from ganforge.train.loop import Trainer, TrainOptions

    data = write_dataset(tmp_path / "data")
    run = tmp_path / "run"
    _train("--data", data, "--cond", "--run-dir", run, "--kimg", "0.004", "--snap", "0.004", "--batch", "4",
           "--aug", "noaug", *TINY)
    proc = _train("--resume", run, "--kimg", "0.008", "--snap", "0.008", "--metrics", "swd16")
    assert "note: continuing with snap 0.004 -> 0.008, metrics [] -> ['swd16'], kimg 0.004 -> 0.008" in proc.stdout
    assert (run / "network-snapshot-000000.008").is_dir() and (run / "metric-swd16.jsonl").is_file()
    options = json.loads((run / "training_options.json").read_text())
    assert options["config"]["kimg"] == 0.008 and options["snap"] == 0.008 and options["metrics"] == ["swd16"]
    # A later plain --resume goes on with the changed settings, not the run's first ones.
    t = Trainer(TrainOptions(resume=str(run), workers=0))
    assert (t.cfg.kimg, t.snap, t.metrics) == (0.008, 0.008, ["swd16"])
    # ... and says nothing changed.
    proc = _train("--resume", run)
    assert "note: continuing" not in proc.stdout
