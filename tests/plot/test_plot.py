"""rc-plot on a small simulated observation: every axis, categories, flags, bad input."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from casacore.tables import table
from matplotlib.image import imread

from radiocloud.plot.axes import PLAIN

from .conftest import plot

DATA_AXES = ["DATA:amp", "DATA:phase", "DATA:real", "DATA:imag", "DATA-MODEL_DATA:amp"]


def coloured(path) -> float:
    """Fraction of the image in saturated colour (data drawn; axes and text are grey)."""
    return coloured_fraction(imread(str(path)))


def coloured_fraction(image) -> float:
    rgb = image[..., :3]
    return float(((rgb.max(axis=-1) - rgb.min(axis=-1)) > 0.1).mean())


def png_size(path) -> tuple[int, int]:
    image = imread(str(path))
    return image.shape[1], image.shape[0]


def test_every_pair_of_axes_gives_a_png_of_the_asked_size(small_ms, tmp_path):
    """Every unordered pair of axes (231 plots, in one run: one read per pass)."""
    axes = list(PLAIN) + DATA_AXES
    pairs = [(a, b) for n, a in enumerate(axes) for b in axes[n:]]
    args = [v for x, y in pairs for v in ("-x", x, "-y", y)]
    assert plot(small_ms, *args, "--output", tmp_path / "p{n}.png", "--size", "320x240",
                "--pixels", "40x30") == 0  # fmt: skip
    for n in range(len(pairs)):
        assert png_size(tmp_path / f"p{n}.png") == (320, 240)
    # a pair of data axes is drawn: the amplitude of DATA against itself is the diagonal
    image = imread(str(tmp_path / f"p{pairs.index(('DATA:amp', 'DATA:amp'))}.png"))
    assert coloured_fraction(image) > 0.001


@pytest.mark.parametrize("colour", ["ANTENNA1", "BASELINE", "CORR", "SCAN"])
def test_colour_by_a_category(small_ms, tmp_path, colour):
    out = tmp_path / "c.png"
    assert plot(small_ms, "-x", "UV", "-y", "DATA:amp", "--colour-by", colour,
                "--output", out) == 0  # fmt: skip
    assert png_size(out) == (800, 600)
    assert coloured(out) > 0.002  # the data were drawn in colour


def test_flagged_antenna_and_fully_flagged_data_plot_without_error(small_ms, tmp_path):
    some, every = tmp_path / "some.ms", tmp_path / "every.ms"
    for ms in (some, every):
        shutil.copytree(small_ms, ms)
        with table(str(ms), readonly=False, ack=False) as t:
            flag = t.getcol("FLAG")
            flag[(t.getcol("ANTENNA1") == 2) | (t.getcol("ANTENNA2") == 2)] = True
            t.putcol("FLAG", np.ones_like(flag) if ms == every else flag)
    assert plot(some, "-x", "ANTENNA1", "-y", "DATA:amp", "--corr", "XX", "--output",
                tmp_path / "a.png") == 0  # fmt: skip
    assert plot(every, "-x", "UV", "-y", "DATA:amp", "--output", tmp_path / "empty.png") == 0
    assert png_size(tmp_path / "empty.png") == (800, 600)
    assert coloured(tmp_path / "a.png") > 0.002
    assert coloured(tmp_path / "empty.png") == 0  # labelled, but nothing drawn


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["-x", "WOBBLE", "-y", "DATA:amp"], "valid axes are"),
        (["-x", "UV", "-y", "DATA:size"], "amp, phase, real, imag"),
        (["-x", "UV", "-y", "NOPE:amp"], "has no column NOPE"),
        (["-x", "UV", "-y", "DATA:amp", "--corr", "RR"], "--corr RR"),
        (["-x", "UV", "-y", "DATA:amp", "--colour-by", "COLOUR"], "--colour-by COLOUR"),
        (["-x", "UV", "-x", "TIME", "-y", "DATA:amp"], "one -y per -x"),
    ],
)
def test_bad_input_is_one_line(small_ms, tmp_path, capfd, args, words):
    assert plot(small_ms, *args, "--output", tmp_path / "x.png") == 2
    err = capfd.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert words in err[0]
