"""The agent's wheelhouse: its closure is complete, Corral's wheel is reproducible, holds
every file Corral reads at run time and requires only the agent's distributions."""

from __future__ import annotations

import ast
import fnmatch
import importlib.metadata
import os
import shutil
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import corral
from corral.runtime import SUPERSEDED_GRACE_SECONDS, wheels

ROOT = Path(corral.__file__).parent


def _module_file(name: str) -> Path | None:
    path = ROOT.parent.joinpath(*name.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _third_party_imports(start: tuple[str, ...]) -> dict[str, set[str]]:
    """Top-level names of every non-Corral, non-stdlib import reachable from ``start``
    through Corral's modules, function-level imports included -> the modules importing them."""
    todo, seen, found = list(start), set(), {}  # type: ignore[var-annotated]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        path = _module_file(name)
        if path is None:
            continue
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        package = parts if path.name == "__init__.py" else parts[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level:
                base = ".".join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
                names = [base] + [f"{base}.{a.name}" for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for imported in names:
                top = imported.split(".")[0]
                if top == "corral":
                    todo.append(imported)
                elif top not in sys.stdlib_module_names:
                    found.setdefault(top, set()).add(name)
    return found


def test_the_agent_closure_is_exactly_what_its_modules_import() -> None:
    to_dist = importlib.metadata.packages_distributions()
    imported = {wheels._canonical(d) for top in _third_party_imports(wheels.AGENT_MODULES) for d in to_dist[top]}
    assert imported - set(wheels.RUNTIME_DISTRIBUTIONS) == set(wheels.AGENT_DISTRIBUTIONS)


def test_agent_requirements_pin_the_installed_versions() -> None:
    assert wheels.agent_requirements() == [f"{d}=={importlib.metadata.version(d)}" for d in wheels.AGENT_DISTRIBUTIONS]


def _copy_package(tmp: Path) -> Path:
    root = tmp / "src" / "corral"
    shutil.copytree(ROOT, root, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return root


def test_corral_wheel_is_reproducible_and_rebuilt_only_when_the_source_changes(tmp_path: Path) -> None:
    root = _copy_package(tmp_path)
    first = wheels.corral_wheel(tmp_path / "a", root)
    again = wheels.corral_wheel(tmp_path / "a", root)
    elsewhere = wheels.corral_wheel(tmp_path / "b", root)
    assert again == first and first.stat().st_mtime_ns == again.stat().st_mtime_ns
    assert elsewhere.read_bytes() == first.read_bytes()
    (root / "runtime" / "maven" / "pom.xml").write_text("<project/>")
    changed = wheels.corral_wheel(tmp_path / "a", root)
    assert changed != first and first.exists()  # superseded: kept a day for a plane still serving it
    mark = first.with_name(f".{first.name}.superseded")
    then = mark.stat().st_mtime - SUPERSEDED_GRACE_SECONDS
    os.utime(mark, (then, then))
    assert wheels.corral_wheel(tmp_path / "a", root) == changed and not first.exists() and not mark.exists()
    assert changed.name.startswith(f"corral-{corral.__version__}+g")


def test_corral_wheel_has_every_package_file_and_only_the_agent_requirements(tmp_path: Path) -> None:
    wheel = wheels.corral_wheel(tmp_path, _copy_package(tmp_path))
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        version = wheel.name.split("-")[1]
        metadata = zf.read(f"corral-{version}.dist-info/METADATA").decode()
        record = zf.read(f"corral-{version}.dist-info/RECORD").decode()
    for needed in ("corral/runtime/maven/pom.xml", "corral/runtime/java/io/corral/spark/AmFilterBarrier.java",
                   "corral/runtime/java/io/corral/hadoop/NodeAddressSocketFactory.java",
                   "corral/store/migrations/env.py", "corral/store/migrations/script.py.mako",
                   "corral/runtime/cds_training.py", "corral/jobs/transfer_spark.py", "corral/agent/__main__.py"):
        assert needed in names, needed
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    requires = sorted(line.split(": ", 1)[1] for line in metadata.splitlines() if line.startswith("Requires-Dist"))
    assert requires == sorted(wheels.agent_requirements())
    assert all(f"{n}," in record for n in names)


def test_package_data_lists_every_file_a_setuptools_wheel_needs() -> None:
    """A wheel-installed control plane builds the agent's wheel from its own package, so
    pyproject's package-data must name every non-module file (Java sources, pom, migrations)."""
    config = tomllib.loads((ROOT.parent / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["corral"]
    missing = []
    for rel in wheels.package_files(ROOT):
        inside = rel.relative_to("corral")
        is_module = rel.suffix == ".py" and (ROOT.parent / rel).parent.joinpath("__init__.py").exists()
        if not is_module and not any(fnmatch.fnmatch(str(inside), p) for p in patterns):
            missing.append(str(inside))
    assert missing == []


def test_a_wheelhouse_never_fetched_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(wheels.WheelhouseMissing, match="run `make setup`"):
        wheels.dependency_wheels(tmp_path)


def test_a_superseded_dependency_closure_stays_a_day_and_the_served_one_is_never_marked(tmp_path: Path) -> None:
    current = wheels.deps_dir(tmp_path)
    old = tmp_path / "deps-0000000000000000"
    for directory in (current, old):
        directory.mkdir(parents=True)
        (directory / "x-1.0-py3-none-any.whl").write_bytes(b"wheel")
    assert wheels.fetch_dependencies(tmp_path) == current  # there already: nothing fetched
    mark = tmp_path / f".{old.name}.superseded"
    assert [p.name for p in tmp_path.glob(".deps-*.superseded")] == [mark.name] and old.is_dir()
    then = mark.stat().st_mtime - SUPERSEDED_GRACE_SECONDS
    os.utime(mark, (then, then))
    assert wheels.fetch_dependencies(tmp_path) == current and not old.exists() and not mark.exists()
    # Another build's set-up marks this one; serving it (an agent bundle) clears the mark.
    (tmp_path / f".{current.name}.superseded").touch()
    assert [p.name for p in wheels.dependency_wheels(tmp_path)] == ["x-1.0-py3-none-any.whl"]
    assert not list(tmp_path.glob(".deps-*.superseded"))
