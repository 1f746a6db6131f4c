"""Release checks for every package under packages/ (or the ones named).

    python scripts/release/check.py [pool-mysql ...]     (or: hatch run release:check ...)

For each package: metadata and layout (single version source, CHANGELOG section, LICENSE,
pool-core range ">=X.Y,<X+1", extras from release-check.toml); build sdist + wheel into
dist/; `twine check --strict`; the wheel holds exactly the import package (py.typed, no
tests, no caches, every tracked source file) and its dist-info; the sdist holds only the
sources, README, CHANGELOG, LICENSE; the long description is the README, text/markdown,
and renders. Then each smoke entry: a clean virtualenv with ONLY the pool-core wheel, this
wheel (+ extras/driver) and Django, and the ENGINE opens a pooled connection to a real
server (smoke.py). Each vendor is also smoke-tested against the OLDEST pool-core its range
admits. A package without an entry in release-check.toml fails. Exit status 1 on any failure.
"""

from __future__ import annotations

import email.parser
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import lib
from lib import CORE, ROOT, Package, ReleaseError
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

SMOKE = Path(__file__).with_name("smoke.py")
PYTHON = os.environ.get("POOL_RELEASE_PYTHON", "{}.{}".format(*sys.version_info))  # smoke venvs
SDIST_TOP = {"PKG-INFO", "pyproject.toml", "README.md", "CHANGELOG.md", "LICENSE", ".gitignore"}


class Report:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, float]] = []  # (package, check, result, seconds)
        self.failures: list[str] = []

    def run(self, package: str, check: str, func, *args):
        start = time.monotonic()
        try:
            detail = func(*args)
        except ReleaseError as exc:
            seconds = time.monotonic() - start
            self.rows.append((package, check, "FAIL", seconds))
            self.failures.append(f"{package}: {check}: {exc}")
            print(f"  FAIL {check} ({seconds:.1f} s)\n       {exc}", flush=True)
            return None
        seconds = time.monotonic() - start
        self.rows.append((package, check, "ok", seconds))
        shown = detail if isinstance(detail, str) else (
            f"{CORE} {detail[1]} built from its tag" if isinstance(detail, tuple) else "")
        print(f"  ok   {check}{' - ' + shown if shown else ''} ({seconds:.1f} s)", flush=True)
        return detail if detail is not None else True


# -- static checks -------------------------------------------------------------------------

def check_metadata(package: Package, entry: dict, core: Package) -> str:
    project = package.pyproject["project"]
    if "version" in project or "version" not in project.get("dynamic", []):
        raise ReleaseError("[project] must declare dynamic = [\"version\"] (read by hatch from __about__.py)")
    version = Version(package.version)
    for name in ("README.md", "CHANGELOG.md", "LICENSE"):
        if not (package.path / name).is_file():
            hint = (" (cp LICENSE packages/<dist>/ and set license-files = [\"LICENSE\"] as in "
                    "packages/pool-mysql/pyproject.toml)") if name == "LICENSE" else ""
            raise ReleaseError(f"packages/{package.name}/{name} is missing{hint}")
    if project.get("license-files") != ["LICENSE"]:
        raise ReleaseError("[project] needs license-files = [\"LICENSE\"] so the wheel ships the license")
    if project.get("readme") != "README.md":
        raise ReleaseError("[project] readme must be \"README.md\"")
    if (package.path / "LICENSE").read_text() != (ROOT / "LICENSE").read_text():
        raise ReleaseError("LICENSE differs from the repository's LICENSE")
    headings = [line for line in (package.path / "CHANGELOG.md").read_text().splitlines()
                if line.startswith("## ")]
    if not any(h == f"## {version}" or h.startswith(f"## {version} ") for h in headings):
        raise ReleaseError(f"CHANGELOG.md has no '## {version}' section (headings: {headings[:3]})")
    missing = sorted(set(entry.get("extras", [])) - set(project.get("optional-dependencies", {})))
    if missing:
        raise ReleaseError(f"extras {missing} listed in release-check.toml are not in pyproject.toml")
    role = entry.get("role")
    if role == "core":
        if package.name != CORE:
            raise ReleaseError(f"role 'core' is only for {CORE}")
        return f"{version}"
    if role != "vendor":
        raise ReleaseError(f"release-check.toml: role must be 'core' or 'vendor', got {role!r}")
    floor = core_floor(package)
    if Version(core.version) not in SpecifierSet(str(core_spec(package))):
        raise ReleaseError(f"the in-tree {CORE} {core.version} does not satisfy this package's "
                           f"'{core_spec(package)}'")
    if not entry.get("smoke"):
        raise ReleaseError("release-check.toml has no [[smoke]] entry for this vendor package")
    return f"{version}, {CORE}{core_spec(package)} (floor {floor[0]}.{floor[1]})"


def core_spec(package: Package) -> SpecifierSet:
    deps = package.requirement(CORE)
    if len(deps) != 1:
        raise ReleaseError(f"needs exactly one '{CORE}' dependency, got {deps}")
    return Requirement(deps[0]).specifier


def core_floor(package: Package) -> tuple[int, int]:
    """(X, Y) of the required '>=X.Y,<X+1'; anything else is an error."""
    spec = core_spec(package)
    lower = [s for s in spec if s.operator == ">="]
    upper = [s for s in spec if s.operator == "<"]
    if len(spec) != 2 or len(lower) != 1 or len(upper) != 1:
        raise ReleaseError(f"{CORE} range must be '>=X.Y,<X+1', got '{spec}'")
    low, high = Version(lower[0].version), Version(upper[0].version)
    if len(low.release) != 2 or low.pre or low.dev:
        raise ReleaseError(f"{CORE} floor must be X.Y, got '{lower[0]}'")
    if high.release[0] != low.major + 1 or any(high.release[1:]) or high.pre or high.dev:
        raise ReleaseError(f"{CORE} ceiling must be '<{low.major + 1}' for floor {low}, got '{upper[0]}'")
    return low.major, low.minor


# -- built artefacts -----------------------------------------------------------------------

def check_twine(wheel: Path, sdist: Path) -> str:
    result = subprocess.run([sys.executable, "-m", "twine", "check", "--strict", str(wheel), str(sdist)],
                            capture_output=True, text=True)
    if result.returncode:
        raise ReleaseError(f"twine check --strict failed:\n{result.stdout}{result.stderr}")
    return "PASSED"


def tracked_sources(package: Package) -> set[str] | None:
    """Paths (relative to src/) of git-tracked files of the import package; None without git."""
    src = package.path / "src"
    result = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--", str(src / package.import_name)],
                            capture_output=True, text=True)
    if result.returncode or not result.stdout:
        return None
    return {str(Path(p).resolve().relative_to(src.resolve())) for p in
            (ROOT / f for f in result.stdout.split("\0") if f)}


def bad_path(name: str) -> bool:
    parts = name.split("/")
    return ("__pycache__" in parts or name.endswith((".pyc", ".pyo", ".so~", ".orig", ".rej"))
            or any(p in ("tests", "test") or p.startswith(("test_", "conftest")) for p in parts))


def check_wheel(package: Package, wheel: Path) -> str:
    imp, distinfo = package.import_name, f"{package.normalized}-{package.version}.dist-info"
    with zipfile.ZipFile(wheel) as zf:
        names = [n for n in zf.namelist() if not n.endswith("/")]
    stray = [n for n in names if not (n.startswith(f"{imp}/") or n.startswith(f"{distinfo}/"))]
    if stray:
        raise ReleaseError(f"files outside {imp}/ and {distinfo}/: {stray}")
    bad = [n for n in names if bad_path(n)]
    if bad:
        raise ReleaseError(f"tests or build leftovers in the wheel: {bad}")
    if f"{imp}/py.typed" not in names:
        raise ReleaseError(f"{imp}/py.typed is missing")
    for required in ("METADATA", "WHEEL", "RECORD", "licenses/LICENSE"):
        if f"{distinfo}/{required}" not in names:
            raise ReleaseError(f"{distinfo}/{required} is missing")
    shipped = {n for n in names if n.startswith(f"{imp}/")}
    tracked = tracked_sources(package)
    if tracked is not None and shipped != tracked:
        raise ReleaseError(f"wheel and git disagree: only in wheel {sorted(shipped - tracked)}, "
                           f"only in git {sorted(tracked - shipped)}")
    return f"{len(shipped)} files in {imp}/, py.typed, LICENSE"


def check_sdist(package: Package, sdist: Path) -> str:
    top = f"{package.normalized}-{package.version}/"
    with tarfile.open(sdist) as tf:
        names = [m.name for m in tf.getmembers() if m.isfile()]
    outside = [n for n in names if not n.startswith(top)]
    rel = [n[len(top):] for n in names if n.startswith(top)]
    src = f"src/{package.import_name}/"
    stray = [n for n in rel if n not in SDIST_TOP and not n.startswith(src)]
    if outside or stray:
        raise ReleaseError(f"unexpected files in the sdist: {outside + stray}")
    missing = sorted(SDIST_TOP - {".gitignore"} - set(rel))
    if missing:
        raise ReleaseError(f"missing from the sdist: {missing}")
    bad = [n for n in rel if bad_path(n)]
    if bad:
        raise ReleaseError(f"tests or build leftovers in the sdist: {bad}")
    return f"{len(rel)} files"


def check_long_description(package: Package, wheel: Path) -> str:
    with zipfile.ZipFile(wheel) as zf:
        raw = zf.read(f"{package.normalized}-{package.version}.dist-info/METADATA").decode()
    meta = email.parser.Parser().parsestr(raw)
    if meta.get("Description-Content-Type", "").split(";")[0].strip() != "text/markdown":
        raise ReleaseError(f"Description-Content-Type is {meta.get('Description-Content-Type')!r}, "
                           "expected text/markdown")
    body = meta.get_payload()
    readme = (package.path / "README.md").read_text()
    if body.strip() != readme.strip():
        raise ReleaseError("the long description is not packages/<name>/README.md")
    if meta["Name"] != package.name or meta["Version"] != package.version:
        raise ReleaseError(f"METADATA says {meta['Name']} {meta['Version']}")
    try:
        from readme_renderer.markdown import render
    except ImportError as exc:
        raise ReleaseError("readme_renderer[md] is not installed (run via `hatch run release:check`)") from exc
    if "pip install" not in body or package.name not in body:
        raise ReleaseError(f"the README (the package's index page) must show how to install it "
                           f"(`pip install {package.name}...`)")
    html = render(body)
    if not html or "<h1" not in html:
        raise ReleaseError("the README does not render to HTML with a title")
    return f"text/markdown, {len(body)} chars, renders"


# -- smoke tests in clean virtualenvs ------------------------------------------------------

_servers: dict[str, object] = {}


def server(kind: str):
    """The suite's servers: env URL, else local default port, else a throwaway (stopped at exit)."""
    if kind not in _servers:
        sys.path.insert(0, str(ROOT))
        from tests import _servers as servers

        _servers[kind] = servers.postgres() if kind == "postgresql" else servers.mariadb()
        sys.path.remove(str(ROOT))
        print(f"       server: {_servers[kind]!r}", flush=True)
    return _servers[kind]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # nothing listens once the socket is closed


def fmt(value, values: dict):
    if isinstance(value, str):
        return value.format(**values)
    if isinstance(value, dict):
        return {k: fmt(v, values) for k, v in value.items()}
    if isinstance(value, list):
        return [fmt(v, values) for v in value]
    return value


def smoke_config(package: Package, entry: dict, core_version: str) -> tuple[dict, dict]:
    kind = entry.get("server")
    if kind in ("postgresql", "mysql"):
        srv = server(kind)
        values = {"host": srv.host, "port": srv.port, "user": srv.user, "password": srv.password}
        name = None if kind == "postgresql" else ""  # no database needed for SELECT 1
    elif kind == "none":
        if not entry.get("expect_error"):
            raise ReleaseError("server = 'none' needs expect_error")
        values = {"host": "127.0.0.1", "port": closed_port(), "user": "smoke", "password": "smoke-secret-pw"}
        name = ""
    else:
        raise ReleaseError(f"release-check.toml: server must be postgresql, mysql or none, got {kind!r}")
    database = {"ENGINE": entry["engine"], "NAME": name, "HOST": values["host"], "PORT": values["port"],
                "USER": values["user"], "PASSWORD": values["password"]}
    database.update(fmt(entry.get("settings", {}), values))
    cfg = {"dist": package.name, "version": package.version, "core_version": core_version,
           "server": kind, "database": database, "expect_error": entry.get("expect_error", [])}
    return cfg, fmt(entry.get("env", {}), values)


def missing_prerequisites(entry: dict) -> list[str]:
    missing = []
    for item in entry.get("requires", []):
        if os.path.isabs(item) and not os.path.exists(item):
            missing.append(item)
        elif not os.path.isabs(item) and shutil.which(item) is None:
            missing.append(f"{item} (command)")
    return missing


def smoke(package: Package, entry: dict, wheel: Path, core_wheel: Path, core_version: str) -> str:
    missing = missing_prerequisites(entry)
    if missing:
        raise ReleaseError(f"system prerequisites missing: {missing} (scripts/test.sh installs them as root)")
    uv = shutil.which("uv")
    if not uv:
        raise ReleaseError("uv is not on PATH (run via `hatch run release:check`)")
    cfg, env_extra = smoke_config(package, entry, core_version)
    extras = entry.get("extras", [])
    target = f"{package.name}[{','.join(extras)}]" if extras else package.name
    with tempfile.TemporaryDirectory(prefix=f"release-{package.name}-") as tmp:
        venv = Path(tmp) / "venv"
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("PYTHON", "VIRTUAL_ENV", "UV_PROJECT", "CONDA"))}
        run = lambda cmd, **kw: subprocess.run(cmd, capture_output=True, text=True, env=env, **kw)  # noqa: E731
        result = run([uv, "venv", "--quiet", "--python", PYTHON, str(venv)])
        if result.returncode:
            raise ReleaseError(f"uv venv failed: {result.stderr}")
        python = venv / "bin" / "python"
        requirements = [str(core_wheel), f"{target} @ {wheel.as_uri()}", *entry.get("pip", [])]
        result = run([uv, "pip", "install", "--quiet", "--python", str(python), *requirements])
        if result.returncode:
            raise ReleaseError(f"install of {requirements} failed:\n{result.stderr[-3000:]}")
        env.update(env_extra)
        result = run([str(python), "-I", str(SMOKE), json.dumps(cfg)], cwd=tmp, timeout=300)
        out = result.stdout + result.stderr
        line = next((ln for ln in result.stdout.splitlines() if ln.startswith("SMOKE-OK ")), None)
        if result.returncode or line is None:
            raise ReleaseError(f"{entry['engine']}{'[' + ','.join(extras) + ']' if extras else ''}: "
                               f"smoke test failed:\n{out[-3000:]}")
    data = json.loads(line[len("SMOKE-OK "):])
    where = (f"backend {data['backend_pid']} reused, checkouts={data['checkouts']}" if "backend_pid" in data
             else f"{data['error']}: {data['message'][:120]}")
    return (f"{entry['engine']} {'[' + ','.join(extras) + '] ' if extras else ''}"
            f"pool-core {core_version}, Django {data['django']}: {where}")


def oldest_core(package: Package, core: Package, workdir: Path) -> tuple[Path, str] | None:
    """The wheel of the oldest pool-core the vendor admits; None when that is the in-tree one."""
    major, minor = core_floor(package)
    tag = f"{CORE}-v{major}.{minor}.0"
    has_tag = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "-q", "--verify", f"refs/tags/{tag}"],
                             capture_output=True).returncode == 0
    if has_tag:
        out = workdir / tag
        if not out.exists():
            src = workdir / f"{tag}-src"
            src.mkdir(parents=True)
            archive = subprocess.run(["git", "-C", str(ROOT), "archive", tag, f"packages/{CORE}"],
                                     capture_output=True, check=True).stdout
            subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
            lib.build(Package(CORE, src / "packages" / CORE, core.pyproject), out, src / "packages" / CORE)
        return next(out.glob("*.whl")), f"{major}.{minor}.0"
    in_tree = Version(core.version)
    if (in_tree.major, in_tree.minor) == (major, minor):
        return None
    raise ReleaseError(f"'{CORE}>={major}.{minor}' admits {CORE} {major}.{minor}.0, but there is no tag {tag} "
                       f"to build it from and the in-tree {CORE} is {core.version}. Raise the floor to "
                       f"'>={in_tree.major}.{in_tree.minor}' if this package needs the newer core, "
                       f"or fetch the tags (git fetch --tags).")


def oldest_core_detail(package: Package, core: Package, workdir: Path) -> tuple[Path, str] | str:
    found = oldest_core(package, core, workdir)
    return found if found else f"in-tree {CORE} {core.version} is the floor's X.Y: smoke-tested above"


# -- main ----------------------------------------------------------------------------------

def main(argv: list[str]) -> int:
    started = time.monotonic()
    report = Report()
    try:
        everything = lib.discover()
        chosen = lib.select(everything, [a for a in argv if not a.startswith("-")])
        table = lib.load_table()
    except ReleaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    core = next(p for p in everything if p.name == CORE)
    unknown = [p.name for p in everything if p.name not in table]
    for name in unknown:
        report.failures.append(f"{name}: no [packages.{name}] table in {lib.TABLE.relative_to(ROOT)} "
                               "(every package must say how it is smoke-tested)")
        print(f"FAIL {name}: not in {lib.TABLE.relative_to(ROOT)}", flush=True)
    print(f"packages: {', '.join(p.name for p in everything)}", flush=True)

    print(f"== {CORE} (built first: every smoke venv installs its wheel)", flush=True)
    core_built = report.run(CORE, "build", lib.build, core)
    with tempfile.TemporaryDirectory(prefix="release-oldest-core-") as workdir:
        for package in chosen:
            if package.name in unknown:
                continue
            entry = table[package.name]
            if package is not core:
                print(f"== {package.name}", flush=True)
            report.run(package.name, "metadata", check_metadata, package, entry, core)
            built = core_built if package is core else report.run(package.name, "build", lib.build, package)
            if not built:
                continue
            wheel, sdist = built
            report.run(package.name, "twine check --strict", check_twine, wheel, sdist)
            report.run(package.name, "wheel contents", check_wheel, package, wheel)
            report.run(package.name, "sdist contents", check_sdist, package, sdist)
            report.run(package.name, "long description", check_long_description, package, wheel)
            if entry.get("role") != "vendor" or not core_built:
                continue
            smokes = entry.get("smoke", [])
            for i, item in enumerate(smokes):
                report.run(package.name, f"smoke {i + 1}/{len(smokes)}", smoke, package, item, wheel,
                           core_built[0], core.version)
            floor = report.run(package.name, "oldest pool-core", oldest_core_detail,
                               package, core, Path(workdir))
            if isinstance(floor, tuple):
                oldest = [s for s in smokes if s.get("oldest_core")] or smokes[:1]
                for item in oldest:
                    report.run(package.name, f"smoke on pool-core {floor[1]}", smoke, package, item, wheel,
                               floor[0], floor[1])

    total = time.monotonic() - started
    print(f"\n{len(report.rows)} checks in {total:.0f} s")
    if report.failures:
        print(f"\nRELEASE CHECK FAILED ({len(report.failures)}):")
        for failure in report.failures:
            print(f"- {failure.splitlines()[0]}")
        return 1
    print("release check: all packages OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
