"""`ganforge dataset`: messy inputs, NVIDIA's layout, labels, offline sources, atomic writes, errors."""

import io
import json
import os
import zipfile

import numpy as np
import pytest
from PIL import Image

from data_helpers import png_bytes, run_cli, write_fake_fashion_mnist, write_idx, write_messy_folder
from ganforge.cli import main as cli_main
from ganforge.data import ImageFolderDataset
from ganforge.data.tool import archive_name, convert_dataset
from ganforge.errors import UsageError


def _zip_images(path):
    with zipfile.ZipFile(path) as zf:
        names = sorted(zf.namelist())
        meta = json.loads(zf.read("dataset.json"))
        images = {n: Image.open(io.BytesIO(zf.read(n))) for n in names if n.endswith(".png")}
        sizes = {n: zf.getinfo(n).compress_size for n in names}
    for im in images.values():
        im.load()
    return names, meta, images, sizes


def test_messy_folder_cli_report_layout_and_labels(tmp_path):
    facts = write_messy_folder(tmp_path / "src")
    dest = tmp_path / "out.zip"
    r = run_cli("dataset", "--source", tmp_path / "src", "--dest", dest, "--resolution", 16,
                "--transform", "center-crop")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "wrote 5 images (16x16 RGB)" in out
    assert "skipped: 2 unreadable images" in out
    assert "b/corrupt.png: not a readable image" in out
    assert "b/truncated.png:" in out
    assert "ignored: 1 files that are not images" in out
    assert "converted: 1 RGBA composited on white" in out
    assert "converted: 1 palette expanded to RGB" in out
    assert "converted: 1 greyscale -> RGB" in out
    assert "labels: 2 classes from sub-folder names" in out
    assert "Traceback" not in r.stderr

    names, meta, images, sizes = _zip_images(dest)
    expected = [archive_name(i) for i in range(5)]
    assert expected == ["00000/img00000000.png", "00000/img00000001.png", "00000/img00000002.png",
                        "00000/img00000003.png", "00000/img00000004.png"]
    assert names == sorted(expected + ["dataset.json"])
    assert meta["labels"] == [[archive_name(i), c] for i, (_, c) in enumerate(facts["readable"])]
    assert meta["class_names"] == ["a", "b"]
    for n in expected:
        assert images[n].mode == "RGB" and images[n].size == (16, 16)
        # NVIDIA's tool writes uncompressed PNGs (compress_level=0): the file is larger than the pixels
        assert sizes[n] > 16 * 16 * 3
    # greyscale ramp replicated into 3 equal channels
    grey = np.asarray(images[archive_name(0)])
    assert (grey == facts["grey"][:, :, None]).all()
    # RGBA: transparent half on white, opaque half keeps its blue
    rgba = np.asarray(images[archive_name(2)])
    assert (rgba[:, :8] == 255).all()
    assert (rgba[:, 8:] == (0, 0, 255)).all()


def test_all_greyscale_inputs_stay_one_channel(tmp_path):
    src = tmp_path / "g"
    src.mkdir()
    ramp = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    Image.fromarray(ramp, "L").save(src / "0.png")
    Image.fromarray(ramp, "L").convert("LA").save(src / "1.png")           # grey + alpha
    Image.fromarray(ramp, "L").convert("P").save(src / "2.png")            # grey palette
    Image.fromarray(ramp.astype(np.uint16) * 257).save(src / "3.png")  # 16-bit grey
    rep = convert_dataset(str(src), str(tmp_path / "g.zip"), resolution=8)
    assert rep.channels == 1 and rep.written == 4 and rep.label_origin is None
    ds = ImageFolderDataset(tmp_path / "g.zip")
    assert ds.image_shape == [1, 8, 8]
    for i in range(4):
        assert (ds[i][0][0] == ramp).all()


def test_zip_source_with_dataset_json_labels_round_trip(tmp_path):
    rng = np.random.RandomState(1)
    pics = [rng.randint(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(6)]
    src = tmp_path / "src.zip"
    with zipfile.ZipFile(src, "w") as zf:
        for i, p in enumerate(pics):
            zf.writestr(f"imgs/{i}.png", png_bytes(Image.fromarray(p)))
        zf.writestr("imgs/readme.md", "hello")
        zf.writestr("dataset.json", json.dumps({"labels": [[f"imgs/{i}.png", [i * 0.5, 1.0]] for i in range(6)]}))
    dest = tmp_path / "out.zip"
    rep = convert_dataset(str(src), str(dest), resolution=16)  # power of two: plain resize
    assert rep.written == 6 and rep.resized == 6 and rep.label_origin == "dataset.json" and rep.ignored == 1
    ds = ImageFolderDataset(dest, use_labels=True, resolution=16)
    assert len(ds) == 6 and ds.label_dim == 2 and ds.image_shape == [3, 16, 16]
    for i in range(6):
        img, label = ds[i]
        assert img.dtype == np.uint8 and img.shape == (3, 16, 16)
        np.testing.assert_array_equal(label, np.array([i * 0.5, 1.0], np.float32))
        # resize 8 -> 16 keeps the mean colour
        assert abs(img.mean() - pics[i].mean()) < 4


def test_folder_dest_and_same_input_same_bytes(tmp_path):
    write_messy_folder(tmp_path / "src")
    args = dict(resolution=16, transform="pad")
    convert_dataset(str(tmp_path / "src"), str(tmp_path / "d1.zip"), **args)
    convert_dataset(str(tmp_path / "src"), str(tmp_path / "d2.zip"), **args)
    assert (tmp_path / "d1.zip").read_bytes() == (tmp_path / "d2.zip").read_bytes()  # deterministic
    rep = convert_dataset(str(tmp_path / "src"), str(tmp_path / "outdir"), **args)
    assert rep.written == 5
    files = sorted(os.path.relpath(os.path.join(r, f), tmp_path / "outdir").replace(os.sep, "/")
                   for r, _, fs in os.walk(tmp_path / "outdir") for f in fs)
    assert files == [archive_name(i) for i in range(5)] + ["dataset.json"]
    a = ImageFolderDataset(tmp_path / "outdir", use_labels=True)
    b = ImageFolderDataset(tmp_path / "d1.zip", use_labels=True)
    for i in range(5):
        assert (a[i][0] == b[i][0]).all() and (a[i][1] == b[i][1]).all()
    # pad of the 24x16 RGB image: centred, black rows above and below, width scaled 24 -> 16
    img = a[1][0]
    assert (img[:, :2] == 0).all() and (img[:, -3:] == 0).all() and img[:, 4:12].mean() > 20


def test_transforms_geometry(tmp_path):
    src = tmp_path / "w"
    src.mkdir()
    wide = np.zeros((20, 40), np.uint8)
    wide[:, 10:30] = 200  # bright centre square
    Image.fromarray(wide).save(src / "wide.png")
    for transform, check in [
        ("center-crop", lambda x: x.min() == 200),                             # only the bright centre
        ("resize", lambda x: x[:, :, :3].max() < 5 and x[:, :, 5:11].min() > 190),
        ("pad", lambda x: (x[:, :4] == 0).all() and (x[:, 12:] == 0).all()),   # 16x8 band, black bars
        ("center-crop-wide", lambda x: (x[:, :2] == 0).all() and (x[:, 14:] == 0).all()),  # 16x12 band
    ]:
        rep = convert_dataset(str(src), str(tmp_path / f"{transform}.zip"), resolution=16, transform=transform)
        x = ImageFolderDataset(tmp_path / f"{transform}.zip")[0][0]
        assert x.shape == (1, 16, 16) and check(x), transform
        assert rep.resized == 1


def test_max_images_counts_written_images(tmp_path):
    write_messy_folder(tmp_path / "src")
    rep = convert_dataset(str(tmp_path / "src"), str(tmp_path / "o.zip"), resolution=16,
                          transform="resize", max_images=4)
    assert rep.written == 4
    assert len(ImageFolderDataset(tmp_path / "o.zip")) == 4


def test_fashion_mnist_source_on_self_written_idx(tmp_path):
    root = tmp_path / "fm"
    x, y = write_fake_fashion_mnist(root, n=12)
    dest = tmp_path / "fm.zip"
    r = run_cli("dataset", "--source", "fashion-mnist", "--dest", dest, "--resolution", 32,
                env={"GANFORGE_FASHION_MNIST_DIR": str(root)})
    assert r.returncode == 0, r.stderr
    assert "labels: 10 classes" in r.stdout
    ds = ImageFolderDataset(dest, use_labels=True, resolution=32)
    assert len(ds) == 12 and ds.image_shape == [1, 32, 32] and ds.label_dim == 10
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"
    for i in range(12):
        img, label = ds[i]
        assert (img[0, 2:30, 2:30] == x[i]).all()        # padded 2 px each side, pixels untouched
        assert img[0, :2].max() == 0 and img[0, :, 30:].max() == 0
        assert label.argmax() == y[i] and label.sum() == 1
    # the IDX file given by path works too (labels from the sibling labels file)
    rep = convert_dataset(str(root / "train-images-idx3-ubyte.gz"), str(tmp_path / "p.zip"),
                          resolution=32, transform="pad")
    assert rep.written == 12 and rep.num_classes == 10


def test_failure_mid_write_leaves_nothing(tmp_path, monkeypatch):
    import ganforge.data.tool as tool

    write_messy_folder(tmp_path / "src")
    dest = tmp_path / "out.zip"
    dest.write_bytes(b"previous good dataset")
    real = tool._encode_png
    calls = []

    def failing(img, level, optimize):
        calls.append(1)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        return real(img, level, optimize)

    monkeypatch.setattr(tool, "_encode_png", failing)
    with pytest.raises(OSError):
        convert_dataset(str(tmp_path / "src"), str(dest), resolution=16, transform="pad")
    assert dest.read_bytes() == b"previous good dataset"
    assert sorted(os.listdir(tmp_path)) == ["out.zip", "src"]  # no temp file left behind
    calls.clear()
    with pytest.raises(OSError):
        convert_dataset(str(tmp_path / "src"), str(tmp_path / "newdir"), resolution=16, transform="pad")
    assert sorted(os.listdir(tmp_path)) == ["out.zip", "src"]


def test_errors_exit_2_one_line_dest_untouched(tmp_path):
    write_messy_folder(tmp_path / "src")
    dest = tmp_path / "out.zip"
    # non-square input without a transform: names the flags, nothing written
    r = run_cli("dataset", "--source", tmp_path / "src", "--dest", dest, "--resolution", 16)
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: a/rgb.png is 24x16, not square")
    assert "--transform center-crop" in lines[0] and "Traceback" not in r.stderr
    assert not dest.exists() and sorted(os.listdir(tmp_path)) == ["src"]
    assert not dest.exists()


def test_missing_debian_sources_name_the_package(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GANFORGE_FASHION_MNIST_DIR", str(tmp_path / "nowhere"))
    monkeypatch.setenv("GANFORGE_EMOJI_FONT", str(tmp_path / "nowhere.ttf"))
    for source, package in [("fashion-mnist", "dataset-fashion-mnist"), ("fashion-mnist-test", "dataset-fashion-mnist"),
                            ("emoji", "fonts-noto-color-emoji")]:
        rc = cli_main(["dataset", "--source", source, "--dest", str(tmp_path / "o.zip"), "--resolution", "32"])
        err = capsys.readouterr().err.strip().splitlines()
        assert rc == 2 and len(err) == 1 and f"apt-get install {package}" in err[0]
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("args, message", [
    (["--source", "{tmp}/missing", "--resolution", "16"], "does not exist"),
    (["--source", "{tmp}/odd", "--resolution", "32"], "not a power of two; add --transform pad"),
    (["--source", "{tmp}/src", "--resolution", "48", "--transform", "pad"], "--resolution 48 is not a power of two"),
    (["--source", "{tmp}/src", "--transform", "pad"], "--transform pad needs --resolution"),
    (["--source", "{tmp}/bad", "--resolution", "16"], "no readable images"),
    (["--source", "{tmp}/empty", "--resolution", "16"], "no images found"),
    (["--source", "{tmp}/src", "--resolution", "16", "--transform", "pad", "--dest", "{tmp}/full"],
     "is not empty"),
    (["--source", "{tmp}/src", "--resolution", "16", "--transform", "sharpen"], "invalid choice"),
])
def test_user_mistakes_are_usage_errors(tmp_path, capsys, args, message):
    write_messy_folder(tmp_path / "src")
    (tmp_path / "odd").mkdir()
    Image.new("L", (28, 28)).save(tmp_path / "odd" / "x.png")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"garbage")
    (tmp_path / "empty").mkdir()
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    args = [a.format(tmp=tmp_path) for a in args]
    if "--dest" not in args:
        args += ["--dest", str(tmp_path / "out.zip")]
    before = sorted(os.listdir(tmp_path))
    rc = cli_main(["dataset", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and message in err[0], err
    assert sorted(os.listdir(tmp_path)) == before  # nothing written, no temp files
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"


def _require_debian_file(path, package):
    """CI installs the Debian packages (.ci/run), so a missing file fails there; elsewhere
    GANFORGE_TESTS_WITHOUT_DEBIAN_DATA=1 turns the failure into a skip, explicitly."""
    if os.path.isfile(path):
        return
    msg = f"{path} is missing: apt-get install {package} (.ci/run does)"
    if os.environ.get("GANFORGE_TESTS_WITHOUT_DEBIAN_DATA") == "1":
        pytest.skip(msg)
    pytest.fail(msg + ", or set GANFORGE_TESTS_WITHOUT_DEBIAN_DATA=1 to skip the tests that read it")


def test_emoji_source_reads_the_installed_font(tmp_path):
    # The first bitmaps of Debian's Noto Color Emoji (CBDT, glyph order), each 136x128 PNG centred on a transparent
    # 136x136 square, composited on white, Lanczos-resized: rebuilt here from the font with fontTools + Pillow.
    from fontTools.ttLib import TTFont  # fonttools is in the [test] extra: its absence is a failure

    from ganforge.data.sources import EMOJI_FONT

    _require_debian_file(EMOJI_FONT, "fonts-noto-color-emoji")
    font = TTFont(EMOJI_FONT, lazy=True)
    strike = font["CBDT"].strikeData[0]
    assert len(strike) == 3926  # DESIGN.md: Debian's 2.042 has 3,926 colour bitmaps
    order = {g: i for i, g in enumerate(font.getGlyphOrder())}
    first = sorted(strike.keys(), key=order.__getitem__)[:3]
    refs = []
    for g in first:
        bitmap = Image.open(io.BytesIO(strike[g].imageData)).convert("RGBA")
        assert bitmap.size == (136, 128)
        square = Image.new("RGBA", (136, 136), (255, 255, 255, 0))
        square.paste(bitmap, (0, 4))
        flat = Image.alpha_composite(Image.new("RGBA", square.size, (255, 255, 255, 255)), square).convert("RGB")
        refs.append(np.asarray(flat.resize((32, 32), Image.Resampling.LANCZOS)).transpose(2, 0, 1).astype(int))

    rep = convert_dataset("emoji", str(tmp_path / "e.zip"), resolution=32, max_images=3)
    assert rep.written == 3 and rep.channels == 3
    ds = ImageFolderDataset(tmp_path / "e.zip")
    assert len(ds) == 3
    for i in range(3):
        img = ds[i][0].astype(int)
        assert img.shape == (3, 32, 32)
        assert (img[:, 0, 0] == 255).all()  # corner: transparent in the font, white here
        assert np.abs(img - refs[i]).max() <= 1, i
        assert np.abs(img - refs[(i + 1) % 3]).mean() > 10  # the glyphs differ: the comparison can tell them apart
        assert img.min() < 100  # the glyph is drawn (these first three are the grey keycaps #, *, 0)


def test_fashion_mnist_source_reads_the_installed_debian_package(tmp_path):
    # The Debian package's IDX files read independently (gzip; image header 16 bytes, label header 8 bytes).
    import gzip

    from ganforge.data.sources import FASHION_MNIST_DIR

    images_gz = os.path.join(FASHION_MNIST_DIR, "t10k-images-idx3-ubyte.gz")
    _require_debian_file(images_gz, "dataset-fashion-mnist")
    with gzip.open(images_gz) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 28, 28)
    with gzip.open(os.path.join(FASHION_MNIST_DIR, "t10k-labels-idx1-ubyte.gz")) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    assert x.shape == (10000, 28, 28) and list(y[:5]) == [9, 2, 1, 1, 6]  # the test split's first labels
    rep = convert_dataset("fashion-mnist-test", str(tmp_path / "t.zip"), resolution=32, max_images=5)
    assert rep.written == 5 and rep.num_classes == 10
    ds = ImageFolderDataset(tmp_path / "t.zip", use_labels=True)
    for i in range(5):
        img, label = ds[i]
        assert (img[0, 2:30, 2:30] == x[i]).all() and img[0, :2].max() == 0  # padded 2 px, pixels untouched
        assert label.argmax() == y[i]


def test_convert_dataset_rejects_bad_arguments(tmp_path):
    with pytest.raises(UsageError, match="max-images"):
        convert_dataset(str(tmp_path), str(tmp_path / "o.zip"), max_images=0)
    # a fake IDX file is a FormatError (a UsageError), not a crash
    write_idx(str(tmp_path / "x-images-idx3-ubyte.gz"), np.zeros((2, 4), np.uint8))
    with pytest.raises(UsageError, match="expected an image IDX file"):
        convert_dataset(str(tmp_path / "x-images-idx3-ubyte.gz"), str(tmp_path / "o.zip"), resolution=4)


def test_exif_orientation_is_applied(tmp_path):
    src = tmp_path / "photos"
    src.mkdir()
    a = np.zeros((8, 16, 3), np.uint8)
    a[:, :8] = 255  # left half white; EXIF 6 = rotate 90 degrees clockwise for display
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = 6
    im.save(src / "phone.jpg", exif=exif, quality=95)
    rep = convert_dataset(str(src), str(tmp_path / "o.zip"), resolution=16, transform="pad")
    assert rep.conversions["rotated upright (EXIF orientation)"] == 1
    x = ImageFolderDataset(tmp_path / "o.zip")[0][0][0]
    assert x[:8, 4:12].min() > 200 and x[8:, 4:12].max() < 50  # now 8 wide x 16 tall, white on top
    assert x[:, :4].max() == 0 and x[:, 12:].max() == 0


def test_folder_order_and_when_sub_folders_are_labels(tmp_path):
    from ganforge.data.sources import folder_source

    for d in ["a", "a-x", "b"]:
        (tmp_path / d).mkdir()
        Image.new("L", (4, 4)).save(tmp_path / d / "0.png")
    src = folder_source(str(tmp_path))
    # path-component order (NVIDIA's dataset_tool walks folders this way), classes sorted by name
    assert [it.name for it in src.items] == ["a/0.png", "a-x/0.png", "b/0.png"]
    assert src.class_names == ["a", "a-x", "b"] and [it.label for it in src.items] == [0, 1, 2]
    assert folder_source(str(tmp_path), no_labels=True).label_origin is None
    Image.new("L", (4, 4)).save(tmp_path / "loose.png")  # an image outside any class folder
    assert folder_source(str(tmp_path)).label_origin is None
