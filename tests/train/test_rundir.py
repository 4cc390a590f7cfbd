"""Snapshot writing under a kill: no moment loses the last good snapshot."""

import subprocess
import sys
import textwrap

import torch

from ganforge.train import rundir

# A child process writes snapshot 4 twice (as the end of a resumed run does), with os.rename patched
# and os.replace to kill the process (os._exit: no cleanup, as SIGKILL) at their n-th call during the
# second write. The renames of a rewrite: the staging directory into place (1), training_state.pt (2),
# the old snapshot aside (3), the new one into place (4), latest (5).
CHILD = textwrap.dedent("""
    import os, sys, torch
    from ganforge.formats import Checkpoint
    from ganforge.train import rundir
    sys.path.insert(0, sys.argv[3])
    from testkit import tiny_G
    run, die_at = sys.argv[1], int(sys.argv[2])
    G = tiny_G(res=8)
    rundir.write_snapshot(run, 4000, Checkpoint(G=G, G_ema=G, D=None), {"version": 1, "which": "first"})
    calls = [0]
    def dying(real):
        def rename(a, b):
            calls[0] += 1
            if calls[0] == die_at:
                os._exit(9)
            real(a, b)
        return rename
    os.rename, os.replace = dying(os.rename), dying(os.replace)
    rundir.write_snapshot(run, 4000, Checkpoint(G=G, G_ema=G, D=None), {"version": 1, "which": "second"})
""")


def _killed_rewrite(tmp_path, die_at):
    run = tmp_path / f"run{die_at}"
    run.mkdir()
    tests_dir = str(__import__("pathlib").Path(__file__).resolve().parents[1])
    proc = subprocess.run([sys.executable, "-c", CHILD, str(run), str(die_at), tests_dir], capture_output=True,
                          text=True, timeout=120)
    return run, proc


def test_kill_between_the_renames_of_a_rewrite_keeps_the_old_snapshot(tmp_path):
    run, proc = _killed_rewrite(tmp_path, die_at=4)
    assert proc.returncode == 9, proc.stderr
    snap = run / "network-snapshot-000004"
    assert not snap.exists() and list(run.glob("network-snapshot-000004.old-*"))  # the crash window
    rundir.clean_staging(run)  # what the next start does first: must not delete the only good copy
    found = rundir.latest_snapshot(run)
    assert found == str(snap)
    state = torch.load(snap / "training_state.pt", weights_only=True)
    assert state["which"] == "first"
    assert sorted(p.name for p in run.iterdir()) == ["latest", "network-snapshot-000004"]


def test_kill_at_each_rename_of_a_rewrite_leaves_a_complete_snapshot(tmp_path):
    for die_at in range(1, 7):  # every rename of the second write (temporary files, the directories, latest)
        run, proc = _killed_rewrite(tmp_path, die_at)
        if proc.returncode == 0:  # fewer renames than die_at: the rewrite completed
            break
        assert proc.returncode == 9, proc.stderr
        found = rundir.latest_snapshot(run)
        assert found is not None
        state = rundir.read_training_state(found)
        assert state["which"] in ("first", "second")
        rundir.clean_staging(run)
        assert rundir.latest_snapshot(run) == found
        assert not [p for p in run.iterdir() if p.name.startswith(".") or ".old-" in p.name]
