"""Print the release tag of a package: <distribution>-v<version>, e.g. pool-mysql-v0.1.0.

    python scripts/release/tag.py pool-mysql            # prints the tag
    python scripts/release/tag.py --check pool-mysql    # also: CHANGELOG has the version, tag is new
"""

from __future__ import annotations

import subprocess
import sys

import lib


def main(argv: list[str]) -> int:
    check = "--check" in argv
    names = [a for a in argv if a != "--check"]
    if len(names) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        (package,) = lib.select(lib.discover(), names)
        tag = package.tag
        if check:
            changelog = (package.path / "CHANGELOG.md").read_text()
            if not any(line.startswith(f"## {package.version}") for line in changelog.splitlines()):
                raise lib.ReleaseError(f"{package.name}: CHANGELOG.md has no '## {package.version}' section")
            if "unreleased" in next(line for line in changelog.splitlines()
                                    if line.startswith(f"## {package.version}")).lower():
                raise lib.ReleaseError(f"{package.name}: CHANGELOG.md still marks {package.version} unreleased")
            exists = subprocess.run(["git", "-C", str(lib.ROOT), "rev-parse", "-q", "--verify", f"refs/tags/{tag}"],
                                    capture_output=True).returncode == 0
            if exists:
                raise lib.ReleaseError(f"tag {tag} already exists: bump the version first (hatch version patch)")
    except lib.ReleaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(tag)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
