"""The `ganforge` command lists exactly the subcommand modules that exist, and a module that fails to
import is a bug that raises, never a command silently dropped (the same for checkpoint readers)."""

import importlib
import pkgutil
import re

import pytest

import ganforge.cli as cli
from ganforge import formats


def subcommand_modules_present():
    """Modules of ganforge.cli that are subcommands (they expose NAME, HELP, add_arguments, run)."""
    out = set()
    for info in pkgutil.iter_modules(cli.__path__):
        mod = importlib.import_module(f"ganforge.cli.{info.name}")
        if all(hasattr(mod, a) for a in ("NAME", "HELP", "add_arguments", "run")):
            out.add(info.name)
    return out


def test_subcommand_list_is_exactly_the_modules_present():
    assert len(cli.SUBCOMMANDS) == len(set(cli.SUBCOMMANDS))
    assert set(cli.SUBCOMMANDS) == subcommand_modules_present()


def test_help_lists_exactly_those_commands(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    listed = re.findall(r"^    (\S+)", capsys.readouterr().out, flags=re.M)  # "    generate   write one PNG ..."
    assert listed == [importlib.import_module(f"ganforge.cli.{n}").NAME for n in cli.SUBCOMMANDS]


def _break_import(monkeypatch, broken: str):
    real = importlib.import_module

    def import_module(name, *args, **kwargs):
        if name == broken:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(importlib, "import_module", import_module)


def test_a_missing_subcommand_module_raises(monkeypatch):
    _break_import(monkeypatch, "ganforge.cli.mix")
    with pytest.raises(ModuleNotFoundError, match="ganforge.cli.mix"):
        cli.build_parser()
    with pytest.raises(ModuleNotFoundError):  # a bug: the traceback, not a usage error or a shorter --help
        cli.main(["--help"])


def test_a_missing_checkpoint_reader_raises(monkeypatch, tmp_path):
    # Belongs with tests/formats; here because this change removed both silent skips together.
    (tmp_path / "junk.bin").write_bytes(b"no known format")
    _break_import(monkeypatch, "ganforge.formats.tf_pkl")
    with pytest.raises(ModuleNotFoundError, match="ganforge.formats.tf_pkl"):
        formats.load(tmp_path / "junk.bin")
