"""New categories get colours a person tells apart, on masks over photos and on swatches."""

from __future__ import annotations

import itertools

import numpy as np

from mrcnn.store.project import Project


def lab(color: str) -> np.ndarray:
    """CIELAB (D65) of an sRGB "#rrggbb"."""
    c = np.array([int(color[i:i + 2], 16) for i in (1, 3, 5)]) / 255
    c = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                    [0.0193, 0.1192, 0.9505]]) @ c / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def closest_pair(colors: list[str]) -> float:
    return min(float(np.linalg.norm(lab(a) - lab(b)))
               for a, b in itertools.combinations(colors, 2))


def test_the_first_two_dozen_categories_have_colours_far_apart(tmp_path):
    """A VOC photo's 12 categories drew person and dining table in two magentas 22 apart
    (CIELAB ΔE76); now any two of the first 12 differ by more than twice that."""
    images = tmp_path / "images"
    images.mkdir()
    with Project.create(tmp_path / "project", images) as project:
        made = [project.add_category(f"category {i}").color for i in range(30)]
        assert [c.color for c in project.categories()] == made  # kept as given
    assert closest_pair(made[:12]) >= 40
    assert closest_pair(made[:24]) >= 25
    assert len(set(made)) == 30
    for color in made[:24]:
        lightness, a, b = lab(color)
        assert 50 <= lightness <= 90 and np.hypot(a, b) >= 35, color  # vivid, not grey
