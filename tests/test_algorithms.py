"""The registry: built-ins, entry points, external packages; `bl-reservoir algorithms`."""

from __future__ import annotations

import json
import sys

import _algorithms
import pytest

from bl_reservoir import envs
from bl_reservoir.algorithms import (
    content_version,
    find_package,
    get_algorithm,
    list_algorithms,
)
from bl_reservoir.errors import UnknownAlgorithm, UsageError


@pytest.fixture
def external(tmp_path, monkeypatch):
    """An algorithms folder with one external package `my_search` (two scripts, one private helper)."""
    root = tmp_path / "algos"
    package = root / "my_search"
    package.mkdir(parents=True)
    (package / "requirements.txt").write_text("numpy\n")
    (package / "find.py").write_text("print('find')\n")
    (package / "fast.py").write_text("print('fast')\n")
    (package / "_helpers.py").write_text("")
    (root / "not_a_package").mkdir()
    monkeypatch.setenv("BL_RESERVOIR_ALGORITHMS", str(root))
    monkeypatch.setenv("BL_RESERVOIR_CACHE", str(tmp_path / "cache"))
    return package


def test_builtins_run_as_modules_in_the_project_environment(tmp_path):
    alg = get_algorithm("energy_detection/preprocess_fine")
    assert (alg.kind, alg.package, alg.script_name, alg.env_state()) == (
        "builtin", "energy_detection", "preprocess_fine", "project")
    assert alg.command("in.h5", "out", ["--threshold", "10"]) == [
        sys.executable, "-m", "bl_reservoir.energy_detection.preprocess_fine", "in.h5", "out", "--threshold", "10"]
    assert get_algorithm("dedoppler/search").target == "bl_reservoir.dedoppler.search"


def test_external_package_scripts_are_algorithms(external):
    names = {a.name: a for a in list_algorithms()}
    assert {"my_search/find", "my_search/fast"} <= set(names)
    assert "my_search/_helpers" not in names
    find = names["my_search/find"]
    assert (find.kind, find.env_state(), find.package_dir) == ("external", "not built", external.resolve())
    assert find.version == content_version(external) and find.version.startswith("0+")
    assert find.python(build=False) == str(envs.env_python(envs.env_path(external)))


def test_external_version_follows_the_code(external):
    before = get_algorithm("my_search/find").version
    (external / "find.py").write_text("print('find, improved')\n")
    assert get_algorithm("my_search/find").version != before
    (external / "VERSION").write_text("2.0.1\n")
    assert get_algorithm("my_search/find").version == "2.0.1"


def test_entry_point_algorithms(tmp_path, monkeypatch):
    _algorithms.install(tmp_path / "site", monkeypatch)
    alg = get_algorithm("testalgs/ok")
    assert (alg.kind, alg.version, alg.env_state()) == ("entry-point", "1.2.3", "project")
    assert alg.command("a.h5", "o") == [sys.executable, "-m", "blr_testalgs.ok", "a.h5", "o"]


def test_unknown_algorithm_lists_the_known_ones(external):
    with pytest.raises(UnknownAlgorithm, match=r"unknown algorithm 'my_search/nope' \(known: .*my_search/find"):
        get_algorithm("my_search/nope")


def test_find_package_by_name_or_folder(external):
    assert find_package("my_search") == external.resolve()
    assert find_package(str(external)) == external.resolve()
    with pytest.raises(UsageError, match=r"no external algorithm package 'other'.*known: my_search"):
        find_package("other")


def test_requirements_change_means_a_new_environment(external):
    first = envs.env_path(external)
    (external / "requirements.txt").write_text("numpy\npandas\n")
    assert envs.env_path(external) != first and envs.env_path(external).name.startswith("my_search-")


def test_cli_lists_algorithms(external, capsys):
    from bl_reservoir.cli import main

    assert main(["algorithms"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["NAME", "KIND", "VERSION", "ENVIRONMENT"]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert rows["energy_detection/preprocess_fine"][1:] == ["builtin", "0.1.0", "project"]
    assert rows["my_search/find"][1] == "external" and rows["my_search/find"][3:] == ["not", "built"]
    assert main(["algorithms", "--json"]) == 0
    listed = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert listed["my_search/fast"]["environment"] == "not built"
