"""Shared by build.py, check.py and tag.py: find the packages, read their metadata, build them.

Packages are discovered from packages/*/pyproject.toml, never listed by hand.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import tomllib

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ROOT / "packages"
DIST = ROOT / "dist"
TABLE = Path(__file__).with_name("release-check.toml")
CORE = "pool-core"


class ReleaseError(Exception):
    """A check failed; the message says what and where."""


@dataclass
class Package:
    name: str  # distribution name, e.g. pool-mysql
    path: Path  # packages/pool-mysql
    pyproject: dict = field(repr=False)

    @property
    def normalized(self) -> str:
        """The file-name form of the name (pool_mysql), as in wheel and sdist names."""
        return re.sub(r"[-_.]+", "_", self.name).lower()

    @property
    def import_name(self) -> str:
        packages = self.pyproject.get("tool", {}).get("hatch", {}).get("build", {}).get("targets", {}) \
            .get("wheel", {}).get("packages", [])
        if len(packages) != 1:
            raise ReleaseError(f"{self.name}: [tool.hatch.build.targets.wheel] packages must list exactly "
                               f"one import package, got {packages!r}")
        return Path(packages[0]).name

    @property
    def version_file(self) -> Path:
        path = self.pyproject.get("tool", {}).get("hatch", {}).get("version", {}).get("path")
        if not path:
            raise ReleaseError(f"{self.name}: no [tool.hatch.version] path (the single version source)")
        return self.path / path

    @property
    def version(self) -> str:
        text = self.version_file.read_text()
        found = re.findall(r'^__version__\s*=\s*["\']([^"\']+)["\']', text, re.M)
        if len(found) != 1:
            raise ReleaseError(f"{self.name}: {self.version_file} must set __version__ once")
        return found[0]

    @property
    def tag(self) -> str:
        return f"{self.name}-v{self.version}"

    def requirement(self, dist: str) -> list[str]:
        """The dependency strings of *dist* in [project] dependencies."""
        pattern = re.compile(rf"^{re.escape(dist)}(?![A-Za-z0-9_.-])", re.I)
        return [d for d in self.pyproject["project"].get("dependencies", []) if pattern.match(d)]

    def artefacts(self, where: Path = DIST) -> tuple[Path, Path]:
        """(wheel, sdist) of the current version in *where*."""
        wheel = where / f"{self.normalized}-{self.version}-py3-none-any.whl"
        sdist = where / f"{self.normalized}-{self.version}.tar.gz"
        return wheel, sdist


def discover() -> list[Package]:
    found = []
    for pyproject in sorted(PACKAGES.glob("*/pyproject.toml")):
        data = tomllib.loads(pyproject.read_text())
        name = data.get("project", {}).get("name")
        if not name:
            raise ReleaseError(f"{pyproject}: no [project] name")
        if name != pyproject.parent.name:
            raise ReleaseError(f"{pyproject}: name {name!r} differs from its directory {pyproject.parent.name!r}")
        found.append(Package(name, pyproject.parent, data))
    if not any(p.name == CORE for p in found):
        raise ReleaseError(f"no packages/{CORE}/pyproject.toml")
    return found


def select(packages: list[Package], names: list[str]) -> list[Package]:
    if not names:
        return packages
    by_name = {p.name: p for p in packages}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ReleaseError(f"no such package(s) under packages/: {', '.join(unknown)} "
                           f"(have: {', '.join(by_name)})")
    return [by_name[n] for n in names]


def load_table() -> dict:
    return tomllib.loads(TABLE.read_text()).get("packages", {})


def _build_command(source: Path, outdir: Path) -> list[str]:
    uv = shutil.which("uv")
    if uv:  # sdist first, then the wheel built FROM the sdist: a file missing there shows up
        return [uv, "build", "--quiet", "--sdist", "--wheel", "--out-dir", str(outdir), str(source)]
    return [sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", str(outdir), str(source)]


def build(package: Package, outdir: Path = DIST, source: Path | None = None) -> tuple[Path, Path]:
    """Build the sdist and wheel of *package* into *outdir*; return (wheel, sdist)."""
    outdir.mkdir(parents=True, exist_ok=True)
    for old in glob.glob(str(outdir / f"{package.normalized}-*")):
        os.remove(old)  # no stale version of this package left beside the new one
    result = subprocess.run(_build_command(source or package.path, outdir), capture_output=True, text=True)
    if result.returncode:
        raise ReleaseError(f"{package.name}: build failed:\n{result.stdout}{result.stderr}")
    wheels = glob.glob(str(outdir / f"{package.normalized}-*-py3-none-any.whl"))
    sdists = glob.glob(str(outdir / f"{package.normalized}-*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        raise ReleaseError(f"{package.name}: expected one pure-Python wheel and one sdist in {outdir}, "
                           f"got {sorted(os.listdir(outdir))}")
    return Path(wheels[0]), Path(sdists[0])
