"""Process-wide settings are explicit Trainer options: TF32 (off by default, as NVIDIA's training loop)
and glibc's malloc tuning (off for a library user, on for `ganforge train`)."""

import torch

from train_helpers import write_dataset


def _trainer(tmp_path, name, **kw):
    from ganforge.train.loop import Trainer, TrainOptions

    data = write_dataset(tmp_path / "data")
    opts = TrainOptions(data=data, cond=True, run_dir=str(tmp_path / name), cfg="small", cbase=64, cmax=8,
                        workers=0, kimg=0.004, aug="noaug", **kw)
    return Trainer(opts)


def test_tf32_is_off_unless_allowed_and_a_continued_run_keeps_its_choice(tmp_path, monkeypatch):
    from ganforge.train.loop import Trainer, TrainOptions

    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", True)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)  # PyTorch's default for convolutions
    t = _trainer(tmp_path, "a")
    assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    t.run()
    _trainer(tmp_path, "b", allow_tf32=True)
    assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    Trainer(TrainOptions(resume=str(tmp_path / "a"), workers=0))
    assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32


def test_malloc_tuning_only_when_asked(tmp_path, monkeypatch):
    from ganforge.cli import build_parser
    from ganforge.train import loop

    calls = []
    monkeypatch.setattr(loop, "keep_freed_memory_for_reuse", lambda: calls.append(1) or True)
    _trainer(tmp_path, "a")
    assert calls == []  # a notebook's Trainer leaves the process's allocator alone
    _trainer(tmp_path, "b", keep_freed_memory=True)
    assert calls == [1]
    parser = build_parser()
    assert parser.parse_args(["train"]).keep_freed_memory is True  # the CLI's default, as before
    assert parser.parse_args(["train", "--no-keep-freed-memory"]).keep_freed_memory is False
    assert parser.parse_args(["train", "--allow-tf32"]).allow_tf32 is True


def test_importing_ganforge_changes_no_process_setting():
    import subprocess
    import sys

    code = ("import torch; before = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32); "
            "import ganforge, ganforge.train.loop, ganforge.cli, ganforge.models.stylegan2; "
            "after = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32); "
            "assert before == after, (before, after)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
