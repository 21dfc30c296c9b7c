"""Command line: ``python -m ptcourse doctor`` and ``python -m ptcourse prefetch``.

Usage::

    python -m ptcourse doctor               # is this machine ready? exit status 1 if not
    python -m ptcourse prefetch [--list]    # download every online asset before a class
"""

from __future__ import annotations

import sys

COMMANDS = {"doctor": "check Python, torch, the device, dependencies, caches, network, profile, run times",
            "prefetch": "download and verify every dataset and pretrained model the chapters use"}


def main(argv: list[str] | None = None) -> int:
    """Main (chapter 00).

    Usage: ``python -m ptcourse doctor``
    """
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] not in COMMANDS:
        print("usage: python -m ptcourse {doctor,prefetch} [options]\n"
              + "\n".join(f"  {name:<9} {what}" for name, what in COMMANDS.items()), file=sys.stderr)
        return 2
    if argv[0] == "doctor":
        from ptcourse.doctor import main as command
    else:
        from ptcourse.prefetch import main as command
    return command(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
