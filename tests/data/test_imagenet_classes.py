"""ImageNet class names (ganforge.data.imagenet): the bundled ILSVRC-2012 list in its standard order, and
what a user may type for --class: an index, a WordNet id, or a name."""

import re
from importlib import resources

import pytest

from ganforge.data.imagenet import (
    class_name,
    imagenet_names,
    imagenet_wnids,
    resolve_class,
)
from ganforge.errors import UsageError


def test_the_standard_sorted_wnid_order():
    # class k is the k-th ILSVRC-2012 synset in sorted order (devkit, torchvision, BigGAN all use it)
    wnids, names = imagenet_wnids(), imagenet_names()
    assert len(wnids) == len(set(wnids)) == len(names) == 1000
    assert wnids == sorted(wnids) and all(re.fullmatch(r"n\d{8}", w) for w in wnids)
    assert (wnids[0], names[0]) == ("n01440764", "tench, Tinca tinca")
    assert (wnids[207], names[207]) == ("n02099601", "golden retriever")
    assert (wnids[980], names[980]) == ("n09472597", "volcano")
    assert class_name(207) == "golden retriever" and class_name(0) == "tench, Tinca tinca"
    wnids.append("n0")  # callers get copies, not the cached list
    assert len(imagenet_wnids()) == 1000


def test_the_lists_are_package_data_with_their_notice():
    here = resources.files("ganforge.data").joinpath("imagenet")
    notice = here.joinpath("NOTICE").read_text(encoding="utf-8")
    assert "timm" in notice and "1.0.31" in notice and "Apache License, Version 2.0" in notice
    assert "Apache License" in here.joinpath("LICENSE-timm").read_text(encoding="utf-8")
    lemma_lines = here.joinpath("imagenet_synset_to_lemma.txt").read_text(encoding="utf-8").splitlines()
    assert [line.split("\t")[0] for line in lemma_lines] == imagenet_wnids()


@pytest.mark.parametrize("text, k", [
    ("207", 207), (" 0 ", 0), ("999", 999),
    ("n02099601", 207), ("N01440764", 0), ("n09472597", 980),
    ("golden retriever", 207), ("Golden Retriever", 207), ("Golden_Retriever", 207), ("golden-retriever", 207),
    ("  golden   retriever ", 207),
    ("tench", 0), ("Tinca tinca", 0), ("tinca_tinca", 0), ("tench, Tinca tinca", 0),
    ("volcano", 980),
    ("tank suit", 639), ("maillot, tank suit", 639),        # a lemma or the whole line of one class
    ("jack-o'-lantern", 607), ("Jack o' lantern", 607),
])
def test_resolve_index_wnid_or_name(text, k):
    assert resolve_class(text, 1000) == k


def test_every_class_resolves_by_index_wnid_and_each_of_its_own_lemmas():
    wnids, names = imagenet_wnids(), imagenet_names()
    for k in range(1000):
        assert resolve_class(str(k), 1000) == k and resolve_class(wnids[k], 1000) == k
        for lemma in names[k].split(","):
            try:
                assert resolve_class(lemma, 1000) == k
            except UsageError as e:  # only a lemma shared with another class may refuse, and says so
                assert "ambiguous" in str(e) and f"{k} {wnids[k]}" in str(e)


@pytest.mark.parametrize("text, classes", [
    ("crane", [134, 517]),     # the bird and the machine
    ("maillot", [638, 639]),   # 638 is "maillot", 639 "maillot, tank suit"
    ("Cardigan", [264, 474]),  # the corgi and the sweater
])
def test_ambiguous_names_list_the_candidates(text, classes):
    with pytest.raises(UsageError, match="ambiguous") as e:
        resolve_class(text, 1000)
    msg = str(e.value)
    assert "\n" not in msg
    for k in classes:
        assert f"{k} {imagenet_wnids()[k]} ({imagenet_names()[k]})" in msg
    assert len(re.findall(r"\b\d+ n\d{8}", msg)) == len(classes)


def test_unknown_name_suggests_the_nearest_names():
    with pytest.raises(UsageError, match="no ImageNet class is named 'golden retreiver'") as e:
        resolve_class("golden retreiver", 1000)
    msg = str(e.value)
    assert "207 'golden retriever'" in msg and "\n" not in msg
    assert len(re.findall(r"\d+ '", msg)) <= 5
    with pytest.raises(UsageError, match="0 'tench'"):
        resolve_class("tensh", 1000)
    with pytest.raises(UsageError, match="0 'Tinca tinca'"):  # every lemma is a candidate, not only the first
        resolve_class("Tinca tincta", 1000)
    with pytest.raises(UsageError, match="134/517 'crane'"):  # a shared lemma shows all its classes
        resolve_class("cranee", 1000)
    with pytest.raises(UsageError, match="pass an index 0..999"):  # nothing close at all
        resolve_class("qwertyuiopasdfgh", 1000)
    with pytest.raises(UsageError, match="not one of the 1000 ILSVRC-2012"):
        resolve_class("n00000000", 1000)


@pytest.mark.parametrize("text, n", [("1000", 1000), ("-1", 1000), ("10", 10), ("3", 3)])
def test_indices_are_range_checked(text, n):
    with pytest.raises(UsageError, match=rf"class {text} is out of range .*pass an index 0\.\.{n - 1}$"):
        resolve_class(text, n)


def test_indices_within_range_work_for_any_network():
    assert resolve_class("9", 10) == 9 and resolve_class("0", 1) == 0


@pytest.mark.parametrize("text", ["golden retriever", "n02099601", "tench"])
@pytest.mark.parametrize("n", [10, 999, 1001])
def test_other_networks_refuse_names(text, n):
    with pytest.raises(UsageError, match=rf"class names are known only for 1000-class ImageNet networks; "
                                         rf"pass an index 0\.\.{n - 1}"):
        resolve_class(text, n)


def test_unconditional_networks_and_bad_display_index():
    with pytest.raises(UsageError, match="unconditional"):
        resolve_class("3", 0)
    for k in (-1, 1000):
        with pytest.raises(UsageError, match="out of range"):
            class_name(k)
