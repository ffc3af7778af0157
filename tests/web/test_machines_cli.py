"""``parametric machines`` (and the commands that take ``--machine``) on the web app's database: what the
CLI adds, the staff dashboard lists, and the other way round; on SQLite files and on a real PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.parametric import conftest as tools
from web import create_app
from web.machines import all_machines
from web.staff.auth import add_user

from .conftest import STAFF, services, test_config
from .live import postgres_database

prusa_slicer = tools.prusa_slicer  # the real slicer's fixture (skipped loudly when missing, fails under CI=true)

STORAGE = ("DATABASE_URL", "PARAMETRIC_DATABASE_URL", "PARAMETRIC_MACHINES", "PARAMETRIC_INSTANCE")


def cli(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``parametric ARGS`` as a real process, with only the storage settings given here (none from the developer)."""
    environment = {key: value for key, value in os.environ.items() if key not in STORAGE}
    return subprocess.run([sys.executable, "-m", "parametric.cli", *args], env={**environment, **env},
                          capture_output=True, text=True, timeout=300)


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout


def invalid(result: subprocess.CompletedProcess[str]) -> str:
    """The stderr of a run refused as bad input: exit 2, a message, no traceback."""
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "error: invalid input" in result.stderr and "Traceback" not in result.stderr
    return result.stderr


def dashboard(tmp_path: Path, cache_folder: Path, database_url: str | None) -> Flask:
    """The web app on ``database_url`` (None: the default in the instance folder), with the staff account."""
    app = create_app(test_config(tmp_path, cache_folder, DATABASE_URL=database_url))
    services(app).database.upgrade()
    add_user(services(app).database, *STAFF)
    return app


def staff_headers() -> dict[str, str]:
    import base64

    return {"Authorization": "Basic " + base64.b64encode(":".join(STAFF).encode()).decode()}


def listed(app: Flask) -> dict[str, dict[str, Any]]:
    response = app.test_client().get("/api/v1/staff/machines", headers=staff_headers())
    assert response.status_code == 200
    return {machine["name"]: machine for machine in response.get_json()["machines"]}


PRINTER_ARGS = ("add", "printer", "mk3", "--volume", "250x210x210", "--material", "pla", "--material", "tpu",
                "--octoprint", "http://127.0.0.1:1", "--api-key", "secret-key")
ROUTER_ARGS = ("add", "router", "shop-router", "--bed", "2500x1250", "--tool", "1:6:endmill:2:22", "--tool",
               "2:5:drill", "--stock", "birch_plywood:18:2500x1250")


def test_what_the_cli_adds_the_dashboard_lists_and_back(tmp_path, cache_folder):
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    env = {"DATABASE_URL": url, "PARAMETRIC_INSTANCE": str(tmp_path / "instance"),
           "PARAMETRIC_OUTPUT": str(tmp_path / "output")}
    assert "mk3: 250 x 210 x 210 mm" in ok(cli("machines", *PRINTER_ARGS, **env))
    assert "shop-router: bed 2500 x 1250 mm" in ok(cli("machines", *ROUTER_ARGS, **env))
    assert not (tmp_path / "output" / "machines.json").exists()  # nothing went to the file store

    app = dashboard(tmp_path, cache_folder, url)
    shown = listed(app)
    assert set(shown) == {"mk3", "shop-router"}
    assert shown["mk3"]["kind"] == "printer" and shown["mk3"]["materials"] == ["pla", "tpu"]
    assert shown["mk3"]["host"] == {"kind": "octoprint", "url": "http://127.0.0.1:1"}  # the key stays hidden
    router = shown["shop-router"]
    assert router["kind"] == "router" and [t["number"] for t in router["tools"]] == [1, 2]
    assert router["tools"][0]["feeds"]["birch_plywood"]["stepdown_mm"] > 0  # feeds from the cutting table
    assert router["stock"] == [{"material": "birch_plywood", "thickness_mm": 18, "size_mm": [2500, 1250]}]

    client = app.test_client()
    added = client.post("/api/v1/staff/machines", headers=staff_headers(),
                        json={"kind": "printer", "name": "mini", "build_volume_mm": [180, 180, 180],
                              "materials": ["petg"]})
    assert added.status_code == 201, added.get_json()
    records = {m["name"]: m for m in json.loads(ok(cli("machines", "list", "--json", **env)))}
    assert set(records) == {"mini", "mk3", "shop-router"}
    assert records["mini"]["build_volume_mm"] == [180, 180, 180] and records["mini"]["materials"] == ["petg"]
    assert records["mk3"]["host"]["api_key"] == "secret-key"  # staff's CLI sees the full record
    assert "printer mini: 180 x 180 x 180 mm" in ok(cli("machines", "list", **env))

    assert ok(cli("machines", "remove", "mk3", **env)).strip() == "removed mk3"
    assert set(listed(app)) == {"mini", "shop-router"}
    assert client.delete("/api/v1/staff/machines/mini", headers=staff_headers()).status_code == 204
    assert "no machine called 'mini'; known: shop-router" in invalid(cli("machines", "show", "mini", **env))
    services(app).database.dispose()


def test_bad_input_exits_2_naming_the_field(tmp_path):
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'shop.db'}", "PARAMETRIC_INSTANCE": str(tmp_path / "instance")}
    ok(cli("machines", *PRINTER_ARGS, **env))
    assert "name: a machine called 'mk3' exists already; choose another name, or replace it" in invalid(
        cli("machines", *PRINTER_ARGS, **env))
    ok(cli("machines", *PRINTER_ARGS, "--replace", **env))
    error = invalid(cli("machines", "add", "printer", "p2", "--volume", "250x-1", "--material", "oak", **env))
    assert "build_volume_mm: 3 positive sizes in mm" in error and "materials[0]: 'oak' is not a printing" in error
    assert "machine: no machine called 'nope'; known: mk3" in invalid(cli("machines", "remove", "nope", **env))
    assert "store: mysql databases are not supported; allowed: a machines file ending in .json" in invalid(
        cli("machines", "--store", "mysql://shop@db.example/shop", "list", **env))
    refused = invalid(cli("machines", "--store", "postgresql+psycopg://shop:s3cret@127.0.0.1:1/shop", "list", **env))
    assert "store: cannot open the database postgresql+psycopg://shop:***@127.0.0.1:1/shop" in refused
    assert "s3cret" not in refused
    assert "DATABASE_URL: 'nonsense' is not a database URL; allowed: sqlite:///PATH or postgresql" in invalid(
        cli("machines", "list", **{**env, "DATABASE_URL": "nonsense"}))
    # the commands that look a machine up say the same
    assert "machine: no machine called 'nope'; known: mk3" in invalid(
        cli("slice", "heel_lift", "--machine", "nope", "--out", str(tmp_path / "out"), **env))


def test_store_takes_a_sqlite_url_and_a_json_file(tmp_path):
    env = {"PARAMETRIC_INSTANCE": str(tmp_path / "instance"), "PARAMETRIC_OUTPUT": str(tmp_path / "output")}
    other = f"sqlite:///{tmp_path / 'elsewhere' / 'other.db'}"
    ok(cli("machines", "--store", other, *PRINTER_ARGS, **env))
    assert [m["name"] for m in json.loads(ok(cli("machines", "--store", other, "list", "--json", **env)))] == ["mk3"]
    assert f"no machines in sqlite:///{tmp_path / 'instance' / 'parametric.db'}" in ok(cli("machines", "list", **env))
    from web.db import Database

    database = Database(other)
    assert [m.name for m in all_machines(database)] == ["mk3"]
    database.dispose()
    # a JSON file, by --store or $PARAMETRIC_MACHINES, even with the web app installed
    file = tmp_path / "machines.json"
    ok(cli("machines", "--store", str(file), *ROUTER_ARGS, **env))
    assert [m["name"] for m in json.loads(file.read_text("utf-8"))["machines"]] == ["shop-router"]
    listing = ok(cli("machines", "list", **{**env, "PARAMETRIC_MACHINES": str(file)}))
    assert "router shop-router" in listing and "mk3" not in listing


def test_the_default_is_the_web_apps_database_in_the_instance_folder(tmp_path, cache_folder):
    env = {"PARAMETRIC_INSTANCE": str(tmp_path / "instance"), "PARAMETRIC_OUTPUT": str(tmp_path / "output")}
    ok(cli("machines", *ROUTER_ARGS, **env))
    assert (tmp_path / "instance" / "parametric.db").is_file()
    app = dashboard(tmp_path, cache_folder, None)  # test_config's instance folder is tmp_path / "instance"
    assert app.config["DATABASE_URL"] == f"sqlite:///{tmp_path / 'instance' / 'parametric.db'}"
    assert set(listed(app)) == {"shop-router"}
    services(app).database.dispose()


# -- PostgreSQL ----------------------------------------------------------------------------------------


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with postgres_database() as url:
        yield url


@pytest.mark.integration
def test_slice_finds_a_printer_stored_in_postgresql(postgres_url, prusa_slicer, tmp_path, cache_folder):
    env = {"PARAMETRIC_INSTANCE": str(tmp_path / "instance")}  # the session's output folder: its cache is shared
    ok(cli("machines", "--store", postgres_url, *PRINTER_ARGS, **env))
    app = dashboard(tmp_path, cache_folder, postgres_url)
    assert listed(app)["mk3"]["materials"] == ["pla", "tpu"]

    sliced = cli("slice", "heel_lift", "--set", "lift_height=11", "--machine", "mk3", "--out", str(tmp_path / "out"),
                 **{**env, "DATABASE_URL": postgres_url})  # the default store: the web app's configured database
    manifest = json.loads(Path(ok(sliced).strip()).read_text("utf-8"))
    slicing = manifest["slicing"]
    assert slicing["machine"]["name"] == "mk3" and slicing["material"] in ("pla", "tpu")
    assert slicing["estimates"]["print_time_s"] > 0 and slicing["estimates"]["filament_g"] > 0
    gcode = [f for f in manifest["files"] if f["format"] == "gcode"]
    assert gcode and (tmp_path / "out" / gcode[0]["filename"]).stat().st_size > 1000

    ok(cli("machines", "remove", "mk3", **{**env, "DATABASE_URL": postgres_url}))
    assert listed(app) == {}
    services(app).database.dispose()
