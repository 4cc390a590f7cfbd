"""write_jsonl appends one durable (flushed and fsynced) line per record to metric-<name>.jsonl, NVIDIA's
layout, which the training loop uses for the metrics of its snapshots (run_dir=...)."""

import json
import os

from ganforge.metrics import write_jsonl


def record(name, value):
    return {"results": {name: value}, "metric": name, "total_time": 1.5, "total_time_str": "2s", "num_gpus": 1,
            "timestamp": 1700000000.0}


def test_one_fsynced_line_per_record_in_metric_name_jsonl(tmp_path, monkeypatch):
    real_fsync = os.fsync
    synced = []

    def fsync(fd):
        st = os.fstat(fd)
        synced.append((st.st_ino, st.st_size))  # which file, and how much of it was written by then
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    run = tmp_path / "00000-fashion-mnist-cond"
    recs = {"fid50k_full": record("fid50k_full", 3.5), "kid50k_full": record("kid50k_full", 0.001)}
    files = write_jsonl(recs, run_dir=run, network=run / "network-snapshot-000010")
    assert files == [run / "metric-fid50k_full.jsonl", run / "metric-kid50k_full.jsonl"]
    assert synced == [(f.stat().st_ino, f.stat().st_size) for f in files]  # each file fsynced once its line is in
    write_jsonl({"fid50k_full": record("fid50k_full", 2.5)}, run_dir=run, network=run / "network-snapshot-000020")
    assert len(synced) == 3 and synced[2][0] == files[0].stat().st_ino
    lines = [json.loads(x) for x in files[0].read_text().splitlines()]
    assert lines == [dict(record("fid50k_full", 3.5), network=str(run / "network-snapshot-000010")),
                     dict(record("fid50k_full", 2.5), network=str(run / "network-snapshot-000020"))]
    assert len(files[1].read_text().splitlines()) == 1


def test_a_torn_last_line_does_not_swallow_the_next_record(tmp_path):
    target = tmp_path / "metric-fid50k_full.jsonl"
    target.write_text('{"results": {"fid50k_full": 3.5}}\n{"results": {"fid5')  # killed mid-write
    write_jsonl({"fid50k_full": record("fid50k_full", 2.5)}, run_dir=tmp_path)
    lines = target.read_text().splitlines()
    assert len(lines) == 3 and json.loads(lines[2])["results"] == {"fid50k_full": 2.5}
