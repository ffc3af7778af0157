"""``parametric nest``: DXF files in, sheets and report.json out; bad input listed, exit 2."""

from __future__ import annotations

import json

from parametric.cli import main

from .drawings import disc_dxf, l_bracket_dxf, new_drawing, read_sheet, rectangle_dxf


def test_nest_writes_sheets_and_report(tmp_path, capsys):
    door = rectangle_dxf(tmp_path / "door.dxf", 400, 700, windows=((80, 80, 320, 620),))
    bracket = l_bracket_dxf(tmp_path / "bracket.dxf")
    disc = disc_dxf(tmp_path / "disc.dxf", 80)
    huge = rectangle_dxf(tmp_path / "huge.dxf", 3000, 200)
    out = tmp_path / "out"
    code = main(["nest", f"{door}:2", f"{bracket}:3", f"{disc}:4", str(huge), "--sheet", "1220x1000",
                 "--spacing", "8", "--margin", "10", "--grain", str(door), "--seconds", "1", "--out", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.strip() == str(out / "report.json")
    assert f"warning: {huge} copy 1 not placed" in captured.err and "remnant of the last sheet" in captured.err
    report = json.loads((out / "report.json").read_text())
    placed = [entry for sheet in report["sheets"] for entry in sheet["placements"]]
    expected = [(str(door), n) for n in (1, 2)] + [(str(bracket), n) for n in (1, 2, 3)]
    assert sorted((entry["file"], entry["copy"]) for entry in placed) == sorted(
        expected + [(str(disc), n) for n in range(1, 5)])
    assert all(entry["rotation_deg"] in (0, 180) for entry in placed if entry["file"] == str(door))
    assert [entry["file"] for entry in report["unplaced"]] == [str(huge)]
    for sheet in report["sheets"]:
        drawn = read_sheet(out / f"sheet-{sheet['index']}.dxf")
        assert len(drawn) == len(sheet["placements"])
        assert all((out / f"sheet-{sheet['index']}{suffix}").exists() for suffix in (".svg", ".png"))


def test_nest_lists_every_bad_input_and_exits_2(tmp_path, capsys):
    document, space = new_drawing()
    space.add_line((0, 0), (100, 0))
    gap = space.add_line((100, 0), (100, 50))
    document.saveas(tmp_path / "open.dxf")
    document, space = new_drawing()
    crossing = space.add_lwpolyline([(0, 0), (100, 100), (100, 0), (0, 100)], close=True)
    document.saveas(tmp_path / "cross.dxf")
    good = rectangle_dxf(tmp_path / "good.dxf", 100, 100)
    code = main(["nest", str(tmp_path / "open.dxf"), str(tmp_path / "cross.dxf"), f"{good}:0", "--sheet", "2440x",
                 "--rotations", "sideways", "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert f"open.dxf: an open outline: LINE #{gap.dxf.handle}" in err
    assert "cross.dxf: a loop that crosses itself" in err and f"LWPOLYLINE #{crossing.dxf.handle}" in err
    assert "sheet:" in err and "rotations:" in err and "0 copies is out of range" in err
    assert not (tmp_path / "out").exists()


def test_a_batch_name_or_address_for_dxf_drawings_is_refused(tmp_path, capsys):
    """DXF drawings are nested without a machine and get no batch sheet, so naming one is a mistake to say."""
    good = rectangle_dxf(tmp_path / "good.dxf", 100, 100)
    code = main(["nest", str(good), "--sheet", "500x500", "--batch", "B-1", "--url", "https://shop.example/b/1",
                 "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2
    assert "batch: --batch is for templates on a machine" in err and "url: --url is for templates" in err
    assert not (tmp_path / "out").exists()
