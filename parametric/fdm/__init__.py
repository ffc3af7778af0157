"""Printing (FDM): PrusaSlicer profiles from the machine records, slicing with its CLI, and plates.

- :mod:`.profile` — print settings and the PrusaSlicer profile of a printer and filament;
- :mod:`.prusaslicer` — running the slicer, reading its estimates, the slice cache;
- :mod:`.plates` — copies per plate, a product's printed parts sliced onto as many plates as needed, and
  packed plates of many parts sliced once each (:func:`make_plates`);
- :mod:`.packing` — parts' footprints packed onto plates of a printer's bed and checked (:mod:`.footprint`).
"""

from .plates import PlateSource, copies_per_plate, make_plates, slice_copies, slice_manifest, slicing_record
from .profile import PLATE_SPACING_MM, PrintSettings, build_profile, printing_data, profile_text
from .prusaslicer import (
    NO_ESTIMATES,
    Estimates,
    PlateItem,
    PlateTooFull,
    SlicerError,
    SliceResult,
    estimate_part,
    fits_printer,
    parse_duration,
    parse_estimates,
    read_estimates,
    slice_part,
    slice_placed,
    slice_plate,
    slicer_path,
    total_estimates,
)

__all__ = [
    "NO_ESTIMATES", "PLATE_SPACING_MM", "Estimates", "PlateItem", "PlateSource", "PlateTooFull", "PrintSettings",
    "SliceResult", "SlicerError",
    "build_profile", "copies_per_plate", "estimate_part", "fits_printer", "make_plates", "parse_duration",
    "parse_estimates", "printing_data", "profile_text", "read_estimates", "slice_copies", "slice_manifest",
    "slice_part", "slice_placed", "slice_plate", "slicer_path", "slicing_record", "total_estimates",
]
