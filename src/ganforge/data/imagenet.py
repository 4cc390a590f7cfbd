"""ImageNet (ILSVRC-2012) class names for 1000-class networks such as BigGAN: `--class "golden retriever"`.

Class k of a 1000-class ImageNet network is the k-th WordNet synset id (wnid) in sorted order, the order
of the ILSVRC-2012 devkit and of every published ImageNet classifier and BigGAN:
    0 = n01440764 "tench, Tinca tinca",  207 = n02099601 "golden retriever",  980 = n09472597 "volcano"
Each class has one line of comma-separated lemmas (WordNet's synonyms). The lists ship with ganforge
in data/imagenet/ (from timm 1.0.31, Apache-2.0; see data/imagenet/NOTICE) and are read on first use.

    from ganforge.data.imagenet import resolve_class, class_name
    k = resolve_class("Golden_Retriever", n_classes=1000)   # 207
    class_name(k)                                           # 'golden retriever'
"""

from __future__ import annotations

import difflib
import functools
import re
from importlib import resources

from ganforge.errors import UsageError

IMAGENET_CLASSES = 1000
_DATA = ("imagenet", "imagenet_synsets.txt"), ("imagenet", "imagenet_synset_to_lemma.txt")
_INTEGER = re.compile(r"[+-]?\d+")
_WNID = re.compile(r"n\d{8}")


def _read(*parts: str) -> list[str]:
    path = resources.files("ganforge.data").joinpath(*parts)
    return path.read_text(encoding="utf-8").splitlines()


@functools.cache
def _wnids() -> tuple[str, ...]:
    wnids = tuple(line.strip() for line in _read(*_DATA[0]) if line.strip())
    if len(wnids) != IMAGENET_CLASSES:
        raise RuntimeError(f"the bundled ImageNet synset list has {len(wnids)} lines, not {IMAGENET_CLASSES}")
    return wnids


@functools.cache
def _names() -> tuple[str, ...]:
    lemmas = dict(line.split("\t", 1) for line in _read(*_DATA[1]) if line.strip())
    return tuple(lemmas[wnid].strip() for wnid in _wnids())


def imagenet_wnids() -> list[str]:
    """The 1000 ILSVRC-2012 WordNet ids in class-index order (sorted): ['n01440764', ..., 'n15075141']."""
    return list(_wnids())


def imagenet_names() -> list[str]:
    """The lemma line of each of the 1000 classes, in class-index order: ['tench, Tinca tinca', ...]."""
    return list(_names())


def _normalize(name: str) -> str:
    """Case, underscores, hyphens and runs of spaces do not matter: 'Golden_Retriever' ~ 'golden retriever'."""
    return " ".join(re.sub(r"[_\-\s]+", " ", name).casefold().split())


@functools.cache
def _name_index() -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """normalized name -> the classes that have it (several for ImageNet's duplicates: 'crane'), where a
    name is one lemma or a whole lemma line; and normalized lemma -> the lemma as written (for hints)."""
    index: dict[str, list[int]] = {}
    written: dict[str, str] = {}
    for k, line in enumerate(_names()):
        lemmas = [part.strip() for part in line.split(",") if part.strip()]
        for lemma in lemmas:
            written.setdefault(_normalize(lemma), lemma)
        for key in {_normalize(lemma) for lemma in lemmas} | {_normalize(line)}:
            if k not in index.setdefault(key, []):
                index[key].append(k)
    return {key: tuple(ks) for key, ks in index.items()}, written


def class_name(idx: int) -> str:
    """The display name of ImageNet class idx: its lemma line ('golden retriever', 'tench, Tinca tinca')."""
    if not 0 <= int(idx) < IMAGENET_CLASSES:
        raise UsageError(f"ImageNet class index {idx} is out of range; pass an index 0..{IMAGENET_CLASSES - 1}")
    return _names()[int(idx)]


def _describe(k: int) -> str:
    return f"{k} {_wnids()[k]} ({_names()[k]})"


def resolve_named_class(text: str, names: list[str]) -> int:
    """Class index from a name among a network's own class names (a dataset's, stored in its config.json:
    'Dress' -> 3 for the bundled Fashion-MNIST demo), case, underscores, hyphens and spaces ignored.
    UsageError naming the nearest names (or all of them, when few) when nothing matches."""
    key = _normalize(text)
    hits = [k for k, name in enumerate(names) if _normalize(str(name)) == key]
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise UsageError(f"the class name {text!r} is shared by classes {', '.join(map(str, hits))}; pass the index")
    normalized = {_normalize(str(name)): k for k, name in enumerate(names)}
    near = difflib.get_close_matches(key, list(normalized), n=5, cutoff=0.5)
    listed = near if near and len(names) > 12 else list(normalized)
    hint = ", ".join(f"{normalized[n]} {names[normalized[n]]!r}" for n in listed[:12])
    raise UsageError(f"this network has no class named {text!r}; its classes: {hint}"
                     + (" ..." if len(listed) > 12 else "") + "; pass a name or an index")


def resolve_class(text: str, n_classes: int, names: list[str] | None = None) -> int:
    """Class index from what a user typed: an index ('207'), a WordNet id ('n02099601') or a name.

    With `names` (the network's own class names, from its dataset), a name is looked up among them
    (`resolve_named_class`); otherwise names and wnids are those of ImageNet, for 1000-class networks.

    A name matches any one of a class's comma-separated lemmas, or its whole lemma line, with case,
    underscores, hyphens and spaces ignored: 'golden retriever', 'Golden_Retriever' -> 207;
    'tench', 'Tinca tinca' -> 0. Wnids and names are known only for 1000-class (ImageNet) networks.

    Raises UsageError with a one-line message: an index outside 0..n_classes-1, a name or wnid for a
    network that is not 1000-class, a name that several classes share ('crane': the bird and the machine;
    the message lists them), or an unknown name (the message suggests up to 5 near lemmas, with indices).
    """
    text = str(text).strip()
    n_classes = int(n_classes)
    if n_classes <= 0:
        raise UsageError(f"the network is unconditional (no classes); drop the class {text!r}")
    if _INTEGER.fullmatch(text):
        k = int(text)
        if not 0 <= k < n_classes:
            raise UsageError(f"class {k} is out of range for this {n_classes}-class network; "
                             f"pass an index 0..{n_classes - 1}")
        return k
    if names and len(names) == n_classes:
        return resolve_named_class(text, list(names))
    if n_classes != IMAGENET_CLASSES:
        raise UsageError(f"class names are known only for {IMAGENET_CLASSES}-class ImageNet networks; "
                         f"pass an index 0..{n_classes - 1} (this network has {n_classes} classes, "
                         f"so {text!r} names none of them)")
    if _WNID.fullmatch(text.lower()):
        try:
            return _wnids().index(text.lower())
        except ValueError:
            raise UsageError(f"{text} is not one of the 1000 ILSVRC-2012 WordNet ids; pass an index "
                             "0..999, an ImageNet wnid such as n02099601 or a name such as 'golden retriever'"
                             ) from None
    index, written = _name_index()
    key = _normalize(text)
    matches = index.get(key, ())
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise UsageError(f"the class name {text!r} is ambiguous in ImageNet: it names "
                         + "; ".join(_describe(k) for k in matches) + "; pass the index or the wnid")
    near = difflib.get_close_matches(key, list(written), n=5)
    if near:
        hint = ", ".join(f"{'/'.join(str(k) for k in index[lemma])} {written[lemma]!r}" for lemma in near)
        raise UsageError(f"no ImageNet class is named {text!r}; nearest names: {hint}")
    raise UsageError(f"no ImageNet class is named {text!r}; pass an index 0..999, an ImageNet wnid such as "
                     "n02099601 or a name such as 'golden retriever'")
