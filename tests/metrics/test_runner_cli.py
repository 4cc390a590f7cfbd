import json

import numpy as np
import pytest
import torch

from ganforge.metrics import DetectorOptions, compute_metrics, runner

from metrics_helpers import ToyG, blobs, run_cli, write_images


@pytest.fixture()
def folders(tmp_path):
    real = write_images(tmp_path / "real", blobs(3, 32, seed=0))
    fake = write_images(tmp_path / "fake", blobs(3, 32, seed=1, shift=30))
    return real, fake


def fid_by_gram(x1, x2):
    """FID from two feature sets without any D x D matrix function (exact when N < D):
    Tr sqrt(S1 S2) = ||X1c X2c^T||_* / sqrt(N1 N2) (nuclear norm), S = Xc^T Xc / N (1/N covariances)."""
    x1, x2 = x1.astype(np.float64), x2.astype(np.float64)
    c1, c2 = x1 - x1.mean(0), x2 - x2.mean(0)
    tr_sqrt = np.linalg.svd(c1 @ c2.T, compute_uv=False).sum() / np.sqrt(len(x1) * len(x2))
    return (np.sum((x1.mean(0) - x2.mean(0)) ** 2) + (c1 ** 2).sum() / len(x1) + (c2 ** 2).sum() / len(x2)
            - 2 * tr_sqrt)


def test_folder_fid_matches_independent_formula_and_cache_is_reused(folders, weights_dir, tmp_path, monkeypatch):
    real, fake = folders
    opts = DetectorOptions(files=[str(weights_dir / "inception-random.pth")], verify=False)
    kw = dict(dataset_path=str(real), fake_path=str(fake), cache_dir=tmp_path / "cache", detectors=opts,
              progress=False, fid_method="eigh", batch_size=4)
    first = compute_metrics(["fid"], **kw)["fid"]["results"]["fid"]
    cached = {k: list((tmp_path / "cache").glob(f"{k}-pool3-*.npz")) for k in ("real", "fake")}
    assert len(cached["real"]) == 1 and len(cached["fake"]) == 1  # both folders are cached by content
    feats = {}
    for k, (f,) in cached.items():
        with np.load(f) as z:
            feats[k] = z["features"]
    assert feats["real"].shape == (3, 2048)
    # eigh on rank-2 2048x2048 covariances is accurate to ~1e-5 relative; the Gram formula is exact.
    assert first == pytest.approx(fid_by_gram(feats["fake"], feats["real"]), rel=1e-4)
    assert first > 0
    # Second run (kid shares the pool3 features): no image is read again.
    calls = []
    orig = runner.dataset_batches

    def spy(ds, n, bs):
        calls.append(ds.path)
        return orig(ds, n, bs)
    monkeypatch.setattr(runner, "dataset_batches", spy)
    compute_metrics(["kid"], **kw)
    assert calls == []
    # Changing the dataset's content invalidates its cache entry only.
    write_images(real / "more", blobs(1, 32, seed=9))
    compute_metrics(["kid"], **kw)
    assert calls == [str(real)]


def test_generator_path_conditional_labels_and_seed_reproducibility(tmp_path):
    # A conditional toy G against a labelled folder; SWD needs no weights. swd32: 32 images.
    data = write_images(tmp_path / "data", blobs(40, 16, seed=0))
    (data / "dataset.json").write_text(json.dumps({"labels": [[f"img{i:05d}.png", i % 3] for i in range(40)]}))
    G = ToyG(res=16, c_dim=3)
    seen = []
    orig_forward = G.forward

    def forward(z, c, noise_mode="random"):
        seen.append(c.clone())
        return orig_forward(z, c, noise_mode=noise_mode)
    G.forward = forward
    kw = dict(G=G, dataset_path=str(data), cache_dir=tmp_path / "c", progress=False, batch_size=8)
    a = compute_metrics(["swd32"], **kw)["swd32"]["results"]
    b = compute_metrics(["swd32"], **kw)["swd32"]["results"]
    assert a == b and set(a) == {"swd32_16", "swd32"} and a["swd32"] > 0
    labels = torch.cat(seen)
    assert labels.shape == (64, 3) and torch.all(labels.sum(1) == 1)  # one-hot labels from the dataset
    assert len(set(labels.argmax(1).tolist())) == 3


def test_write_jsonl_next_to_network(tmp_path):
    recs = {"fid50k_full": {"results": {"fid50k_full": 3.5}, "metric": "fid50k_full", "total_time": 1.0,
                            "total_time_str": "1s", "num_gpus": 1, "timestamp": 0.0}}
    files = runner.write_jsonl(recs, network=tmp_path / "run" / "network-snapshot-000010")
    runner.write_jsonl(recs, network=tmp_path / "run" / "network-snapshot-000020")
    assert files == [tmp_path / "run" / "metric-fid50k_full.jsonl"]
    lines = [json.loads(x) for x in files[0].read_text().splitlines()]
    assert len(lines) == 2 and lines[1]["network"].endswith("000020") and lines[0]["results"]["fid50k_full"] == 3.5


def test_cli_folders_mode_end_to_end(folders, weights_dir, tmp_path):
    real, fake = folders
    out = tmp_path / "res.jsonl"
    proc = run_cli("metrics", "--folders", real, fake, "--metrics", "fid,swd_all", "--detector",
                   weights_dir / "inception-random.pth", "--no-verify-detector", "--fid-method", "eigh",
                   "--cache-dir", tmp_path / "cache", "--out", out, "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    assert "fid: fid " in proc.stdout
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    assert [x["metric"] for x in lines] == ["fid", "swd_all"]
    feats = {}
    for k in ("real", "fake"):
        (f,) = (tmp_path / "cache").glob(f"{k}-pool3-*.npz")
        with np.load(f) as z:
            feats[k] = z["features"]
    assert lines[0]["results"]["fid"] == pytest.approx(fid_by_gram(feats["fake"], feats["real"]), rel=1e-4)
    assert lines[1]["results"]["swd_all"] > 0 and "swd_all_32" in lines[1]["results"]


def _assert_usage(proc, fragment):
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error:") and fragment in err[0], proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_error_paths_exit_2(folders, weights_dir, tmp_path, monkeypatch, capsys):
    real, fake = folders
    env = {"GANFORGE_CACHE": str(tmp_path / "home"), "GANFORGE_DETECTOR_DIR": ""}
    # One real subprocess: a weight file that is not the published one.
    _assert_usage(run_cli("metrics", "--folders", real, fake, "--metrics", "fid", "--detector",
                          weights_dir / "inception-random.pth", env=env), "--no-verify-detector")
    # The rest through the same entry point in-process (same single handler, faster).
    from ganforge.cli import main

    for k, v in env.items():
        monkeypatch.setenv(k, v)
    cases = [(["--folders", real, fake, "--metrics", "fid"], "pt_inception-2015-12-05-6726825d.pth from https://"),
             (["--folders", real, fake, "--metrics", "fid_bogus"], "unknown metric"),
             (["--folders", real, tmp_path / "nope"], "no such file"),
             (["--folders", real, fake, "--metrics", "ppl2_wend"], "needs a network"),
             (["--network", tmp_path, "--metrics", "fid50k_full"], "pass --data"),
             (["--network", tmp_path, "--data", real, "--metrics", "fid"], "is for --folders mode"),
             (["--folders", real, fake, "--network", tmp_path], "either --network")]
    for args, fragment in cases:
        capsys.readouterr()
        assert main(["metrics", *map(str, args)]) == 2, args
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and fragment in err[0], (args, err)


def test_cli_network_mode_with_two_processes_equals_one_process_library_run(tmp_path):
    import ganforge
    from ganforge.formats import Checkpoint
    from ganforge.models.stylegan2 import Generator

    torch.manual_seed(0)
    G = Generator(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3,
                  mapping_kwargs=dict(num_layers=2), synthesis_kwargs=dict(channel_base=256, channel_max=32))
    net = tmp_path / "run" / "network-snapshot-000000"
    Checkpoint(G=G, G_ema=G, D=None, config={}).save(net)
    (tmp_path / "run" / "training_options.json").write_text("{}")  # a run directory: results land beside it
    data = write_images(tmp_path / "data", blobs(128, 16, seed=0))
    two = run_cli("metrics", "--network", net, "--data", data, "--metrics", "swd128", "--device", "cpu",
                  "--cache-dir", tmp_path / "cache", "--batch", "16", "--gpus", "2")
    assert two.returncode == 0, two.stderr
    (line,) = [json.loads(x) for x in (tmp_path / "run" / "metric-swd128.jsonl").read_text().splitlines()]
    assert line["network"] == str(net) and line["num_gpus"] == 2 and line["results"]["swd128"] > 0
    # Work split by rank + all-gather in batch order: the same numbers as one in-process run.
    one = compute_metrics(["swd128"], G=ganforge.load(net).G_ema, dataset_path=str(data),
                          cache_dir=tmp_path / "cache2", batch_size=16, progress=False)
    assert line["results"] == pytest.approx(one["swd128"]["results"], rel=1e-6)
