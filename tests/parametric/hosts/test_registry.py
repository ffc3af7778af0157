"""Connectors are found through the ``parametric.hosts`` entry point group: a shop's own package adds one (here
a package made on the fly, with its dist-info on the path), and the machine records, their validation and the
connector lookup follow its declarations; a broken one is named, not hidden."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from parametric.errors import ValidationError
from parametric.hosts import connectors, implied_protocol, protocols
from parametric.machines import machine_from_dict, machine_to_dict, public_record

SHOP_CONNECTOR = '''
from parametric.hosts import Capability, ConnectionField, Connector, PrinterStatus, Upload


class MoonrakerConnector(Connector):
    protocol = "moonraker"
    label = "Moonraker"
    description = "a Klipper printer through Moonraker"
    machine_kinds = ("printer",)
    FIELDS = (ConnectionField("url", "Moonraker URL", "its base URL", kind="url"),
              ConnectionField("token", "Access token", "an API token", secret=True, required=False))
    CAPABILITIES = frozenset({Capability.TAGGED_UPLOADS, Capability.STARTS})

    def status(self):
        return PrinterStatus("Ready", True, False, False, False, None, None, None, None)

    sent = {}

    def find_upload(self, job_id):
        return self.sent.get(job_id)

    def upload(self, gcode, job_id):
        self.sent[job_id] = Upload(path=f"{job_id}.gcode", job_id=job_id)
        return self.sent[job_id]

    def start(self, upload):
        pass


class NotAConnector:
    protocol = "broken"
'''


def shop_package(root: Path) -> Path:
    """``shop_hosts`` with a dist-info registering two entry points (one of them broken), as pip installs it."""
    (root / "shop_hosts").mkdir(parents=True)
    (root / "shop_hosts" / "__init__.py").write_text(SHOP_CONNECTOR)
    info = root / "shop_hosts-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: shop-hosts\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text('[parametric.hosts]\nmoonraker = shop_hosts:MoonrakerConnector\n'
                                           'broken = shop_hosts:NotAConnector\n')
    return root


def test_the_built_in_connectors_are_registered():
    assert set(connectors()) >= {"octoprint", "hot_folder"}
    assert "octoprint" in protocols("printer") and "hot_folder" in protocols("router")
    assert "hot_folder" not in protocols("printer")
    assert implied_protocol("printer") == "octoprint" and implied_protocol("router") is None


def test_a_shop_adds_a_connector_from_its_own_package(tmp_path):
    code = textwrap.dedent('''
        import json
        from parametric.errors import ValidationError
        from parametric.hosts import HostRefused, connector_class, connector_for, connectors
        from parametric.machines import machine_from_dict, machine_to_dict, public_record

        printer = machine_from_dict({"kind": "printer", "name": "voron", "build_volume_mm": [300, 300, 280],
                                     "host": {"kind": "moonraker", "url": "http://voron.local/", "token": "T"}})
        connector = connector_for(printer)
        try:
            machine_from_dict({"kind": "printer", "name": "v", "build_volume_mm": [1, 1, 1],
                               "host": {"kind": "moonraker", "url": "voron.local", "colour": "red"}})
        except ValidationError as error:
            problems = {e.field: e.message for e in error.errors}
        try:
            connector_class("broken")
        except HostRefused as error:
            broken = str(error)
        print(json.dumps({"connectors": sorted(connectors()), "class": type(connector).__name__,
                          "settings": connector.settings, "record": machine_to_dict(printer)["host"],
                          "public": public_record(printer)["host"], "described": printer.describe(),
                          "problems": problems, "broken": broken,
                          "job": connector.submit("job.gcode", "ORD-1/item-1").state}))
    ''')
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(shop_package(tmp_path)),
                                                                os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found["connectors"] == ["hot_folder", "moonraker", "octoprint"] and found["class"] == "MoonrakerConnector"
    assert found["settings"] == {"url": "http://voron.local", "token": "T"}
    assert found["record"] == {"kind": "moonraker", "url": "http://voron.local", "token": "T"}
    assert found["public"] == {"kind": "moonraker", "url": "http://voron.local"}  # its secret is not shown
    assert found["described"].endswith("Moonraker at http://voron.local")
    assert found["problems"] == {"host.url": "must start with http:// or https://",
                                 "host.colour": "unknown field; known fields: url, token"}
    assert "installed but unusable" in found["broken"] and "not a Connector class" in found["broken"]
    assert found["job"] == "uploaded"  # the base class's submit, on its own methods


def test_stored_records_from_before_protocols_keep_loading_and_round_trip(make_router, tmp_path):
    printer = {"kind": "printer", "name": "mk3", "build_volume_mm": [250, 210, 210], "materials": ["pla"],
               "host": {"kind": "octoprint", "url": "http://octopi.local", "api_key": "K"}}
    loaded = machine_from_dict(json.loads(json.dumps(printer)))
    assert loaded.host.protocol == "octoprint" and loaded.host.settings == {"url": "http://octopi.local",
                                                                            "api_key": "K"}
    assert machine_to_dict(loaded)["host"] == printer["host"]
    assert public_record(loaded)["host"] == {"kind": "octoprint", "url": "http://octopi.local"}
    without_kind = {**printer, "host": {"url": "http://octopi.local", "api_key": "K"}}  # hand-written files
    assert machine_from_dict(without_kind).host == loaded.host
    router = {**make_router(), "delivery": {"method": "hot_folder", "path": str(tmp_path)}}
    assert machine_to_dict(machine_from_dict(router))["delivery"] == router["delivery"]
    download = machine_to_dict(machine_from_dict(make_router()))
    assert download["delivery"] == {"method": "download", "path": None}
    with pytest.raises(ValidationError) as caught:
        machine_from_dict({**make_router(), "delivery": {"method": "ftp"}})
    assert [(e.field, e.message) for e in caught.value.errors] == [
        ("delivery.method", "'ftp' is not allowed; allowed: hot_folder, download")]


def test_the_cli_adds_a_printer_host_by_protocol_and_lists_the_connectors(tmp_path, capsys):
    from parametric.cli import main
    from parametric.machines import MachineStore

    store = ["--store", str(tmp_path / "m.json")]
    printer = ["machines", *store, "add", "printer", "mk4", "--volume", "250x210x220", "--material", "pla"]
    assert main([*printer, "--host", "octoprint", "--host-setting", "url=http://octopi.local/",
                 "--host-setting", "api_key=K"]) == 0
    assert "OctoPrint at http://octopi.local" in capsys.readouterr().out
    assert MachineStore(tmp_path / "m.json").get("mk4").host.settings == {"url": "http://octopi.local", "api_key": "K"}
    assert main([*printer, "--replace", "--host", "octoprint", "--host-setting", "url=http://octopi.local",
                 "--host-setting", "colour=red"]) == 2
    errors = capsys.readouterr().err
    assert "host.colour: unknown field; known fields: url, api_key" in errors and "host.api_key: required" in errors
    assert main([*printer, "--replace", "--host", "moonraker", "--host-setting", "url=http://voron.local"]) == 2
    assert "host.kind: 'moonraker' is not allowed; allowed: octoprint" in capsys.readouterr().err
    assert main([*printer, "--replace", "--octoprint", "http://o", "--host-setting", "url=http://o"]) == 2
    assert "not both" in capsys.readouterr().err
    assert main([*printer, "--replace", "--host-setting", "url"]) == 2
    assert "host_setting[0]: 'url': write NAME=VALUE" in capsys.readouterr().err
    assert main(["machines", "hosts"]) == 0
    listed = capsys.readouterr().out
    assert "octoprint: OctoPrint (printer)" in listed and "api_key (text, required, secret)" in listed
    assert "hot_folder: Hot folder (router)" in listed and "sees the machine take the files" in listed
