"""DS9 region files: shapes on the sky against spherical geometry, and bad files."""

from __future__ import annotations

import numpy as np
import pytest

from radiocloud.core.errors import OptionError
from radiocloud.core.regions import read_regions

RA0, DEC0 = np.radians(243.76), np.radians(-60.9)  # ESO 137-006


def offset(east_deg, north_deg):
    """Position (RA, Dec) radians at small East/North offsets (degrees) from RA0, DEC0, by
    rotating the tangent direction onto the sphere."""
    x, y = np.radians(east_deg), np.radians(north_deg)
    rho = np.hypot(x, y)
    c = np.arctan(rho)
    with np.errstate(invalid="ignore", divide="ignore"):
        dec = np.arcsin(np.cos(c) * np.sin(DEC0) + np.where(rho > 0, y * np.sin(c) * np.cos(DEC0)
                                                            / rho, 0.0))  # fmt: skip
    ra = RA0 + np.arctan2(x * np.sin(c), rho * np.cos(DEC0) * np.cos(c) - y * np.sin(DEC0) *
                          np.sin(c))  # fmt: skip
    return ra, dec


def write(tmp_path, text):
    path = tmp_path / "r.reg"
    path.write_text(text)
    return path


def separation(ra, dec):
    return np.arccos(np.sin(DEC0) * np.sin(dec) + np.cos(DEC0) * np.cos(dec) * np.cos(ra - RA0))


def test_circle_is_the_angular_distance(tmp_path):
    regions = read_regions(
        write(tmp_path, f'fk5\ncircle({np.degrees(RA0)},{np.degrees(DEC0)},900")\n')
    )
    rng = np.random.default_rng(1)
    ra, dec = offset(*rng.uniform(-0.5, 0.5, size=(2, 4000)))
    got = regions.contains(ra, dec)
    expected = separation(ra, dec) <= np.radians(0.25)
    assert got.sum() > 500
    np.testing.assert_array_equal(got, expected)


def test_sexagesimal_equals_degrees(tmp_path):
    a = read_regions(write(tmp_path, "fk5\ncircle(16:15:02.4,-60:54:00,0.1d)"))
    b = read_regions(write(tmp_path, "fk5\ncircle(243.76,-60.9,6')"))
    assert a.shapes[0].centre == pytest.approx(b.shapes[0].centre, abs=1e-12)
    assert a.shapes[0].params == pytest.approx(b.shapes[0].params, abs=1e-15)


def test_polygon_ellipse_box_and_exclusion(tmp_path):
    ra, dec = np.degrees(RA0), np.degrees(DEC0)
    corners = [offset(e, n) for e, n in [(-0.2, -0.1), (0.2, -0.1), (0.2, 0.1), (-0.2, 0.1)]]
    poly = ",".join(f"{np.degrees(r)},{np.degrees(d)}" for r, d in corners)
    text = (f"# Region file format: DS9 version 4.1\nglobal color=green\nfk5\npolygon({poly})\n"
            f"ellipse({ra},{np.degrees(offset(0, 1)[1])},0.3d,0.1d,0) # major axis West-East\n"
            f"box({ra},{np.degrees(offset(0, -1)[1])},0.6d,0.2d,90) # long side North-South\n"
            f"-circle({ra},{dec},0.05d)\n")  # fmt: skip
    regions = read_regions(write(tmp_path, text))
    inside = [(0.15, 0.08), (-0.15, -0.08), (0.07, 0.0), (0.25, 1.0), (0.0, 1.08),
              (0.0, -0.75), (0.09, -1.0)]  # fmt: skip
    outside = [(0.0, 0.0), (0.25, 0.0), (0.0, 0.12), (0.0, 1.15), (0.35, 1.0), (0.15, -1.0),
               (0.0, -1.35)]  # fmt: skip
    assert regions.contains(*np.array([offset(*p) for p in inside]).T).all()
    assert not regions.contains(*np.array([offset(*p) for p in outside]).T).any()


def test_only_exclusions_keep_everything_else(tmp_path):
    regions = read_regions(write(tmp_path, "fk5;-circle(243.76,-60.9,0.1d)"))
    ra, dec = offset(np.array([0.0, 0.2]), np.array([0.0, 0.0]))
    np.testing.assert_array_equal(regions.contains(ra, dec), [False, True])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("image\ncircle(100,100,20)", "r.reg:2: 'image' coordinates are pixels"),
        ("circle(243.7,-60.9,1d)", "r.reg:1: no coordinate system"),
        ("fk5\nannulus(243.7,-60.9,1d,2d)", "r.reg:2: shape 'annulus' is not supported"),
        ("fk5\ncircle(243.7,-60.9)", "r.reg:2: circle takes 3 values, got 2"),
        ("fk5\ncircle(243.7,-60.9,big)", "r.reg:2: cannot read the size 'big'"),
        ("fk5\npolygon(1,2,3,4)", "r.reg:2: polygon takes three or more"),
        ("# nothing\n", "holds no shapes"),
    ],
)
def test_bad_region_files_name_the_line(tmp_path, text, message):
    with pytest.raises(OptionError, match=message):
        read_regions(write(tmp_path, text))
