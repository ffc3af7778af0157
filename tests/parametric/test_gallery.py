"""The gallery: shaded pictures a person recognises, and an index page with every parameter."""

from __future__ import annotations

import numpy as np
import pytest

import parametric
from parametric.cli import main


@pytest.fixture(scope="module")
def gallery(tmp_path_factory):
    out = tmp_path_factory.mktemp("gallery")
    assert main(["gallery", "--out", str(out), "--template", "wall_shelf"]) == 0
    return out


def test_each_preset_gets_a_shaded_picture(gallery):
    from PIL import Image

    template = parametric.get_template("wall_shelf")
    for key in template.presets:
        image = np.asarray(Image.open(gallery / "wall_shelf" / f"{key}.png").convert("RGB")).astype(float)
        assert image.shape[:2] == (360, 480)
        background = np.array([0.92 * 255] * 3)
        object_pixels = np.abs(image - background).sum(axis=2) > 60
        assert 0.05 < object_pixels.mean() < 0.9, "the product should fill a fair part of the picture"
        shades = np.unique((image[object_pixels] // 8).astype(int), axis=0)
        assert len(shades) > 20, "a shaded picture has many tones, not flat wireframe colours"


def test_index_lists_parameters_units_ranges_and_presets(gallery):
    page = (gallery / "index.html").read_text()
    template = parametric.get_template("wall_shelf")
    assert template.name in page and template.description in page
    for name in template.Params.model_fields:
        assert f"<code>{name}</code>" in page
    assert "300 to 1500 mm" in page
    for key, preset in template.presets.items():
        assert preset.label in page and f'src="wall_shelf/{key}.png"' in page
    assert 'href="wall_shelf/bookshelf/wall_shelf.step"' in page
