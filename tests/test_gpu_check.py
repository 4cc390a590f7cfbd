"""benchmarks/gpu_check.py: skips cleanly without CUDA, and its checks' logic runs on a CPU (--dry-run)."""

import os
import subprocess
import sys

SCRIPT = os.path.join(os.path.dirname(__file__), "..", "benchmarks", "gpu_check.py")
CHECKS = ["fp16-blocks", "bf16-autocast", "channels-last", "fused-d-pass", "sync-free-nets", "sync-free-step",
          "ddp-nccl", "bench-generate", "bench-train"]


def _run(*args, timeout=240):
    env = dict(os.environ, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="2")  # no GPU, even on a machine with one
    return subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True, env=env, timeout=timeout)


def test_without_cuda_it_prints_one_line_and_exits_0():
    proc = _run()
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gpu_check: skipped: no CUDA device"), proc.stdout
    assert proc.stderr.strip() == ""


def test_dry_run_on_cpu_runs_every_check_and_skips_only_the_cuda_ones():
    proc = _run("--device", "cpu", "--dry-run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if parts and parts[0] in CHECKS:
            rows[parts[0]] = (parts[1], line)
    assert list(rows) == CHECKS, proc.stdout  # one table row per check, in order
    # the CUDA-only parts are skipped, each with its reason; every other check ran and passed its tolerance
    skipped = {name for name, (status, _) in rows.items() if status == "SKIP"}
    assert skipped == {"sync-free-nets", "sync-free-step", "ddp-nccl", "bench-train"}, proc.stdout
    assert all(status == "PASS" for name, (status, _) in rows.items() if name not in skipped), proc.stdout
    assert "CUDA-only; the same code ran on cpu" in rows["sync-free-step"][1]  # its train_step did run
    assert "NCCL needs CUDA" in rows["ddp-nccl"][1]


def test_a_failing_check_makes_the_exit_status_1():
    # An unknown --nvidia checkout makes the generate benchmark fail (NVIDIA's code cannot be imported).
    proc = _run("--device", "cpu", "--dry-run", "--checks", "bench-generate", "--nvidia", "/nonexistent/sg2ada")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert any(line.split()[:2] == ["bench-generate", "FAIL"] for line in proc.stdout.splitlines()), proc.stdout
