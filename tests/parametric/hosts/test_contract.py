"""The contract every machine host connector passes, run against each connector's real host (``conftest.py``:
the hot folder on real directories, OctoPrint with its Virtual Printer).

- it declares itself: a protocol registered under the ``parametric.hosts`` entry point group, a label,
  well-formed connection fields, capabilities, and refuses what it does not declare it can do;
- an upload tagged with the job id is found again by its tag, also by a new connector on the same records;
- sending twice is one upload and one start (nothing printed or written twice), also once the machine has
  taken or started the job;
- states map as the protocol allows: absent → uploaded → printing or taken → done or failed;
- a host that is down raises a retryable error, a refusal (a wrong key) one that is not.

Only one job is printed to the end (the done state); the others are cancelled as soon as they start.
"""

from __future__ import annotations

import pytest

from parametric.hosts import (
    ENTRY_POINTS,
    STATES,
    Capability,
    HostError,
    HostRefused,
    MemoryRecords,
    PrinterBusy,
    connector_class,
    connectors,
)
from parametric.hosts.base import FIELD_KINDS

from .conftest import new_job_id


def test_it_declares_itself_and_is_found_through_its_entry_point(harness):
    from importlib.metadata import entry_points

    cls = harness.cls
    assert any(e.name == cls.protocol and e.load() is cls for e in entry_points(group=ENTRY_POINTS))
    assert connectors()[cls.protocol] is cls and connector_class(cls.protocol) is cls
    assert cls.label and cls.description and cls.machine_kinds and set(cls.machine_kinds) <= {"printer", "router"}
    assert cls.FIELDS and len({f.name for f in cls.FIELDS}) == len(cls.FIELDS)
    assert len({cls.form_name(f) for f in cls.FIELDS}) == len(cls.FIELDS)
    for setting in cls.FIELDS:
        assert setting.kind in FIELD_KINDS and setting.label and setting.help
    assert cls.CAPABILITIES and all(isinstance(c, Capability) for c in cls.CAPABILITIES)
    assert Capability.TAGGED_UPLOADS in cls.CAPABILITIES  # every connector must find a job again by its tag
    # a setting that is missing or unknown is named
    _, problems = cls.read_settings({"colour": "red"})
    named = {p.field for p in problems}
    assert "colour" in named and {f.name for f in cls.FIELDS if f.required} <= named
    # what it does not declare it can do, it refuses (not retryable), without touching the host
    connector = harness.connector()
    for capability, call in ((Capability.CANCELS, connector.cancel), (Capability.CONNECTS, connector.connect),
                             (Capability.WITHDRAWS, lambda: connector.withdraw("ORD-none/item-1"))):
        if capability not in cls.CAPABILITIES:
            with pytest.raises(HostRefused) as refused:
                call()
            assert not refused.value.retryable
    # its secrets never show in its description
    described = cls.describe_settings({f.name: f"value-of-{f.name}" for f in cls.FIELDS})
    assert all(f"value-of-{f.name}" not in described for f in cls.FIELDS if f.secret)


def test_an_upload_tagged_with_the_job_id_is_found_again_by_its_tag(harness):
    records = MemoryRecords()
    connector = harness.connector(records)
    job_id, other = new_job_id(), new_job_id()
    assert connector.job(job_id).state == "absent" and connector.find_upload(job_id) is None
    files = harness.files()
    upload = connector.upload(files if len(files) > 1 else files[0], job_id)
    assert upload.job_id == job_id and len(upload.files) == len(files)
    again = harness.connector(records).find_upload(job_id)  # a new connector (a restart) on the same records
    assert again is not None and again.job_id == job_id and again.files == upload.files
    assert connector.job(job_id).state == "uploaded"
    assert connector.job(other).state == "absent" and harness.sent_count(connector, other) == 0
    if connector.can(Capability.WITHDRAWS):  # taken back before it started: gone from the host
        assert connector.withdraw(job_id).withdrawn == upload.files
        assert connector.job(job_id).state == "absent" and harness.sent_count(connector, job_id) == 0
        assert connector.withdraw(job_id).withdrawn == ()


def test_sending_twice_is_one_upload_and_one_start(harness):
    connector = harness.connector()
    harness.idle(connector)
    job_id = new_job_id()
    files = harness.files()
    first = connector.submit(files, job_id)
    assert first.state in STATES and first.upload is not None and first.upload.job_id == job_id
    fingerprint = harness.fingerprint(connector, job_id)
    if connector.can(Capability.STARTS):
        assert first.state == "printing"
    else:
        assert first.state == "uploaded"  # waiting for the machine to take it
        assert connector.submit(files, job_id).upload == first.upload
        assert harness.fingerprint(connector, job_id) == fingerprint  # nothing written again
        harness.machine_takes(connector, job_id)
        if connector.can(Capability.SEES_TAKEN):
            assert connector.job(job_id).state == "taken"
    again = connector.submit(files, job_id)
    assert again.state in ("printing", "paused", "taken") and again.upload.files == first.upload.files
    assert harness.sent_count(connector, job_id) == 1  # once, wherever the machine has it now
    if connector.can(Capability.STARTS):
        assert harness.fingerprint(connector, job_id) == fingerprint
    if connector.can(Capability.CANCELS):  # stopped: failed, and not started again by a resend
        connector.cancel()
        stopped = connector.follow(job_id, poll_s=0.5, timeout_s=60)
        assert stopped.state == "failed"
        assert connector.submit(files, job_id).state == "failed" and harness.sent_count(connector, job_id) == 1
    if connector.can(Capability.WITHDRAWS) and not connector.can(Capability.STARTS):
        withdrawal = connector.withdraw(job_id)  # what the machine took stays taken; the rest comes back
        assert withdrawal.taken and set(withdrawal.taken) | set(withdrawal.withdrawn) == set(first.upload.files)


def test_a_job_followed_to_its_end_is_done_and_never_sent_again(harness):
    if not harness.cls.can(Capability.REPORTS_END):
        pytest.skip(f"{harness.cls.label} reports no end of a job (staff mark it done)")
    connector = harness.connector()
    harness.idle(connector)
    job_id, waiting = new_job_id(), new_job_id()
    files = harness.files()
    started = connector.submit(files, job_id)
    assert started.state == "printing"
    if connector.can(Capability.STARTS):  # a busy machine: the next job waits in our queue, nothing is sent
        with pytest.raises(PrinterBusy) as busy:
            connector.submit(files, waiting)
        assert busy.value.retryable and "printing" in str(busy.value)
        assert connector.job(waiting).state == "absent" and harness.sent_count(connector, waiting) == 0
    readings = []
    final = connector.follow(job_id, on_progress=readings.append, poll_s=1, timeout_s=240)
    assert final.state == "done", readings[-3:]
    assert (final.upload.successes, final.upload.failures) == (1, 0) and final.progress == 100.0
    if connector.can(Capability.PROGRESS):
        progress = [r.progress for r in readings if r.state == "printing" and r.progress is not None]
        assert any(0 < p < 100 for p in progress) and progress == sorted(progress), progress
    again = connector.submit(files, job_id)
    assert again.state == "done" and again.upload.successes == 1
    assert harness.sent_count(connector, job_id) == 1 and connector.status().ready


def test_a_host_that_is_down_is_retried(harness):
    for connector in harness.unreachable():
        for call, arguments in ((connector.status, ()), (connector.job, (new_job_id(),)),
                                (connector.submit, (harness.files(), new_job_id()))):
            with pytest.raises(HostError) as caught:
                call(*arguments)
            assert caught.value.retryable and "will retry" in str(caught.value), caught.value


def test_a_refusal_is_not_retried(harness):
    with pytest.raises(HostRefused) as caught:
        harness.refusal()()
    assert not caught.value.retryable and "will retry" not in str(caught.value)
