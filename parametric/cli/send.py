"""``parametric send``: G-code to a machine's host through its connector, at most once per job: a printer's print
host (uploaded and started), or a router's hot folder (written once, the folder's file system checked)."""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import FieldError, ValidationError
from ..machines import open_store
from .common import STORE_HELP


def job_id_of(files: list[Path]) -> str:
    """The job id of files sent without ``--job``: from their contents, so sending them again is the same job."""
    digest = hashlib.sha256()
    for path in files:
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return f"file-{digest.hexdigest()[:16]}"


def report(job: Any) -> None:
    progress = f" {job.progress:.0f}%" if job.progress is not None else ""
    left = f", {job.print_time_left_s / 60:.0f} min left" if job.print_time_left_s else ""
    print(f"{job.job_id}: {job.state}{progress}{left}", file=sys.stderr)


def cmd_send(args: argparse.Namespace) -> int:
    from ..hosts import FileRecords, HostError, connector_for, default_records_path

    problems: list[FieldError] = []
    files = [Path(name) for name in args.file]
    for path in files:
        if not path.is_file():
            problems.append(FieldError("file", f"{path} is not a file"))
    machine = None
    try:
        machine = open_store(args.store).get(args.machine)
    except ValidationError as error:
        problems.extend(error.errors)
    if machine is not None and machine.connection() is None:
        option = ("--octoprint URL --api-key KEY (or --host PROTOCOL --host-setting NAME=VALUE)"
                  if machine.kind == "printer" else "--hot-folder PATH")
        problems.append(FieldError("machine", f"{machine.name} has no host to send jobs to; add it again with "
                                              f"{option} --replace"))
    if problems or machine is None:
        raise ValidationError(problems)
    job_id = args.job or job_id_of(files)
    records = FileRecords(args.records or default_records_path(), machine.name)
    try:
        connector = connector_for(machine, records=records)
        job = connector.submit(files if len(files) > 1 else files[0], job_id, reprint=args.reprint)
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
    send = commands.add_parser("send", help="send G-code to a printer's host and start it, or into a router's hot "
                                            "folder (at most once per job)")
    send.add_argument("file", nargs="+", help="G-code file (a router's job may have several, run in order)")
    send.add_argument("--machine", required=True, help="printer or router name (see `parametric machines list`)")
    send.add_argument("--job", help="job id the upload is tagged with (default: from the files' hash)")
    send.add_argument("--follow", action="store_true", help="wait and report progress until the print ends")
    send.add_argument("--poll", type=float, default=5.0, help="seconds between progress readings (default 5)")
    send.add_argument("--timeout", type=float, help="stop following after this many seconds")
    send.add_argument("--reprint", action="store_true", help="start a job again that failed or was cancelled "
                                                             "(a hot folder: write it again)")
    send.add_argument("--records", metavar="FILE.json",
                      help="where what a hot folder cannot tell is kept: the files written and the folder's file "
                           "system (default: $PARAMETRIC_HOST_RECORDS, else output/host-records.json)")
    send.add_argument("--store", metavar="FILE.json|URL", help=STORE_HELP)
    send.set_defaults(handler=cmd_send)
