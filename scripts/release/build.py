"""Build the sdist and wheel of one package, several, or all (no argument) into dist/.

    python scripts/release/build.py                 # every package under packages/
    python scripts/release/build.py pool-mysql      # one
    hatch run build:all  /  hatch run build:one pool-mysql
"""

from __future__ import annotations

import sys

import lib


def main(argv: list[str]) -> int:
    try:
        for package in lib.select(lib.discover(), argv):
            wheel, sdist = lib.build(package)
            print(f"{package.name} {package.version}: {sdist.relative_to(lib.ROOT)}  {wheel.relative_to(lib.ROOT)}")
    except lib.ReleaseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
