"""Hot-folder delivery of G-code to a router's sender.

Kept here, unchanged, until the hot-folder connector of ``parametric.hosts`` replaces it:
delivering files is a host's concern, not CAM's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..errors import FieldError, ValidationError
from ..machines import Router


def deliver(programs: Sequence[str | Path], router: Router, prefix: str = "") -> list[Path]:
    """Put G-code where the router's sender picks it up: its hot folder.

    Each file lands whole: it is written under a ``.partial`` name the sender's pattern does
    not match, then renamed. ``prefix`` (a job id) keeps files of different jobs apart.
    """
    import os
    import shutil

    if router.delivery.method != "hot_folder" or not router.delivery.path:
        raise ValidationError([FieldError("machine", f"{router.name} gets its G-code by download, not from a hot "
                                                     "folder; add it again with --hot-folder PATH --replace")])
    folder = Path(router.delivery.path)
    folder.mkdir(parents=True, exist_ok=True)
    delivered = []
    for program in programs:
        source = Path(program)
        target = folder / (f"{prefix}-{source.name}" if prefix else source.name)
        partial = folder / f".{target.name}.partial"
        shutil.copyfile(source, partial)
        with open(partial, "rb") as written:
            os.fsync(written.fileno())
        os.replace(partial, target)
        delivered.append(target)
    return delivered
