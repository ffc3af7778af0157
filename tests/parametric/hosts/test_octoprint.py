"""The OctoPrint connector against a real OctoPrint (its own venv) driving its Virtual Printer, beyond the
contract every connector passes (``test_contract.py``, which prints one job to the end).

The restart test stops the host mid-queue and cancels its print as soon as it starts; the CLI
test prints one job, so the suite keeps to two full prints.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest

from parametric.hosts import JOB_TAG, HostRefused, HostUnreachable, connector_for
from parametric.hosts.octoprint import OctoPrintConnector, upload_name
from parametric.machines import Host, MachineStore, Printer

pytestmark = pytest.mark.integration


@pytest.fixture
def connector(octoprint):
    return OctoPrintConnector({"url": octoprint.url, "api_key": octoprint.api_key}, "virtual", timeout_s=5)


def wait_idle(connector):
    deadline = time.monotonic() + 240
    while not connector.status().ready:  # an earlier test's print may still be running: ours waits for it
        assert time.monotonic() < deadline, "the virtual printer never became idle"
        time.sleep(1)


def tagged(connector, job_id):
    listing = connector._request("GET", "/api/files/local?recursive=true")["files"]
    return [f for f in listing if (f.get("userdata") or {}).get(JOB_TAG) == job_id]


def test_an_unreachable_host_is_retryable_and_a_restart_does_not_double_the_job(octoprint, connector, tiny_gcode):
    job_id = "ORD-2/item-1"
    wait_idle(connector)
    connector.upload(tiny_gcode, job_id)  # sent, then the host goes away before it starts
    before = connector.find_upload(job_id)
    assert before.path == upload_name(job_id) and before.job_id == job_id
    octoprint.stop()
    try:
        with pytest.raises(HostUnreachable) as caught:
            connector.submit(tiny_gcode, job_id)
        assert caught.value.retryable and "no answer" in str(caught.value) and octoprint.url in str(caught.value)
    finally:
        octoprint.start()
    assert connector.find_upload(job_id) == before  # found by its tag after the restart
    resumed = connector.submit(tiny_gcode, job_id)
    assert resumed.state == "printing" and resumed.upload == before
    assert len(tagged(connector, job_id)) == 1  # not uploaded twice
    connector.cancel()
    stopped = connector.follow(job_id, poll_s=0.5, timeout_s=60)
    assert stopped.state == "failed" and stopped.upload.failures == 1
    assert connector.submit(tiny_gcode, job_id).state == "failed"  # a cancelled job is not restarted by itself
    assert connector.status().ready


def test_a_wrong_api_key_is_refused_not_retried(octoprint):
    wrong = OctoPrintConnector({"url": octoprint.url, "api_key": "not-the-key"}, "virtual", timeout_s=5)
    with pytest.raises(HostRefused) as caught:
        wrong.job("ORD-3/item-1")
    assert not caught.value.retryable and "API key was refused" in str(caught.value)
    with pytest.raises(HostRefused, match="no print host"):
        connector_for(Printer("bare", (200, 200, 200)))


def test_cli_send_reports_a_done_job_without_printing_it_again(octoprint, connector, tiny_gcode, tmp_path):
    store = tmp_path / "machines.json"
    MachineStore(store).add(Printer("virtual", (200, 200, 200), materials=["pla"],
                                    host=Host("octoprint", {"url": octoprint.url, "api_key": octoprint.api_key})))
    wait_idle(connector)
    send = [sys.executable, "-m", "parametric.cli", "send", str(tiny_gcode), "--machine", "virtual",
            "--job", "ORD-7/item-1", "--store", str(store)]
    printed = subprocess.run([*send, "--follow", "--poll", "1", "--timeout", "240"], capture_output=True, text=True)
    assert printed.returncode == 0, printed.stderr
    assert json.loads(printed.stdout)["state"] == "done"
    result = subprocess.run(send, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"job": "ORD-7/item-1", "state": "done", "file": "job-ORD-7_item-1.gcode",
                                         "progress": 100.0}
    assert connector.find_upload("ORD-7/item-1").successes == 1
    missing = subprocess.run([sys.executable, "-m", "parametric.cli", "send", str(tmp_path / "none.gcode"),
                              "--machine", "virtual", "--store", str(store)], capture_output=True, text=True)
    assert missing.returncode == 2 and "file:" in missing.stderr
