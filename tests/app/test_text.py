"""Words the window shows for numbers."""

from __future__ import annotations

from app.text import plural, uncertainty_text


def test_uncertainties_near_one_keep_the_digits_that_tell_them_apart():
    # the review order's top rows, images with several unsure objects: none reads "1.00"
    assert [uncertainty_text(u) for u in (0.99993, 0.9991, 0.996, 0.987, 0.456, 0.0)] == [
        "0.9999", "0.999", "0.996", "0.99", "0.46", "0.00"]
    assert uncertainty_text(0.999996) == "> 0.9999"
    assert uncertainty_text(1.0) == "1.00"


def test_plural():
    assert (plural(1, "image"), plural(0, "image"), plural(2, "category", "categories")) == (
        "1 image", "0 images", "2 categories")
