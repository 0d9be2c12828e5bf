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


def ciede2000(x: np.ndarray, y: np.ndarray) -> float:
    """The CIEDE2000 colour difference of two CIELAB colours (Sharma et al. 2005)."""
    (l1, a1, b1), (l2, a2, b2) = x, y
    c_mean = (np.hypot(a1, b1) + np.hypot(a2, b2)) / 2
    g = 0.5 * (1 - np.sqrt(c_mean ** 7 / (c_mean ** 7 + 25 ** 7)))
    a1, a2 = (1 + g) * a1, (1 + g) * a2
    c1, c2 = np.hypot(a1, b1), np.hypot(a2, b2)
    h1, h2 = np.degrees(np.arctan2(b1, a1)) % 360, np.degrees(np.arctan2(b2, a2)) % 360
    dh = 0.0 if c1 * c2 == 0 else (h2 - h1 + 180) % 360 - 180
    big_dh = 2 * np.sqrt(c1 * c2) * np.sin(np.radians(dh / 2))
    l_mean, c_mean = (l1 + l2) / 2, (c1 + c2) / 2
    if c1 * c2 == 0:
        h_mean = h1 + h2
    elif abs(h1 - h2) <= 180:
        h_mean = (h1 + h2) / 2
    else:
        h_mean = (h1 + h2 + 360) / 2 if h1 + h2 < 360 else (h1 + h2 - 360) / 2
    t = (1 - 0.17 * np.cos(np.radians(h_mean - 30)) + 0.24 * np.cos(np.radians(2 * h_mean))
         + 0.32 * np.cos(np.radians(3 * h_mean + 6)) - 0.20 * np.cos(np.radians(4 * h_mean - 63)))
    s_l = 1 + 0.015 * (l_mean - 50) ** 2 / np.sqrt(20 + (l_mean - 50) ** 2)
    s_c, s_h = 1 + 0.045 * c_mean, 1 + 0.015 * c_mean * t
    r_t = (-np.sin(np.radians(60 * np.exp(-(((h_mean - 275) / 25) ** 2))))
           * 2 * np.sqrt(c_mean ** 7 / (c_mean ** 7 + 25 ** 7)))
    dl, dc, dh_ = (l2 - l1) / s_l, (c2 - c1) / s_c, big_dh / s_h
    return float(np.sqrt(dl ** 2 + dc ** 2 + dh_ ** 2 + r_t * dc * dh_))


def closest_pair(colors: list[str]) -> float:
    return min(ciede2000(lab(a), lab(b)) for a, b in itertools.combinations(colors, 2))


def test_the_colour_difference_is_ciede2000():
    """Against Sharma, Wu and Dalal's published test pairs."""
    pairs = [((50, 2.6772, -79.7751), (50, 0, -82.7485), 2.0425),
             ((50, 0, 0), (50, -1, 2), 2.3669),
             ((50, 2.5, 0), (73, 25, -18), 27.1492),
             ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
             ((22.7233, 20.0904, -46.694), (23.0331, 14.973, -42.5619), 2.0373)]
    for x, y, expected in pairs:
        assert abs(ciede2000(np.array(x), np.array(y)) - expected) < 1e-3


def test_the_first_two_dozen_categories_have_colours_far_apart(tmp_path):
    """A VOC photo's 12 categories drew person and dining table in two magentas 8.4 apart
    (CIEDE2000); now any two of the first 12 differ by more than twice that."""
    images = tmp_path / "images"
    images.mkdir()
    with Project.create(tmp_path / "project", images) as project:
        made = [project.add_category(f"category {i}").color for i in range(30)]
        assert [c.color for c in project.categories()] == made  # kept as given
    assert closest_pair(made[:12]) >= 20
    assert closest_pair(made[:24]) >= 14
    assert len(set(made)) == 30
    for color in made[:24]:
        lightness, a, b = lab(color)
        assert 50 <= lightness <= 90 and np.hypot(a, b) >= 35, color  # vivid, not grey
