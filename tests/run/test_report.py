"""rc-run's run report: built from the provenance record and the products it names."""

from __future__ import annotations

import json

import numpy as np
from astropy.io import fits

from radiocloud.run.report import write_report


def test_report_measures_images_flags_and_steps(tmp_path):
    rng = np.random.default_rng(1)
    residual = rng.normal(0.0, 0.002, (256, 256)).astype(np.float32)  # rms 2 mJy
    image = residual.copy()
    image[128, 128] += 1.0  # a 1 Jy peak: dynamic range about 500
    fits.writeto(tmp_path / "im-image.fits", image)
    fits.writeto(tmp_path / "im-residual.fits", residual)
    flags = {"before": {"total": {"fraction": 0.01}}, "after": {"total": {"fraction": 0.25}}}
    (tmp_path / "flags.json").write_text(json.dumps(flags))
    for name in ("p.png", "g-K.png", "g-G.png", "g-truth-x.png", "gx.png"):
        (tmp_path / name).write_bytes(b"\x89PNG\r\n\x1a\n")
    run = tmp_path / "run"
    (run / "logs").mkdir(parents=True)
    (run / "logs" / "r.truth.log").write_text(
        "rc-plot: read g.zarr and t.zarr; wrote g-truth-x.png; gains against the truth: "
        "amplitude scale 1.0010; errors rms 1.00% (median |error| 0.50%), phase rms 2.00 deg "
        "(median 1.00 deg) over 50% of solutions; 0.9 s wall, peak memory 300.0 MiB.\n"
    )
    record = {
        "recipe": "r",
        "status": "succeeded",
        "elapsed_s": 3.5,
        "cwd": str(tmp_path),
        "command": ["rc-run", "r.yml", "x=1"],
        "steps": {
            "r.flag": {"status": "ok", "seconds": 1.5, "peak_rss_mib": 321.0, "exit_code": 0,
                       "outputs": {"flags.json": "sha256:x"}},
            "r.image": {"status": "ok", "seconds": 2.0, "peak_rss_mib": 512.5, "exit_code": 0,
                        "outputs": {"im-image.fits": "sha256:y", "im-residual.fits": "sha256:z"}},
            "r.plot": {"status": "ok", "params": {"output": "p.png"}, "outputs": {}},
            "r.gains": {"status": "ok", "params": {"output": "g.png"}, "outputs": {}},
            "r.truth": {"status": "ok", "params": {"output": "g-truth-x.png"}, "outputs": {}},
            "r.never": {"status": "skipped", "reason": "tagged never"},
        },
    }  # fmt: skip
    (run / "provenance.json").write_text(json.dumps(record))
    text = write_report(run).read_text()
    assert "| r.flag | ok | 1.5 | 321 | 0 |" in text
    assert "| r.never | skipped |  |  |  |" in text
    assert "| r.flag | 1.00% | 25.00% |" in text
    row = next(line for line in text.splitlines() if line.startswith("| r.image | im-image"))
    peak, rms, dr = (float(v) for v in row.strip("|").split("|")[2:5])
    assert abs(peak - 1.0) < 0.01  # printed to 4 significant digits
    assert abs(rms - 0.002) < 0.0001  # the residual's robust rms, not inflated by the source
    assert abs(dr - 500) < 25
    assert "![r.plot](../p.png)" in text
    # a gain table's plots are OUT-TERM.png; another step's OUT-x-y.png is that step's alone
    gains = [line for line in text.splitlines() if line.startswith("![r.gains]")]
    assert gains == ["![r.gains](../g-G.png)", "![r.gains](../g-K.png)"]
    assert "| r.truth | amplitude scale 1.0010; errors rms 1.00% (median |error| 0.50%)" in text
    assert "rc-run r.yml x=1" in text
