"""The hot folder connector beyond the contract: whole files under ``.partial`` names, a resend that finds its
files by name and hash without its record, the folder's file system checked, an unreadable folder never taken
for an empty one, withdrawal; and ``parametric send`` / ``parametric cam --deliver`` to a router through it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from parametric.hosts import HostUnreachable, MemoryRecords, connector_for
from parametric.hosts.hot_folder import HotFolderConnector, delivered_name
from parametric.machines import MachineStore, machine_from_dict

from .conftest import device_of


def cli(*args, **env):
    return subprocess.run([sys.executable, "-m", "parametric.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=300)


def test_each_program_lands_whole_under_its_tagged_name(hot, monkeypatch):
    connector = hot.connector()
    programs = hot.files()
    names = [delivered_name("job-7", p) for p in programs]
    assert names == ["job-7-door-T1.nc", "job-7-door-T2.nc"]
    seen = []
    real_replace = os.replace

    def replace(source, target):  # what the sender could see at the moment of the rename
        seen.append((os.path.basename(source), os.path.basename(target), sorted(os.listdir(hot.folder))))
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    upload = connector.upload(programs, "job-7")
    assert upload.files == tuple(names) and sorted(os.listdir(hot.folder)) == names  # no .partial left behind
    assert seen[0] == (".job-7-door-T1.nc.partial", "job-7-door-T1.nc", [".job-7-door-T1.nc.partial"])
    for program, name in zip(programs, names, strict=True):
        assert (hot.folder / name).read_bytes() == program.read_bytes()

    def broken(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken)  # a write that fails is retried, and leaves nothing half-written
    with pytest.raises(HostUnreachable) as caught:
        connector.upload(programs, "job-8")
    assert caught.value.retryable and "No space left on device (ENOSPC)" in str(caught.value)
    assert sorted(os.listdir(hot.folder)) == names


def test_a_resend_without_its_record_finds_the_files_by_name_and_hash(hot):
    programs = hot.files()
    hot.connector().submit(programs, "job-3")
    before = hot.fingerprint(None, "job-3")
    lost = hot.connector(MemoryRecords())  # the record was never saved (a crash right after the write)
    assert lost.submit(programs, "job-3").state == "uploaded"
    assert hot.fingerprint(None, "job-3") == before  # found there, not written again
    stale = hot.folder / "job-4-door-T1.nc"  # another file under the name: not ours, so it is replaced
    stale.write_text("(an old program)\n")
    hot.connector().submit(programs, "job-4")
    assert stale.read_bytes() == programs[0].read_bytes()


def test_a_folder_on_another_file_system_is_refused(hot):
    records = MemoryRecords()
    connector = hot.connector(records)
    programs = hot.files()
    connector.submit(programs, "job-5")
    record = records.get("job-5")
    assert record["device"] == device_of(hot.folder) and record["folder"] == str(hot.folder)
    assert set(record["programs"]) == {"job-5-door-T1.nc", "job-5-door-T2.nc"}
    for name in record["programs"]:  # the sender took them: the share's mount point is empty now
        shutil.move(hot.folder / name, hot.taken / name)
    records.put("job-5", {**record, "device": record["device"] + 1})  # as if the share is not mounted
    for call in (lambda: connector.job("job-5"), lambda: connector.submit(programs, "job-5"),
                 lambda: connector.withdraw("job-5")):
        with pytest.raises(HostUnreachable, match=r"is the share mounted\?") as caught:
            call()
        assert caught.value.retryable
    assert os.listdir(hot.folder) == []  # nothing written again into the empty mount point


def test_a_folder_that_cannot_be_read_is_an_error_never_empty(hot):
    connector = hot.connector()
    programs = hot.files()
    connector.submit(programs, "job-6")
    shutil.rmtree(hot.folder)  # gone (a share unmounted, a folder removed): not the sender taking the files
    with pytest.raises(HostUnreachable, match="No such file or directory"):
        connector.job("job-6")
    with pytest.raises(HostUnreachable):
        connector.withdraw("job-6")  # something was written there: it cannot be left to be cut
    assert not hot.folder.exists()  # a missing folder is never created
    hot.folder.mkdir()  # back, empty: now the programs are known to be gone
    assert connector.job("job-6").state == "taken"
    never = HotFolderConnector({"path": str(hot.root / "never-mounted")}, "r")
    assert never.withdraw("job-6").withdrawn == ()  # nothing was ever written there: nothing to take back
    with pytest.raises(HostUnreachable):
        never.submit(programs, "job-6")
    assert not (hot.root / "never-mounted").exists()


def test_withdrawal_takes_back_what_waits_and_names_what_was_taken(hot):
    connector = hot.connector()
    programs = hot.files()
    connector.submit(programs, "job-9")
    (hot.folder / ".job-9-door-T2.nc.partial").write_text("half")  # a write cut short
    shutil.move(hot.folder / "job-9-door-T1.nc", hot.taken / "job-9-door-T1.nc")
    withdrawal = connector.withdraw("job-9")
    assert withdrawal.withdrawn == ("job-9-door-T2.nc",) and withdrawal.taken == ("job-9-door-T1.nc",)
    assert os.listdir(hot.folder) == []


def test_a_job_stays_with_the_folder_it_was_delivered_to(hot):
    records = MemoryRecords()
    programs = hot.files()
    hot.connector(records).submit(programs, "job-10")
    moved = hot.root / "new-hot"
    moved.mkdir()
    later = HotFolderConnector({"path": str(moved)}, "shop-router", records=records)  # the router's folder changed
    assert later.job("job-10").state == "uploaded"
    assert later.withdraw("job-10").withdrawn == ("job-10-door-T1.nc", "job-10-door-T2.nc")
    assert os.listdir(hot.folder) == [] and os.listdir(moved) == []


def test_connector_for_a_router_is_its_hot_folder(make_router, tmp_path):
    record = make_router()
    router = machine_from_dict(record)
    with pytest.raises(Exception, match="no hot folder or other host"):
        connector_for(router)
    record["delivery"] = {"method": "hot_folder", "path": str(tmp_path)}
    connector = connector_for(machine_from_dict(record))
    assert isinstance(connector, HotFolderConnector) and connector.settings == {"path": str(tmp_path)}


def test_parametric_send_to_a_router_checks_duplicates_and_the_mount(make_router, hot, tmp_path):
    store, records = tmp_path / "machines.json", tmp_path / "records.json"
    record = make_router()
    record["delivery"] = {"method": "hot_folder", "path": str(hot.folder)}
    MachineStore(store).add(machine_from_dict(record))
    programs = [str(p) for p in hot.files()]
    send = ["send", *programs, "--machine", "shop-router", "--job", "ORD-6-1", "--store", str(store),
            "--records", str(records)]
    sent = cli(*send)
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout) == {"job": "ORD-6-1", "state": "uploaded", "file": "ORD-6-1-door-T1.nc",
                                       "progress": None}
    before = hot.fingerprint(None, "ORD-6-1")
    assert cli(*send).returncode == 0 and hot.fingerprint(None, "ORD-6-1") == before  # not written twice
    for name in ("ORD-6-1-door-T1.nc", "ORD-6-1-door-T2.nc"):
        shutil.move(hot.folder / name, hot.taken / name)
    taken = cli(*send)
    assert taken.returncode == 0 and json.loads(taken.stdout)["state"] == "taken"
    assert os.listdir(hot.folder) == []  # the sender has them: nothing is written again
    document = json.loads(records.read_text())
    document["shop-router"]["ORD-6-1"]["device"] += 1  # the share is not mounted
    records.write_text(json.dumps(document))
    unmounted = cli(*send)
    assert unmounted.returncode == 1 and "is the share mounted?" in unmounted.stderr
    assert os.listdir(hot.folder) == []
    MachineStore(store).add(machine_from_dict(make_router()), replace=True)  # fed by download now
    refused = cli(*send)
    assert refused.returncode == 2 and "has no host to send jobs to" in refused.stderr


def test_parametric_cam_deliver_goes_through_the_hot_folder_once(make_router, hot, tmp_path):
    store = tmp_path / "machines.json"
    record = make_router()
    record["delivery"] = {"method": "hot_folder", "path": str(hot.folder)}
    MachineStore(store).add(machine_from_dict(record))
    cam = ["cam", "cabinet_door", "--preset", "drawer-front-80", "--material", "birch_plywood", "--machine",
           "shop-router", "--store", str(store), "--out", str(tmp_path / "out"), "--deliver", "--job", "ORD-8-1"]
    records = {"PARAMETRIC_HOST_RECORDS": str(tmp_path / "records.json")}
    made = cli(*cam, **records)
    assert made.returncode == 0, made.stderr
    delivered = sorted(os.listdir(hot.folder))
    assert delivered and all(name.startswith("ORD-8-1-") and name.endswith(".nc") for name in delivered)
    assert "uploaded" in made.stderr
    before = hot.fingerprint(None, "ORD-8-1")
    again = cli(*cam, **records)
    assert again.returncode == 0, again.stderr
    assert hot.fingerprint(None, "ORD-8-1") == before
