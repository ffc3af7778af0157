"""``parametric send``: a G-code file to a printer's host (at most once per job) or a router's hot folder."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import FieldError, ValidationError
from ..machines import Printer, Router, open_store
from ..printers import HostError, HostJob, connector_for
from .common import STORE_HELP


def cmd_send(args: argparse.Namespace) -> int:
    problems: list[FieldError] = []
    gcode = Path(args.file)
    if not gcode.is_file():
        problems.append(FieldError("file", f"{gcode} is not a file"))
    machine = None
    try:
        machine = open_store(args.store).get(args.machine)
    except ValidationError as error:
        problems.extend(error.errors)
    if isinstance(machine, Printer) and machine.host is None:
        problems.append(FieldError("machine", f"{machine.name} has no print host; add it again with "
                                              "--octoprint URL --api-key KEY --replace"))
    if problems or machine is None:
        raise ValidationError(problems)
    if isinstance(machine, Router):
        from ..cnc.delivery import deliver

        delivered = deliver([gcode], machine, args.job or "")
        print(json.dumps({"job": args.job, "state": "delivered", "file": str(delivered[0])}))
        return 0
    printer = machine
    job_id = args.job or f"file-{hashlib.sha256(gcode.read_bytes()).hexdigest()[:16]}"
    connector = connector_for(printer)

    def report(job: HostJob) -> None:
        progress = f" {job.progress:.0f}%" if job.progress is not None else ""
        left = f", {job.print_time_left_s / 60:.0f} min left" if job.print_time_left_s else ""
        print(f"{job.job_id}: {job.state}{progress}{left}", file=sys.stderr)

    try:
        job = connector.submit(gcode, job_id, reprint=args.reprint)
        report(job)
        if args.follow:
            job = connector.follow(job_id, on_progress=report, poll_s=args.poll, timeout_s=args.timeout)
    except HostError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(json.dumps({"job": job.job_id, "state": job.state, "file": job.upload.path if job.upload else None,
                      "progress": job.progress}))
    return 0 if job.state != "failed" else 1


def add_command(commands: Any) -> None:
    send = commands.add_parser("send", help="send G-code to a printer's host and start it (at most once per job), "
                                            "or into a router's hot folder")
    send.add_argument("file", help="G-code file")
    send.add_argument("--machine", required=True, help="printer or router name (see `parametric machines list`)")
    send.add_argument("--job", help="job id the upload is tagged with (default: from the file's hash)")
    send.add_argument("--follow", action="store_true", help="wait and report progress until the print ends")
    send.add_argument("--poll", type=float, default=5.0, help="seconds between progress readings (default 5)")
    send.add_argument("--timeout", type=float, help="stop following after this many seconds")
    send.add_argument("--reprint", action="store_true", help="start a job again that failed or was cancelled")
    send.add_argument("--store", metavar="FILE.json|URL", help=STORE_HELP)
    send.set_defaults(handler=cmd_send)
