import pytest

from parametric.units import UnitError, format_duration, to_degrees, to_mm


@pytest.mark.parametrize(("text", "mm"), [
    (12, 12.0), (12.5, 12.5), ("12.5 mm", 12.5), ("32in", 812.8), ("80cm", 800.0), ("1.2m", 1200.0),
    ('3/4"', 19.05), ("1 1/2in", 38.1), ("2ft", 609.6), ("  7 MM ", 7.0), ("1e2", 100.0), ("-3", -3.0),
])
def test_lengths_become_millimetres(text, mm):
    assert to_mm(text) == pytest.approx(mm)


@pytest.mark.parametrize("bad", ["12 furlongs", "twelve", "", "12..5mm", True, None, [12], "nan", "inf mm"])
def test_bad_lengths_are_refused_with_the_allowed_units(bad):
    with pytest.raises(UnitError) as error:
        to_mm(bad)
    message = str(error.value)
    assert "length" in message


def test_unknown_unit_names_the_allowed_ones():
    with pytest.raises(UnitError, match="“yd” in “3 yd” is not a unit we know; write the length in mm, cm, m, "
                                        "in or ft"):
        to_mm("3 yd")


def test_angles():
    assert to_degrees("10deg") == 10
    assert to_degrees("3.14159265rad") == pytest.approx(180, rel=1e-6)
    assert to_degrees(7) == 7


def test_one_number_formatter_reads_as_people_write():
    from parametric.units import format_number

    assert [format_number(v, 1) for v in (6.0, 2.54, -0.01, 1200)] == ["6", "2.5", "0", "1200"]
    assert format_number(10, 0) == "10" and format_number(2.5e6, 2) == "2500000"
    assert [format_number(v) for v in (6.0, 0.1, 22.25)] == ["6", "0.1", "22.25"]  # exact: reads back the same
    assert "e" not in format_number(1e-7) and float(format_number(1e-7)) == 1e-7


@pytest.mark.parametrize(("seconds", "precise", "shown"), [
    (40, True, "40 s"), (512, True, "8 min 32 s"), (512, False, "9 min"), (510, False, "9 min"),
    (509, False, "8 min"), (750, False, "13 min"), (3599, True, "59 min 59 s"), (3599, False, "1 h 00 min"),
    (3629, True, "1 h 00 min"), (3630, True, "1 h 01 min"), (4770, True, "1 h 20 min"), (40, False, "40 s"),
])
def test_a_duration_without_its_seconds_is_rounded_to_the_nearest_minute(seconds, precise, shown):
    """A job sheet's "9 min" for 8 min 32 s of CAM, not "8 min": the figure is rounded, never cut down."""
    assert format_duration(seconds, precise=precise) == shown
