"""Machine records, the machines file and CLI, and routing parts to machines with reasons in plain words."""

from __future__ import annotations

import json

import pytest

from parametric.cli import main
from parametric.errors import ValidationError
from parametric.machines import (
    Host,
    MachineStore,
    Printer,
    Router,
    default_feeds,
    machine_from_dict,
    machine_to_dict,
    open_store,
    without_password,
)
from parametric.routing import route


def test_router_round_trips_through_json(make_router):
    record = make_router("linuxcnc")
    machine = machine_from_dict(record)
    assert isinstance(machine, Router) and machine.dialect == "linuxcnc"
    assert machine.tool(2).type == "drill" and machine.tool(1).feeds["oak"].stepdown_mm > 0
    again = machine_from_dict(json.loads(json.dumps(machine_to_dict(machine))))
    assert again == machine


def test_printer_round_trips_with_its_host():
    printer = Printer("mk4", (250, 210, 220), 0.4, ["pla", "petg"],
                      host=Host("octoprint", {"url": "http://octopi.local", "api_key": "K"}))
    assert machine_from_dict(json.loads(json.dumps(machine_to_dict(printer)))) == printer


def test_bad_records_name_every_field(make_router):
    record = make_router()
    record["dialect"] = "fanuc"
    record["tools"][0]["diameter_mm"] = -6
    record["tools"][1]["feeds"]["steel"] = {"feed_mm_min": 1, "plunge_mm_min": 1, "spindle_rpm": 1,
                                            "stepdown_mm": 1}
    record["tools"][2]["number"] = 1
    record["stock"][0]["size_mm"] = [2500]
    record["delivery"] = {"method": "hot_folder"}
    record["colour"] = "red"
    with pytest.raises(ValidationError) as caught:
        machine_from_dict(record)
    fields = {e.field: e.message for e in caught.value.errors}
    assert "grbl, linuxcnc" in fields["dialect"]
    assert "out of range" in fields["tools[0].diameter_mm"]
    assert "not a CNC material" in fields["tools[1].feeds.steel"]
    assert "used twice" in fields["tools[2].number"]
    assert "2 positive sizes" in fields["stock[0].size_mm"]
    assert "hot folder" in fields["delivery.path"]
    assert "unknown field" in fields["colour"]


def test_printer_refuses_sheet_materials():
    with pytest.raises(ValidationError) as caught:
        machine_from_dict({"kind": "printer", "name": "p", "build_volume_mm": "250x210x210", "materials": ["oak"]})
    assert caught.value.errors[0].field == "materials[0]"


def test_default_feeds_scale_with_the_tool():
    small, large = default_feeds("oak", 3, 2), default_feeds("oak", 6, 2)
    assert small.feed_mm_min < large.feed_mm_min and small.stepdown_mm < large.stepdown_mm
    assert default_feeds("aluminium", 6, 2).feed_mm_min < large.feed_mm_min


def test_store_adds_lists_and_removes(tmp_path, make_router):
    store = MachineStore(tmp_path / "machines.json")
    store.add(machine_from_dict(make_router()))
    store.add(Printer("mk3", (250, 210, 210), materials=["pla"]))
    assert [m.name for m in store.all()] == ["shop-router", "mk3"]
    with pytest.raises(ValidationError, match="exists"):
        store.add(Printer("mk3", (180, 180, 180)))
    store.add(Printer("mk3", (180, 180, 180)), replace=True)
    assert store.get("mk3").build_volume_mm == (180, 180, 180)
    store.remove("shop-router")
    with pytest.raises(ValidationError, match="known: mk3"):
        store.get("shop-router")


def test_cli_machines_add_list_show_remove(tmp_path, capsys):
    store = ["--store", str(tmp_path / "m.json")]
    assert main(["machines", *store, "add", "printer", "mk3", "--volume", "250x210x210", "--material", "pla",
                 "--octoprint", "http://127.0.0.1:5000", "--api-key", "secret"]) == 0
    assert main(["machines", *store, "add", "router", "cnc", "--bed", "2500x1250", "--tool", "1:6:endmill:2:22",
                 "--tool", "2:5:drill", "--stock", "birch_plywood:18:2500x1250",
                 "--feeds", "1:birch_plywood:1800:500:18000:4", "--hot-folder", str(tmp_path / "hot")]) == 0
    capsys.readouterr()
    assert main(["machines", *store, "list", "--json"]) == 0
    listed = {m["name"]: m for m in json.loads(capsys.readouterr().out)}
    assert listed["mk3"]["host"]["url"] == "http://127.0.0.1:5000"
    cnc = listed["cnc"]
    assert cnc["tools"][0]["feeds"]["birch_plywood"] == {"feed_mm_min": 1800, "plunge_mm_min": 500,
                                                         "spindle_rpm": 18000, "stepdown_mm": 4}
    assert cnc["tools"][1]["feeds"]["birch_plywood"]["stepdown_mm"] > 0  # defaults from the cutting table
    assert cnc["delivery"] == {"method": "hot_folder", "path": str(tmp_path / "hot")}
    assert main(["machines", *store, "remove", "mk3"]) == 0
    assert main(["machines", *store, "remove", "mk3"]) == 2
    assert "no machine called 'mk3'" in capsys.readouterr().err


def test_cli_machines_add_from_a_toml_file(tmp_path, capsys):
    path = tmp_path / "printer.toml"
    path.write_text('kind = "printer"\nname = "voron"\nbuild_volume_mm = [300, 300, 280]\nmaterials = ["abs"]\n')
    store = ["--store", str(tmp_path / "m.json")]
    assert main(["machines", *store, "add", "file", str(path)]) == 0
    assert "voron: 300 x 300 x 280 mm" in capsys.readouterr().out


def test_cli_machines_bad_input_exits_2_naming_the_field(tmp_path, capsys):
    store = ["--store", str(tmp_path / "m.json")]
    assert main(["machines", *store, "add", "router", "r", "--bed", "2500", "--dialect", "fanuc",
                 "--tool", "1:x"]) == 2
    error = capsys.readouterr().err
    assert "tools[0]" in error and "NUMBER:DIAMETER" in error
    assert main(["machines", *store, "add", "router", "r", "--bed", "2500", "--dialect", "fanuc"]) == 2
    error = capsys.readouterr().err
    assert "bed_mm" in error and "dialect" in error


# -- which store ----------------------------------------------------------------------------


@pytest.fixture
def no_store_plugins(monkeypatch):
    """The core installed without the web app: no ``parametric.machine_stores`` entry points."""
    import importlib.metadata

    real = importlib.metadata.entry_points

    def entry_points(**selection):
        return [] if selection.get("group") == "parametric.machine_stores" else real(**selection)

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)


def test_a_json_location_or_parametric_machines_is_the_machines_file(tmp_path, monkeypatch):
    store = open_store(tmp_path / "shop.JSON")
    assert isinstance(store, MachineStore) and store.location == str(tmp_path / "shop.JSON")
    monkeypatch.setenv("PARAMETRIC_MACHINES", str(tmp_path / "env.json"))
    store = open_store()
    assert isinstance(store, MachineStore) and store.path == tmp_path / "env.json"


def test_without_a_store_plugin_the_default_is_the_file_and_a_url_is_refused(no_store_plugins, tmp_path,
                                                                              monkeypatch, capsys):
    monkeypatch.delenv("PARAMETRIC_MACHINES", raising=False)
    monkeypatch.setenv("PARAMETRIC_OUTPUT", str(tmp_path / "output"))
    store = open_store()
    assert isinstance(store, MachineStore) and store.path == (tmp_path / "output" / "machines.json").resolve()
    with pytest.raises(ValidationError) as caught:
        open_store("postgresql+psycopg://shop:s3cret@db.example/shop")
    (problem,) = caught.value.errors
    assert problem.field == "store" and "no database store is installed" in problem.message
    assert "s3cret" not in problem.message and "shop:***@db.example" in problem.message
    assert main(["machines", "--store", "sqlite:///shop.db", "list"]) == 2
    error = capsys.readouterr().err
    assert "store: sqlite:///shop.db is a database URL" in error and "Traceback" not in error


def test_a_location_that_is_neither_a_json_file_nor_a_url_is_refused(capsys):
    for location in ("machines.txt", "output/machines", " "):
        with pytest.raises(ValidationError) as caught:
            open_store(location)
        assert caught.value.errors[0].field == "store" and ".json" in caught.value.errors[0].message
    assert main(["machines", "--store", "machines.toml", "list"]) == 2
    assert "store: 'machines.toml' is neither a .json file nor a database URL" in capsys.readouterr().err


def test_passwords_never_reach_messages():
    assert without_password("postgresql+psycopg://shop:pw@db:5432/x") == "postgresql+psycopg://shop:***@db:5432/x"
    assert without_password("sqlite:////var/shop.db") == "sqlite:////var/shop.db"
    assert without_password("/tmp/machines.json") == "/tmp/machines.json"


# -- routing --------------------------------------------------------------------------------

PRINTERS = [Printer("mini", (180, 180, 180), 0.4, ["pla"]), Printer("mk3", (250, 210, 210), 0.4, ["pla", "petg"]),
            Printer("big", (350, 350, 350), 0.6, ["petg"])]


def part(size, process="fdm", **more):
    return {"name": "thing", "process": process, "size_mm": list(size), **more}


def test_routes_to_the_smallest_printer_that_fits():
    assert route(part((100, 100, 50)), "pla", PRINTERS).machine.name == "mini"
    assert route(part((240, 100, 50)), "pla", PRINTERS).machine.name == "mk3"
    assert route(part((300, 300, 50)), "petg", PRINTERS).machine.name == "big"


def test_a_part_that_fits_only_turned_is_turned():
    routed = route(part((100, 240, 20)), "pla", PRINTERS)
    assert routed.machine.name == "mk3" and routed.quarter_turn


def test_reasons_are_plain_words():
    assert route(part((420, 100, 20)), "pla", PRINTERS).reason == "420 mm long; the largest printer bed is 250 x 210 mm"
    assert route(part((230, 230, 20)), "pla", PRINTERS).reason == \
        "230 mm wide (230 x 230 mm); the largest printer bed is 250 x 210 mm"
    assert route(part((100, 100, 400)), "petg", PRINTERS).reason == \
        "400 mm tall; the tallest printer with PETG loaded prints 350 mm high"
    assert "no printer has TPU 95A (flexible) loaded" in route(part((10, 10, 10)), "tpu", PRINTERS).reason
    assert "no printer is set up" in route(part((10, 10, 10)), "pla", []).reason
    fine = route(part((10, 10, 10)), "petg", PRINTERS[2:], max_nozzle_mm=0.4)
    assert fine.machine is None and "nozzle of at most 0.4 mm" in fine.reason


def test_routes_sheet_parts_to_a_router_with_stock_and_a_cutter(router):
    side = part((1800, 280, 18), "cnc", flat=True, thickness_mm=18)
    routed = route(side, "birch_plywood", [router, *PRINTERS])
    assert routed.machine is router and routed.stock.thickness_mm == 18 and routed.tool.diameter_mm == 6
    assert "needs 16 mm Birch plywood sheet; Birch plywood is stocked in 12, 15, 18, 19, 22 mm only" == \
        route(part((500, 300, 16), "cnc", flat=True, thickness_mm=16), "birch_plywood", [router]).reason
    assert "no router stocks Aluminium 6061" in route(side, "aluminium", [router]).reason
    too_long = route(part((2600, 300, 18), "cnc", flat=True, thickness_mm=18), "oak", [router])
    assert too_long.reason.startswith("2600 mm long; the largest 18 mm Solid oak sheet")
    assert "not a flat sheet part" in route(part((100, 100, 100), "cnc"), "oak", [router]).reason


def test_router_without_a_long_enough_cutter_says_so(make_router):
    record = make_router()
    for tool in record["tools"]:
        tool["flute_length_mm"] = 12
    reason = route(part((500, 300, 18), "cnc", flat=True, thickness_mm=18), "oak", [machine_from_dict(record)]).reason
    assert reason == "18 mm thick; the longest end mill with feeds for Solid oak cuts 12 mm deep"


def test_the_manufacturing_core_imports_no_web_queue_or_database():
    import subprocess
    import sys

    code = ("import sys, parametric.machines, parametric.routing, parametric.fdm, parametric.cnc, "
            "parametric.jobsheet, parametric.hosts.octoprint, parametric.hosts.hot_folder\n"
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'web', 'huey', 'sqlalchemy'))\n"
            "print(','.join(loaded))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


# -- records from specs (the CLI's options and the dashboard's form share them) -------------------


def test_router_record_reads_specs_with_default_feeds_and_reads_back_its_own_specs(make_router):
    from parametric.machines import router_record, router_specs

    record = router_record("cnc", bed="2500x1250", dialect="linuxcnc",
                           tools=[" 1 : 6 : endmill : 2 : 22 : 6 mm upcut", "2:5:drill"],
                           stock=["birch_plywood:18:2500x1250", "oak:19:2000x600"],
                           feeds=["1:oak:1500:450:16000:2.5"], hot_folder="/srv/cnc/in", safe_height_mm="8",
                           rapid_mm_min=" 6000 ")
    router = machine_from_dict(record)
    assert isinstance(router, Router) and router.delivery.method == "hot_folder" and router.safe_height_mm == 8
    first, drill = router.tool(1), router.tool(2)
    assert (first.name, first.flute_length_mm, drill.flutes, drill.flute_length_mm) == ("6 mm upcut", 22, 1, 25)
    assert first.feeds["birch_plywood"] == default_feeds("birch_plywood", 6, 2)  # from data/cutting.toml
    assert (first.feeds["oak"].feed_mm_min, first.feeds["oak"].stepdown_mm) == (1500, 2.5)  # given
    assert set(drill.feeds) == {"birch_plywood", "oak"}
    # what a form shows for editing: only the feeds that differ from the defaults
    specs = router_specs(router)
    assert specs == {"tools": ["1:6:endmill:2:22:6 mm upcut", "2:5:drill:1:25"],
                     "stock": ["birch_plywood:18:2500x1250", "oak:19:2000x600"],
                     "feeds": ["1:oak:1500:450:16000:2.5"]}
    # and a router from a file, with its own feeds everywhere, survives the round trip unchanged
    full = machine_from_dict({**make_router(), "tools": [{**tool, "feeds": {material: {
        key: value * 0.9 for key, value in feeds.items()} for material, feeds in tool["feeds"].items()}}
        for tool in make_router()["tools"]]})
    again = machine_from_dict(router_record(full.name, bed=[2500, 1250], **router_specs(full)))
    assert again == full


def test_router_record_names_every_problem_at_once():
    from parametric.machines import router_record

    with pytest.raises(ValidationError) as caught:
        router_record("r", bed="2500", dialect="fanuc", tools=["1:6", "1:x", "3:6:saw"],
                      stock=["oak:19:2000x600"], feeds=["1:oak:fast"], hot_folder="", delivery="hot_folder",
                      rapid_mm_min="quick")
    fields = {e.field: e.message for e in caught.value.errors}
    assert "NUMBER:DIAMETER" in fields["tools[1]"] and "allowed: endmill" in fields["tools[2].type"]
    assert "TOOL:MATERIAL" in fields["feeds[0]"]
    assert {"bed_mm", "dialect", "delivery.path", "rapid_mm_min"} <= set(fields)  # the rest is checked too
    with pytest.raises(ValidationError) as caught:
        router_record("r", bed="2500x1250", tools=["1:6"], feeds=["9:oak:1:1:1:1"])
    assert [(e.field, e.message) for e in caught.value.errors] == [("feeds[0]", "no tool 9 among the tools")]


def test_printer_record_reads_typed_numbers_and_leaves_the_checking_to_machine_from_dict():
    from parametric.machines import printer_record

    printer = machine_from_dict(printer_record("mk4", build_volume="250x210x220", nozzle_mm=" 0.6 ", filament_mm="",
                                               materials=["pla"], host="octoprint",
                                               host_settings={"url": "http://octopi.local", "api_key": "K"}))
    assert (printer.nozzle_diameter_mm, printer.filament_diameter_mm) == (0.6, 1.75)
    assert printer.host == Host("octoprint", {"url": "http://octopi.local", "api_key": "K"})
    assert machine_from_dict(printer_record("bare", build_volume=[180, 180, 180])).host is None
    with pytest.raises(ValidationError) as caught:
        machine_from_dict(printer_record("mk4", build_volume="250x210", nozzle_mm="wide", gcode_flavor="gcode",
                                         host_settings={"url": "octopi.local"}))
    fields = {e.field: e.message for e in caught.value.errors}
    assert fields["nozzle_diameter_mm"] == "must be a number in mm"
    assert {"build_volume_mm", "gcode_flavor", "host.url", "host.api_key"} <= set(fields)


def test_default_feeds_turn_a_large_bit_slower_and_peck_it(make_router):
    hinge_cup = default_feeds("mdf", 35, 2, "drill")
    assert hinge_cup.spindle_rpm <= 3200  # 340 m/min at the edge of a 35 mm bit, not the 6 mm cutter's 18000 rpm
    assert hinge_cup.stepdown_mm <= 10 and hinge_cup.plunge_mm_min < 400  # a 12 mm cup in two pecks, slowly
    assert default_feeds("mdf", 6, 2) == default_feeds("mdf", 6, 2) and default_feeds("mdf", 6, 2).spindle_rpm == 18000


@pytest.mark.parametrize("tool_type", ["endmill", "drill", "ballnose", "vbit"])
def test_every_default_tool_record_passes_the_validator(tool_type):
    from parametric.machines import cutting_data, router_record

    for diameter in (1, 2, 3, 5, 6, 8, 12, 20, 35, 40):
        record = router_record("shop", bed="2500x1250", tools=[f"1:{diameter}:{tool_type}"],
                               stock=[f"{material}:18:2500x1250" for material in cutting_data()])
        machine_from_dict(record)  # raises ValidationError naming the field if a default is out of range


def test_stock_carries_the_thickness_its_sheets_measure():
    from parametric.machines import machine_to_dict, router_record, router_specs

    record = router_record("shop", bed="2500x1250", tools=["1:6"],
                           stock=["birch_plywood:18:2500x1250:17.6", "mdf:18:2500x1250"])
    router = machine_from_dict(record)
    measured, plain = router.stock
    assert (measured.thickness_mm, measured.measured_thickness_mm) == (18, 17.6)
    assert plain.measured_thickness_mm is None
    assert "birch_plywood 18 mm (measures 17.6)" in router.describe()
    # read back through the specs a form edits, and through the stored record
    assert router_specs(router)["stock"] == ["birch_plywood:18:2500x1250:17.6", "mdf:18:2500x1250"]
    assert machine_from_dict(machine_to_dict(router)).stock == router.stock
    assert "measured_thickness_mm" not in machine_to_dict(router)["stock"][1]  # records without it keep their shape


def test_a_measurement_far_from_the_nominal_thickness_is_refused():
    from parametric.machines import router_record

    with pytest.raises(ValidationError) as caught:
        machine_from_dict(router_record("shop", bed="2500x1250", stock=["oak:18:2500x1250:8"]))
    (problem,) = caught.value.errors
    assert problem.field == "stock[0].measured_thickness_mm"
    assert "16.2 to 19.8 mm" in problem.message
    with pytest.raises(ValidationError) as caught:
        router_record("shop", bed="2500x1250", stock=["oak:18:2500x1250:17.6:extra"])
    assert caught.value.errors[0].field == "stock[0]" and "MEASURED" in caught.value.errors[0].message
