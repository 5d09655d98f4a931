"""rc-average's run: read metadata, plan the bins, check the smearing, write a new dataset.

1. One eager pass over the small row columns (TIME, INTERVAL, antennas, UVW, row keys) of
   every partition (read in time order).
2. The bins: per partition, per output group (a channel factor), which input rows go into which
   output row (``radiocloud.core.kernels.average.plan``); row chunks hold whole bins, sized
   from the memory budget. In BDA mode each baseline gets its own power-of-two factors.
3. The smearing report, and a refusal if it is beyond ``max_smearing``, before any write.
4. The lazy averaged partitions (``radiocloud.core.kernels.average.dask``) and rewritten
   SPECTRAL_WINDOW and DATA_DESCRIPTION subtables, written to a temporary dataset that is put
   in place only once complete.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import dask
import dask.array as da
import numpy as np
import xarray as xr

from radiocloud.average.options import Bin, parse_columns
from radiocloud.core.errors import OptionError, UnsupportedLayoutError
from radiocloud.core.io import (
    as_url,
    detect_format,
    list_subtables,
    new_dataset,
    open_dataset,
    open_subtables,
    read_table,
    row_bytes,
    rows_per_chunk,
    write_tables,
)
from radiocloud.core.io.read import PARTITION_KEY
from radiocloud.core.kernels.average import (
    BaselineMotion,
    BinPlan,
    average_channels,
    bda_factors,
    channel_map,
    decorrelation,
    edge_distance,
    plan_bins,
    sampling_interval,
    segments,
)
from radiocloud.core.kernels.average.dask import average_chunks
from radiocloud.core.progress import compute

GROUP_COLS = ("FIELD_ID", "DATA_DESC_ID", "SCAN_NUMBER")
# Bins never span a change of any of these.
KEY_COLUMNS = (
    "FIELD_ID", "DATA_DESC_ID", "SCAN_NUMBER", "STATE_ID", "OBSERVATION_ID", "ARRAY_ID",
    "FEED1", "FEED2",
)  # fmt: skip
# Per-row columns copied from each bin's first row.
COPIED = ("ANTENNA1", "ANTENNA2", *KEY_COLUMNS, "PROCESSOR_ID")
META = ("TIME", "INTERVAL", "ANTENNA1", "ANTENNA2", "UVW")
# Columns the averaging itself writes (besides the visibility columns and COPIED).
WRITTEN = (
    "TIME", "INTERVAL", "EXPOSURE", "TIME_CENTROID", "UVW", "FLAG", "FLAG_ROW", "WEIGHT",
    "SIGMA", "WEIGHT_SPECTRUM", "SIGMA_SPECTRUM",
)  # fmt: skip
SAMPLE_COLUMNS = ("FLAG", "WEIGHT_SPECTRUM", "SIGMA_SPECTRUM")


@dataclass(frozen=True)
class AverageConfig:
    input: str
    output: str
    time_bin: Bin
    chan_bin: Bin
    columns: str | None = None
    keep_autocorrelations: bool = False
    bda: bool = False
    max_decorrelation: float = 0.02
    fov: float | None = None  # diameter, radians; None: the primary beam's FWHM
    max_smearing: float = 0.1
    force: bool = False
    overwrite: bool = False


@dataclass
class SmearingReport:
    """Predicted amplitude losses at the field's edge on the worst baseline."""

    edge_text: str
    time: float = 0.0
    frequency: float = 0.0
    both: float = 0.0
    baseline: str = ""
    length_m: float = 0.0

    def lines(self) -> list[str]:
        return [
            f"smearing at the field edge ({self.edge_text}), worst baseline {self.baseline} "
            f"({self.length_m / 1e3:.2f} km): time {100 * self.time:.2f}%, "
            f"frequency {100 * self.frequency:.2f}%, both {100 * self.both:.2f}%"
        ]


@dataclass
class AverageResult:
    rows_in: int = 0
    rows_out: int = 0
    visibilities_in: int = 0
    visibilities_out: int = 0
    columns: dict = field(default_factory=dict)
    time_factor: str = ""
    chan_factor: str = ""
    smearing: SmearingReport | None = None
    bda_factors: dict = field(default_factory=dict)  # "t x c" -> baselines
    dropped: list = field(default_factory=list)

    @property
    def compression(self) -> float:
        return self.visibilities_in / max(self.visibilities_out, 1)


@dataclass
class _Partition:
    """One input partition with its metadata and plan."""

    ds: xr.Dataset
    meta: xr.Dataset
    ddid: int
    name: str

    def field_ids(self) -> np.ndarray:
        """FIELD_ID per row (a partition of a zarr dataset may hold several fields)."""
        if "FIELD_ID" in self.meta.data_vars:
            return self.meta.FIELD_ID.values.astype(np.int64)
        return np.full(self.meta.sizes["row"], int(self.meta.attrs.get("FIELD_ID", 0)))


def _attr_or_column(ds: xr.Dataset, name: str) -> int:
    if name in ds.attrs:
        return int(ds.attrs[name])
    values = np.unique(np.asarray(ds[name].values))
    if len(values) != 1:
        raise UnsupportedLayoutError(f"a partition holds several {name} values: {values}")
    return int(values[0])


def run(cfg: AverageConfig, *, memory_budget: int, threads: int) -> AverageResult:
    src = as_url(cfg.input)
    dst = as_url(cfg.output)
    if os.path.abspath(src.url) == os.path.abspath(dst.url):
        raise OptionError("OUTPUT is INPUT: rc-average writes a new dataset; name another one")
    fmt_in = detect_format(src)
    with new_dataset(dst, overwrite=cfg.overwrite) as (tmp, fmt_out):
        return _average(cfg, src, tmp, fmt_in, fmt_out, memory_budget, threads)


def _average(cfg, src, tmp, fmt_in, fmt_out, memory_budget, threads) -> AverageResult:
    sub = open_subtables(src)
    n_ant = len(sub.antennas.names)
    probe = open_dataset(
        src, group_cols=GROUP_COLS, sort_by=("TIME",), memory_budget=memory_budget, threads=threads
    )
    vis_columns = {
        name: var.dtype
        for name, var in probe[0].data_vars.items()
        if var.ndim == 3 and np.issubdtype(var.dtype, np.complexfloating)
    }
    mapping = parse_columns(cfg.columns, vis_columns, cfg.input)
    result = AverageResult(columns=mapping)
    have = set(probe[0].data_vars)
    result.dropped = sorted(
        have - set(mapping.values()) - set(COPIED) - set(WRITTEN) - {"TIME_CENTROID"}
    )

    # 1. metadata, eagerly, in one pass
    meta_cols = [c for c in (*META, *KEY_COLUMNS) if c in have]
    metas = dask.compute([ds[meta_cols] for ds in probe])[0]
    parts = []
    for ds, meta in zip(probe, metas, strict=True):
        ddid = _attr_or_column(meta, "DATA_DESC_ID")
        name = ", ".join(
            f"{label} {meta.attrs[key]}"
            for key, label in (("FIELD_ID", "field"), ("SCAN_NUMBER", "scan"))
            if key in meta.attrs
        )
        name = f"{name + ', ' if name else ''}DDID {ddid}"
        parts.append(_Partition(ds=ds, meta=meta, ddid=ddid, name=name))

    # 2. factors
    dt = _common_interval(parts)
    n_time = cfg.time_bin.samples(dt, "s")
    longest = max(_longest_segment(p, dt) for p in parts)
    if n_time > longest:
        raise OptionError(
            f"--time-bin {cfg.time_bin.text} ({n_time} integrations of {dt:g} s) is longer than "
            f"the longest scan ({longest} integrations, {longest * dt:g} s): averaging never "
            f"crosses scans, so use at most --time-bin {longest}"
        )
    spw_factor = {
        spw_id: cfg.chan_bin.samples(_uniform_width(spw, spw_id), "Hz")
        for spw_id, spw in enumerate(sub.spws)
    }
    for spw_id, n in spw_factor.items():
        if n > len(sub.spws[spw_id].chan_freq):
            raise OptionError(
                f"--chan-bin {cfg.chan_bin.text} ({n} channels) is wider than SPW {spw_id} "
                f"({len(sub.spws[spw_id].chan_freq)} channels)"
            )
    dish = float(np.min(sub.antennas.diameters)) if len(sub.antennas.diameters) else 13.5
    edge_text = (
        f"radius {math.degrees(cfg.fov) / 2:.3g}°"
        if cfg.fov is not None
        else f"primary beam half-power radius for {dish:g} m dishes"
    )
    motions = _motions(parts, sub, n_ant)
    if cfg.bda:
        time_lut, chan_lut, loss = _bda_plan(cfg, parts, sub, motions, n_ant, dt, n_time,
                                             spw_factor, dish)  # fmt: skip
        result.smearing = SmearingReport(edge_text, both=float(loss.max()) if loss.size else 0.0)
        combos, counts = np.unique(
            np.stack([time_lut.ravel(), chan_lut.ravel()], axis=1)[_cross_ids(motions, n_ant)],
            axis=0,
            return_counts=True,
        )
        result.bda_factors = {f"{t}x{c}": int(n) for (t, c), n in zip(combos, counts, strict=True)}
        result.time_factor = f"1-{int(time_lut.max())} (per baseline)"
        result.chan_factor = f"1-{int(chan_lut.max())} (per baseline)"
    else:
        time_lut = np.full(n_ant * n_ant, n_time, dtype=np.int64)
        chan_lut = None
        result.time_factor = str(n_time)
        result.chan_factor = ", ".join(sorted({str(v) for v in spw_factor.values()}))
        result.smearing = _smearing(cfg, parts, sub, motions, n_ant, dt, n_time, spw_factor, dish)
        result.smearing.edge_text = edge_text
        if result.smearing.both > cfg.max_smearing and not cfg.force:
            raise OptionError(
                f"averaging by {n_time} integrations and {result.chan_factor} channels loses "
                f"{100 * result.smearing.both:.1f}% of a source's amplitude at the field edge "
                f"({edge_text}, baseline {result.smearing.baseline}), above --max-smearing "
                f"{cfg.max_smearing:g}: use smaller bins or --bda, give the --fov you image, "
                "or pass --force"
            )

    # 3. plans and the lazy averaged partitions
    pairs: dict[tuple[int, int], int] = {}  # (input DDID, channel factor) -> output DDID
    if not cfg.bda:
        for ddid, spw_id in enumerate(sub.ddid_spw):
            pairs[(ddid, spw_factor[spw_id])] = ddid
    outputs = []
    per_row_bytes = max(
        row_bytes(p.ds, [c for c in (*mapping.values(), *SAMPLE_COLUMNS) if c in p.ds])
        for p in parts
    )
    target = rows_per_chunk(per_row_bytes, memory_budget=memory_budget, threads=threads)
    plans = [_plan(cfg, p, sub, time_lut, chan_lut, spw_factor, n_ant, target) for p in parts]
    if fmt_in == "ms":
        # read again in the plan's row chunks: no merging of read chunks into bins
        chunked = open_dataset(
            src, group_cols=GROUP_COLS, sort_by=("TIME",), row_chunks=[pl.chunks for pl in plans]
        )
        if [ds.sizes["row"] for ds in chunked] != [p.ds.sizes["row"] for p in parts]:
            raise AssertionError("the second read of the dataset gave other partitions")
        for p, ds in zip(parts, chunked, strict=True):
            p.ds = ds
    for p, plan in zip(parts, plans, strict=True):
        outputs += _average_partition(p, plan, sub, mapping, pairs)
    for ds_out, _ in outputs:
        result.rows_out += ds_out.sizes["row"]
        result.visibilities_out += int(np.prod(ds_out.FLAG.shape))
    for p in parts:
        result.rows_in += p.meta.sizes["row"]
        result.visibilities_in += int(np.prod(p.ds.FLAG.shape))

    # 4. subtables and the write
    subtables = {name: read_table(src, name) for name in list_subtables(src, fmt_in)}
    if cfg.bda:
        subtables["SPECTRAL_WINDOW"], subtables["DATA_DESCRIPTION"] = _spectral_tables(
            src, sub, pairs
        )
    else:  # SPW and DDID numbers kept: each SPW row averaged by its own factor
        subtables["SPECTRAL_WINDOW"] = [
            _averaged_spw(row, spw_factor[i]) for i, row in enumerate(_spw_rows(src))
        ]
    main = [ds for ds, _ in outputs]
    compute(write_tables(main, subtables, tmp, fmt_out), description=f"averaging {src.name}")
    return result


def _common_interval(parts: list[_Partition]) -> float:
    intervals = [sampling_interval(p.meta.INTERVAL.values, p.name) for p in parts]
    dt = float(np.median(intervals))
    for p, value in zip(parts, intervals, strict=True):
        if abs(value - dt) > 0.01 * dt:
            raise OptionError(
                f"{p.name} has {value:g} s integrations, other partitions {dt:g} s: averaging "
                "needs one sampling; average each part separately"
            )
    return dt


def _segment_ids(meta: xr.Dataset) -> np.ndarray:
    keys = {k: meta[k].values for k in KEY_COLUMNS if k in meta.data_vars}
    return segments(keys, meta.sizes["row"])


def _longest_segment(p: _Partition, dt: float) -> int:
    seg = _segment_ids(p.meta)
    time = p.meta.TIME.values
    lo = np.full(seg.max() + 1, np.inf)
    hi = np.full(seg.max() + 1, -np.inf)
    np.minimum.at(lo, seg, time)
    np.maximum.at(hi, seg, time)
    return int(np.rint((hi - lo) / dt).max()) + 1


def _uniform_width(spw, spw_id: int) -> float:
    width = np.abs(spw.chan_width)
    if np.ptp(width) > 1e-6 * width.max():
        raise OptionError(
            f"SPW {spw_id} has channels of different widths: give --chan-bin as a channel count"
        )
    return float(width[0])


def _motions(parts, sub, n_ant) -> dict[int, BaselineMotion]:
    """Per field: each cross-correlation's largest |(u, v)| and Earth-rotation rate."""
    motions: dict[int, BaselineMotion] = {}
    for p in parts:
        a1, a2 = p.meta.ANTENNA1.values, p.meta.ANTENNA2.values
        fields = p.field_ids()
        for f in np.unique(fields):
            rows = (a1 != a2) & (fields == f)
            if not rows.any():
                continue
            dec = float(sub.fields[f].phase_dir[1])
            m = BaselineMotion.from_rows(a1[rows], a2[rows], p.meta.UVW.values[rows], dec, n_ant)
            motions[int(f)] = motions[int(f)].merge(m, n_ant) if f in motions else m
    return motions


def _cross_ids(motions: dict[int, BaselineMotion], n_ant: int) -> np.ndarray:
    ids = [m.antenna1 * n_ant + m.antenna2 for m in motions.values()]
    return np.unique(np.concatenate(ids)) if ids else np.zeros(0, dtype=np.int64)


def _smearing(cfg, parts, sub, motions, n_ant, dt, n_time, spw_factor, dish) -> SmearingReport:
    report = SmearingReport("")
    combos = {(int(f), sub.ddid_spw[p.ddid]) for p in parts for f in np.unique(p.field_ids())}
    for field_id, spw_id in sorted(combos):
        if field_id not in motions:
            continue
        spw = sub.spws[spw_id]
        m = motions[field_id]
        loss = decorrelation(
            m, freq=spw.chan_freq, chan_width=spw.chan_width,
            edge=edge_distance(spw.chan_freq, cfg.fov, dish), dt=dt,
            time_factor=n_time, chan_factor=spw_factor[spw_id],
        )  # fmt: skip
        worst = int(np.argmax(loss["both"]))
        if loss["both"][worst] >= report.both:
            names = sub.antennas.names
            report.both = float(loss["both"][worst])
            report.baseline = f"{names[m.antenna1[worst]]}-{names[m.antenna2[worst]]}"
            report.length_m = float(m.uv_length[worst])
        report.time = max(report.time, float(loss["time"].max()))
        report.frequency = max(report.frequency, float(loss["frequency"].max()))
    return report


def _bda_plan(cfg, parts, sub, motions, n_ant, dt, n_time, spw_factor, dish):
    """Per-baseline power-of-two factors, as lookup tables indexed by ant1 * n_ant + ant2."""
    max_t = 1 << int(math.log2(n_time))
    spw_ids = sorted({sub.ddid_spw[p.ddid] for p in parts})
    max_c = min(1 << int(math.log2(spw_factor[s])) for s in spw_ids)
    freq = np.concatenate([sub.spws[s].chan_freq for s in spw_ids])
    width = np.concatenate([sub.spws[s].chan_width for s in spw_ids])
    edge = edge_distance(freq, cfg.fov, dish)
    common = {"freq": freq, "chan_width": width, "edge": edge, "dt": dt}
    # autocorrelations do not decorrelate: they take the largest factors
    time_lut = np.full(n_ant * n_ant, max_t, dtype=np.int64)
    chan_lut = np.full(n_ant * n_ant, max_c, dtype=np.int64)
    unset = np.ones(n_ant * n_ant, dtype=bool)
    for m in motions.values():
        nt, nc, _ = bda_factors(
            m, **common, max_time_factor=max_t, max_chan_factor=max_c,
            max_decorrelation=cfg.max_decorrelation,
        )  # fmt: skip
        ids = m.antenna1 * n_ant + m.antenna2
        # a baseline seen in several fields takes the smallest bins any of them allows
        take = unset[ids] | (nt * nc < time_lut[ids] * chan_lut[ids])
        time_lut[ids[take]], chan_lut[ids[take]] = nt[take], nc[take]
        unset[ids] = False
    losses = [
        decorrelation(
            m, **common, time_factor=time_lut[m.antenna1 * n_ant + m.antenna2],
            chan_factor=chan_lut[m.antenna1 * n_ant + m.antenna2],
        )["both"]
        for m in motions.values()
    ]  # fmt: skip
    return time_lut, chan_lut, np.concatenate(losses) if losses else np.zeros(0)


def _plan(cfg, p, sub, time_lut, chan_lut, spw_factor, n_ant, target) -> BinPlan:
    meta = p.meta
    a1 = meta.ANTENNA1.values.astype(np.int64)
    a2 = meta.ANTENNA2.values.astype(np.int64)
    bl = a1 * n_ant + a2
    spw_id = sub.ddid_spw[p.ddid]
    group = chan_lut[bl] if chan_lut is not None else np.full(len(bl), spw_factor[spw_id])
    keep = np.ones(len(bl), bool) if cfg.keep_autocorrelations else a1 != a2
    return plan_bins(
        time=meta.TIME.values, interval=meta.INTERVAL.values, antenna1=a1, antenna2=a2,
        segment=_segment_ids(meta), time_factor=time_lut[bl], group=group, keep=keep,
        target_rows=target, what=p.name,
    )  # fmt: skip


def _average_partition(p, plan: BinPlan, sub, mapping, pairs):
    meta, ds = p.meta, p.ds
    nchan = len(sub.spws[sub.ddid_spw[p.ddid]].chan_freq)
    if ds.chunks["row"] != plan.chunks:
        ds = ds.chunk({"row": plan.chunks})
    ds = ds.chunk({d: -1 for d in ds.dims if d != "row"})

    def column(name, fallback=None):
        return ds[name].data if name in ds else fallback

    weight = column("WEIGHT_SPECTRUM", column("WEIGHT"))
    sigma = column("SIGMA_SPECTRUM", column("SIGMA"))
    copied = {c: ds[c].data for c in COPIED if c in ds}
    outputs = []
    for factor, bins in plan.groups.items():
        if not any(b.n_out for b in bins):
            continue
        chan_out, n_chan_out = channel_map(nchan, factor)
        out = average_chunks(
            bins, chan_out=chan_out, n_chan_out=n_chan_out, flag=ds.FLAG.data,
            flag_row=column("FLAG_ROW"), weight=weight, sigma=sigma, time=ds.TIME.data,
            interval=ds.INTERVAL.data, exposure=column("EXPOSURE", ds.INTERVAL.data),
            time_centroid=column("TIME_CENTROID", ds.TIME.data), uvw=ds.UVW.data,
            visibilities={o: ds[i].data for o, i in mapping.items()}, row_columns=copied,
            sigma_spectrum="SIGMA_SPECTRUM" in ds,
        )  # fmt: skip
        nrow = sum(out["TIME"].chunks[0])
        row_chunks = out["TIME"].chunks[0]
        ddid_out = pairs.setdefault((p.ddid, int(factor)), len(pairs))
        out["DATA_DESC_ID"] = da.full(nrow, ddid_out, dtype=np.int32, chunks=row_chunks)
        for key in ("FIELD_ID", "SCAN_NUMBER"):
            if key not in out and key in meta.attrs:
                out[key] = da.full(nrow, meta.attrs[key], dtype=np.int32, chunks=row_chunks)
        variables = {}
        for name, array in out.items():
            source = mapping.get(name, name)
            dims = ds[source].dims if source in ds else _dims(array.ndim, name)
            variables[name] = (dims, array)
        attrs = {k: v for k, v in ds.attrs.items() if k != PARTITION_KEY}
        attrs["DATA_DESC_ID"] = ddid_out
        outputs.append((xr.Dataset(variables, attrs=attrs), factor))
    return outputs


def _dims(ndim: int, name: str) -> tuple[str, ...]:
    if ndim == 1:
        return ("row",)
    if name == "UVW":
        return ("row", "uvw")
    if ndim == 2:
        return ("row", "corr")
    return ("row", "chan", "corr")


def _spectral_tables(src, sub, pairs: dict[tuple[int, int], int]):
    """SPECTRAL_WINDOW with one row per (input SPW, channel factor) used, and a
    DATA_DESCRIPTION row per output DDID pointing at it (BDA). Output DDIDs are 0..n-1, in
    the order the partitions first asked for them."""
    rows = _spw_rows(src)
    spw_rows: dict[tuple[int, int], int] = {}
    new_spws, spw_ids, pol_ids = [], [], []
    for ddid, factor in sorted(pairs, key=pairs.get):
        key = (sub.ddid_spw[ddid], factor)
        if key not in spw_rows:
            spw_rows[key] = len(new_spws)
            new_spws.append(_averaged_spw(rows[key[0]], factor))
        spw_ids.append(spw_rows[key])
        pol_ids.append(sub.ddid_pol[ddid])
    ddi = xr.Dataset(
        {
            "SPECTRAL_WINDOW_ID": (("row",), np.array(spw_ids, np.int32)),
            "POLARIZATION_ID": (("row",), np.array(pol_ids, np.int32)),
            "FLAG_ROW": (("row",), np.zeros(len(spw_ids), bool)),
        }
    )
    return new_spws, [ddi]


def _spw_rows(src) -> list[xr.Dataset]:
    """SPECTRAL_WINDOW as one in-memory dataset per row."""
    rows = []
    for ds in read_table(src, "SPECTRAL_WINDOW"):
        ds = ds.compute()
        rows += [ds.isel(row=[i]) for i in range(ds.sizes["row"])]
    return rows


def _averaged_spw(row: xr.Dataset, factor: int) -> xr.Dataset:
    row = row.drop_vars("ROWID", errors="ignore")
    freq = np.asarray(row.CHAN_FREQ.values[0], dtype=np.float64)
    width = np.asarray(row.CHAN_WIDTH.values[0], dtype=np.float64)
    extra = {
        name: np.asarray(row[name].values[0], dtype=np.float64)
        for name in ("EFFECTIVE_BW", "RESOLUTION")
        if name in row
    }
    new = average_channels(freq, width, factor, **extra)
    nchan = len(new["CHAN_FREQ"])
    chan_dim = row.CHAN_FREQ.dims[1]
    variables = {}
    for name, var in row.data_vars.items():
        if name in new:
            variables[name] = (var.dims, new[name][None, :].astype(var.dtype))
        elif chan_dim in var.dims:
            continue  # another per-channel column: no meaning after averaging
        elif name == "NUM_CHAN":
            variables[name] = (var.dims, np.array([nchan], dtype=var.dtype))
        else:
            variables[name] = (var.dims, var.values)
    return xr.Dataset(variables)
