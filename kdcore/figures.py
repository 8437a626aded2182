"""Plotly figures the dashboard shows, built from plain NumPy data (no Streamlit here).

Teacher, student and baseline keep one colour each on every screen, so a
reader who has learnt "the student is orange" on one chart can read the next.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go

from . import metric as metrics
from .metric import Metric

COLOURS = {"teacher": "#2563eb", "student": "#f97316", "baseline": "#64748b", "intermediate": "#a855f7",
           "pretrain": "#0d9488"}


def _colour(name: str) -> str | None:
    return COLOURS.get(name.split()[0].lower())


# --- probabilities and confusion -------------------------------------------------------------
def probability_bars(series: dict[str, np.ndarray], classes, title: str = "", full_scale: bool = True) -> go.Figure:
    """Grouped bars, one group per class and one bar per model (e.g. ``{"Teacher": p, "Student": q}``).

    Values go in as plain lists, not NumPy arrays: plotly would ship arrays
    base64-packed, and the browser tests read the bars' heights back from the page.
    """
    labels = [str(c) for c in classes]
    fig = go.Figure([go.Bar(name=name, x=labels, y=np.asarray(p, dtype=float).tolist(),
                            marker_color=_colour(name), hovertemplate="%{x}: %{y:.2%}<extra>" + name + "</extra>")
                     for name, p in series.items()])
    fig.update_layout(barmode="group", title=title or None, height=300, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", y=1.12, x=1, xanchor="right"))
    fig.update_xaxes(type="category", title=None)
    fig.update_yaxes(range=[0, 1] if full_scale else None, rangemode="tozero", tickformat=".0%", title="probability")
    return fig


def entropy_curve(temperatures, series: dict[str, np.ndarray], temperature: float,
                  max_bits: float | None = None) -> go.Figure:
    """Entropy (bits) against T per model, with the chosen T marked and the uniform ceiling dashed."""
    fig = go.Figure([go.Scatter(name=name, x=np.asarray(temperatures, dtype=float).tolist(),
                                y=np.asarray(h, dtype=float).tolist(),
                                mode="lines", line_color=_colour(name))
                     for name, h in series.items()])
    fig.add_vline(x=temperature, line_dash="dot", line_color="#0f172a",
                  annotation_text=f"T = {temperature:g}", annotation_position="bottom right")
    if max_bits is not None:
        fig.add_hline(y=max_bits, line_dash="dash", line_color="#94a3b8",
                      annotation_text="uniform", annotation_position="bottom right")
    fig.update_layout(height=260, margin=dict(l=10, r=10, t=30, b=10), showlegend=len(series) > 1,
                      legend=dict(orientation="h", y=1.15, x=0, xanchor="left"))
    fig.update_xaxes(title="temperature T")
    fig.update_yaxes(title="entropy (bits)", rangemode="tozero")
    return fig


def confusion_heatmap(matrix: np.ndarray, classes, title: str = "") -> go.Figure:
    """Counts with true class down the side and predicted class along the top, numbers in the cells."""
    labels = [str(c) for c in classes]
    fig = go.Figure(go.Heatmap(z=matrix, x=labels, y=labels, text=matrix, texttemplate="%{text}",
                               colorscale="Blues", showscale=False,
                               hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>"))
    fig.update_layout(title=title or None, height=380, margin=dict(l=10, r=10, t=40, b=10))
    fig.update_xaxes(title="predicted", type="category", side="top")
    fig.update_yaxes(title="true", type="category", autorange="reversed")
    return fig


def enlarged(image: np.ndarray, scale: int = 5) -> np.ndarray:
    """An H×W (grey) or H×W×3 image as uint8 blown up by whole pixels: the browser shows the grid the model sees."""
    pixels = np.asarray(image, dtype="float32")
    if pixels.ndim == 3 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    block = np.ones((scale, scale) + (1,) * (pixels.ndim - 2), dtype="float32")
    big = np.kron(pixels, block)
    return (np.clip(big, 0, 1) * 255).astype("uint8")


# --- training curves --------------------------------------------------------------------------
# Inputs are what kdcore already produces: a Progress snapshot's ``series`` ({name: [epoch records]})
# and ``batches`` ({name: [(step, loss)]}), or the run store's ``epochs(run_id)``.
_LOSS_TERMS = (("loss", "total", "solid"), ("soft", "soft", "dash"), ("hard", "hard", "dot"),
               ("embedding", "embedding", "dashdot"), ("hidden", "hidden states", "longdash"),
               ("attention", "attention", "longdashdot"))  # the last three: TinyBERT's intermediate stage


def _curve_layout(fig: go.Figure, title: str, height: int = 320) -> go.Figure:
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=60, b=10), hovermode="x unified")
    return fig


def _waiting(fig: go.Figure, empty: bool, text: str = "no epoch finished yet") -> None:
    if empty:
        fig.add_annotation(text=text, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5,
                           font=dict(color="#94a3b8"))


def loss_curves(series: dict[str, list[dict]], batches: dict[str, list] | None = None) -> go.Figure:
    """Left: the loss after every batch; right: total, soft and hard loss per epoch, per model.

    Keras reports a batch's loss as the running mean since the epoch began, so
    the left panel is smooth within an epoch and may step at epoch boundaries.
    A loss term that is zero throughout (the soft term of a teacher or a
    baseline) is left out rather than drawn as a flat line. The two panels
    are laid out by hand: ``make_subplots`` costs more than the rest of the
    figure, and a live page rebuilds it every second.
    """
    fig = go.Figure()
    for name, points in (batches or {}).items():
        if points:
            steps, losses = zip(*points)
            dash = next((d for key, _, d in _LOSS_TERMS if name.endswith(" " + key)), "solid")  # a term's own series
            fig.add_trace(go.Scatter(x=steps, y=losses, name=f"{name} (batch)", mode="lines",
                                     line=dict(color=_colour(name), width=1, dash=dash), legendgroup=name.split()[0]))
    for name, records in series.items():
        epochs = [r["epoch"] for r in records]
        for key, label, dash in _LOSS_TERMS:
            values = [r.get(key) for r in records]
            if any(v for v in values):
                fig.add_trace(go.Scatter(x=epochs, y=values, name=f"{name} {label}", mode="lines+markers",
                                         line=dict(color=_colour(name), dash=dash), legendgroup=name,
                                         xaxis="x2", yaxis="y2"))
    _waiting(fig, not fig.data, "no batch yet")
    panel = dict(showarrow=False, xref="paper", yref="paper", y=1.0, yanchor="bottom", font=dict(color="#64748b"))
    fig.add_annotation(text="per batch", x=0.23, **panel)
    fig.add_annotation(text="per epoch", x=0.77, **panel)
    fig.update_layout(xaxis=dict(domain=[0, 0.46], title="batch (running mean in its epoch)"),
                      xaxis2=dict(domain=[0.54, 1], title="epoch", dtick=_epoch_dtick(series), anchor="y2"),
                      yaxis=dict(title="loss", rangemode="tozero"),
                      yaxis2=dict(anchor="x2", rangemode="tozero"))
    return _curve_layout(fig, "Training loss")


def _epoch_dtick(*series: dict) -> int:
    """Whole-epoch ticks, ten at most, so a 40-epoch run does not crowd its axis."""
    last = max((r["epoch"] for one in series for records in one.values() for r in records), default=1)
    return max(1, -(-last // 10))


def _held_out(series: dict[str, list[dict]], m: Metric) -> tuple[str, str]:
    """(record key, label) of the held-out score per epoch: ``valid_<metric>`` if kept, else ``test_<metric>``.

    Every run scores its valid split each epoch and its test split once, on
    the final model; records kept before runs had a valid split hold the test
    score per epoch, and are drawn with it.
    """
    if any(f"valid_{m.name}" in r for records in series.values() for r in records):
        return f"valid_{m.name}", "valid"
    return f"test_{m.name}", "test"


def score_curves(series: dict[str, list[dict]], teacher_score: float | None = None,
                 metric: Metric | None = None) -> go.Figure:
    """Held-out (solid) and training (dotted) score per epoch, per model, in the run's own metric.

    ``teacher_score`` draws the teacher's test score as a horizontal line: the
    ceiling a distilled student is measured against. ``metric`` defaults to
    the one the records are scored by; a log-space metric (perplexity) gets a
    log axis.
    """
    m = metric or metrics.of_epochs(series)
    keys = (*_held_out(series, m), "solid"), (m.name, "train", "dot")
    fig = go.Figure()
    for name, records in series.items():
        epochs = [r["epoch"] for r in records]
        for key, label, dash in keys:
            if any(key in r for r in records):
                fig.add_trace(go.Scatter(x=epochs, y=[r.get(key) for r in records], name=f"{name} {label}",
                                         mode="lines+markers", line=dict(color=_colour(name), dash=dash)))
    if teacher_score is not None:
        fig.add_hline(y=teacher_score, line_dash="dash", line_color=COLOURS["teacher"],
                      annotation_text=f"teacher {m.format(teacher_score)}", annotation_position="bottom right")
    _waiting(fig, not fig.data)
    fig.update_xaxes(title="epoch", dtick=_epoch_dtick(series))
    fig.update_yaxes(title=m.name, **m.axis(empty=not fig.data))
    return _curve_layout(fig, f"{m.name.capitalize()} per epoch{m.direction}")


# --- a running job's curves, shared by every session that watches it ---------------------------------
LIVE_MAX_AGE_S = 0.5  # how stale the per-batch losses may be shown; an epoch's point is never held back
LIVE_KEEP = 8         # jobs whose figures are kept


@dataclass
class _Live:
    writes: int       # the job's Progress.writes when its state was read for these figures
    marker: tuple     # status, phase, epoch and results then: a change is shown at once
    built: float
    figures: tuple


class Frozen(go.Figure):
    """A finished figure whose ``to_dict()`` is computed once and then shared.

    ``st.plotly_chart`` calls ``to_dict()`` on every run, and for the live
    curves that deep copy is most of the chart's cost (1.5 and 2.3 ms for the
    two figures of a 20-epoch job, against 0.1 ms to encode the copy with
    orjson): twenty viewers paid it forty times a second for the same
    figures. Nothing may change a Frozen figure after it is built; its
    readers only serialise the dict.
    """

    def to_dict(self):
        if getattr(self, "_frozen_dict", None) is None:
            self._frozen_dict = super().to_dict()
        return self._frozen_dict


_LIVE: dict[str, _Live] = {}
_LIVE_LOCKS: dict[str, threading.Lock] = {}
_LIVE_GUARD = threading.Lock()


def live_curves(key: str, progress, max_age_s: float = LIVE_MAX_AGE_S) -> tuple[go.Figure, go.Figure]:
    """(accuracy, loss) figures of a job's :class:`~kdcore.progress.Progress`, built once and shared.

    Every watching session reruns its job panel every second, and building the
    two figures costs ~60 ms of CPU (the copy of the progress and the Plotly
    objects), so twenty viewers rebuilt the same pictures twenty times a second
    and took the CPU the training needed (``lab/viewers.py``). Here
    the figures are rebuilt only when the job has written since they were
    built, and then either something a reader waits for changed (an epoch, a
    phase, the status, a result) or they are older than ``max_age_s``: the
    per-batch loss moves a hundred times a second, and half a second of it is
    not worth a rebuild per session. One session builds while the others keep
    showing the figures they have, unless an epoch's point is missing from them.
    Streamlit serialises a figure without changing it, so sharing is safe.
    """
    writes = progress.writes
    light = progress.snapshot(curves=False)
    marker = (light["status"], light["phase"], light["epoch"], tuple(sorted(light["results"])))

    def fresh(entry: _Live | None) -> bool:
        return entry is not None and (entry.writes >= writes or
                                      (entry.marker == marker and time.monotonic() - entry.built < max_age_s))

    entry = _LIVE.get(key)
    if fresh(entry):
        return entry.figures
    with _LIVE_GUARD:
        lock = _LIVE_LOCKS.setdefault(key, threading.Lock())
    if entry is not None and entry.marker == marker and lock.locked():
        return entry.figures  # another session is refreshing the batch losses right now
    with lock:
        entry = _LIVE.get(key)
        if fresh(entry):
            return entry.figures
        snap = progress.snapshot()
        m = metrics.of_epochs(snap["series"]) if snap["series"] else metrics.of_record(snap["results"])
        built = tuple(Frozen(fig) for fig in (score_curves(snap["series"], snap["results"].get(f"teacher_{m.name}"), m),
                                               loss_curves(snap["series"], snap["batches"])))
        with _LIVE_GUARD:
            _LIVE[key] = _Live(writes, marker, time.monotonic(), built)
            for old in sorted(_LIVE, key=lambda k: _LIVE[k].built)[:-LIVE_KEEP]:
                del _LIVE[old]
                _LIVE_LOCKS.pop(old, None)
    return built


def runs_overlay(runs: dict[str, dict[str, list[dict]]], metric: Metric | None = None) -> go.Figure:
    """The held-out score per epoch of several stored runs, one line per (run, model) pair.

    ``runs`` maps a run's label to its ``RunStore.epochs`` dict; models keep
    their colour and runs are told apart by line style. ``metric`` defaults to
    the one the records are scored by (a language model's runs: perplexity).
    Each run draws its valid score, or its test score if it was kept before
    runs had a valid split; the legend says which.
    """
    dashes = ("solid", "dash", "dot", "dashdot", "longdash", "longdashdot")
    merged = {f"{label} {name}": records for label, series in runs.items() for name, records in series.items()}
    m = metric or metrics.of_epochs(merged)
    fig = go.Figure()
    for i, (label, series) in enumerate(runs.items()):
        held, split = _held_out(series, m)
        for name, records in series.items():
            points = [(r["epoch"], r[held]) for r in records if r.get(held) is not None]
            if points:
                x, y = zip(*points)
                fig.add_trace(go.Scatter(x=x, y=y, name=f"{label} · {name} {split}", mode="lines+markers",
                                         line=dict(color=_colour(name), dash=dashes[i % len(dashes)])))
    _waiting(fig, not fig.data, "no epochs recorded for the selected runs")
    fig.update_xaxes(title="epoch", dtick=_epoch_dtick(*runs.values()))
    fig.update_yaxes(title=m.label, **m.axis(empty=not fig.data))
    return _curve_layout(fig, f"{m.label} per epoch{m.direction}", height=420)


# --- experiments over seeds -------------------------------------------------------------------
def experiment_bars(results: dict) -> go.Figure:
    """Teacher, distilled student and baseline: mean test score over seeds, ± one std as error bars.

    ``results`` is :func:`kdcore.experiments.run_experiment`'s dict. The y-axis
    starts near the lowest bar, not at 0: the differences that matter here are
    a point or two, invisible on a 0-100 % axis; the error bars show whether
    they exceed the seed-to-seed spread.
    """
    m = metrics.of_record(results)
    bars = [("teacher", "Teacher", {"mean": results.get(f"teacher_{m.name}"), "std": 0.0}),
            ("student", "Distilled student", results.get(f"student_{m.name}") or {}),
            ("baseline", "Baseline (from scratch)", results.get(f"baseline_{m.name}") or {})]
    bars = [(key, label, s) for key, label, s in bars if s.get("mean") is not None]
    shown, hover = m.hover(), m.hover(precise=True)
    fig = go.Figure([go.Bar(x=[label], y=[s["mean"]], name=label, marker_color=COLOURS[key],
                            error_y=dict(type="data", array=[s.get("std") or 0.0], visible=True),
                            text=[format(s["mean"], shown)], textposition="inside",
                            hovertemplate=f"{label}: %{{y:{hover}}} ± {format(s.get('std') or 0, hover)}<extra></extra>")
                     for key, label, s in bars])
    fig.update_layout(showlegend=False, height=340, margin=dict(l=10, r=10, t=40, b=10),
                      title=f"Mean test {m.name} over {len(results.get('seeds', []))} seed(s), ± 1 std{m.direction}")
    if m.percent:
        low = min((s["mean"] - 3 * (s.get("std") or 0) for _, _, s in bars), default=0.0)
        fig.update_yaxes(range=[max(0.0, low - 0.03), 1.0], tickformat=".0%", title=f"test {m.name}")
    else:
        fig.update_yaxes(rangemode="tozero", title=f"test {m.name}")
    return fig


def methods_bars(results: dict) -> go.Figure:
    """Each method's paired gain over the scratch student: mean over seeds, its 95 % t-interval as error bars.

    ``results`` is :func:`kdcore.comparison.run_methods`'s dict. The gain, not
    the score, is drawn: every method shares the seed's scratch student, so
    the paired gain is what the interval is about. Plain KD (the reference) is
    in the student's colour, the others in the intermediate colour; a dotted
    line at KD's gain shows which bars clear it. Methods that could not run
    are left out (the table says why).
    """
    m = metrics.of_record(results)
    scale = 100 if m.percent else 1
    rows = [r for r in results.get("table", []) if r.get("applicable") and r["gain_vs_scratch"]["mean"] is not None]
    means = [scale * r["gain_vs_scratch"]["mean"] for r in rows]
    cis = [[scale * v for v in (r["gain_vs_scratch"]["ci95"] or [r["gain_vs_scratch"]["mean"]] * 2)] for r in rows]
    fig = go.Figure(go.Bar(
        x=[r["method"] for r in rows], y=means,
        marker_color=[COLOURS["student" if r["method"] == "kd" else "intermediate"] for r in rows],
        error_y=dict(type="data", symmetric=False, visible=True, array=[hi - mu for mu, (_, hi) in zip(means, cis)],
                     arrayminus=[mu - lo for mu, (lo, _) in zip(means, cis)]),
        text=[f"{mu:+.{m.digits}f}" for mu in means], textposition="inside",
        customdata=[[lo, hi] for lo, hi in cis],
        hovertemplate=f"%{{x}}: %{{y:+.{m.digits}f}} {m.unit} (95 %% CI %{{customdata[0]:+.{m.digits}f}} to "
                      f"%{{customdata[1]:+.{m.digits}f}})<extra></extra>".replace("%%", "%")))
    kd = next((mu for r, mu in zip(rows, means) if r["method"] == "kd"), None)
    if kd is not None:
        fig.add_hline(y=kd, line_dash="dot", line_color=COLOURS["student"], annotation_text="kd",
                      annotation_position="top right")
    fig.add_hline(y=0, line_color=COLOURS["baseline"], line_width=1)
    good = "" if m.higher_is_better else " (negative: better)"
    fig.update_layout(showlegend=False, height=360, margin=dict(l=10, r=10, t=50, b=10),
                      title=f"Gain over the scratch student, {len(results.get('seeds', []))} seed(s), 95 % CI{good}")
    fig.update_yaxes(title=f"test {m.name} gain ({m.unit})", zeroline=False)
    return fig


def sweep_heatmap(frame, value: str = "gain", units: int | None = None) -> go.Figure:
    """Temperature across, alpha down, ``value`` (gain over the baseline, or student accuracy) in the cells.

    ``frame`` is :func:`kdcore.experiments.sweep`'s DataFrame; with several
    student widths, ``units`` picks one (default: the first). Gains are drawn
    on a diverging scale centred on 0, so "distillation hurt" is red at a glance.
    The cells show the valid split's ``valid_<value>`` (what the best cell is
    picked by: the test split is for reporting the pick, not for making it);
    sweeps kept before runs had a valid split show their test ``value``.
    """
    if units is None and len(frame):
        units = int(frame["units"].iloc[0])
    split = "valid" if f"valid_{value}" in frame else "test"
    value = f"valid_{value}" if split == "valid" else value
    cells = frame[frame["units"] == units] if len(frame) else frame
    table = cells.pivot_table(index="alpha", columns="temperature", values=value) if len(cells) else None
    gain = value.endswith("gain")
    m = metrics.get(cells["metric"].iloc[0] if "metric" in cells and len(cells) else None)
    if table is None:
        fig = go.Figure()
        _waiting(fig, True, "no sweep cell finished yet")
        return fig
    z = table.to_numpy(dtype=float)
    limit = float(np.nanmax(np.abs(z))) if gain and np.isfinite(z).any() else None
    fig = go.Figure(go.Heatmap(
        z=z, x=[f"T={t:g}" for t in table.columns], y=[f"α={a:g}" for a in table.index],
        text=[[("+" if gain and v > 0 else "") + f"{(100 if m.percent else 1) * v:.1f}" for v in row] for row in z],
        texttemplate="%{text}", colorscale=("RdBu" if m.higher_is_better else "RdBu_r") if gain else "Blues",
        zmid=0 if gain else None, zmin=-limit if limit else None, zmax=limit if limit else None,
        colorbar=dict(title=m.unit if gain else m.name),
        hovertemplate="%{y}, %{x}: %{text}<extra></extra>"))
    if gain:
        what = (f"{split} gain over the baseline ({m.unit})" if m.higher_is_better else
                f"{split} change in {m.name} vs the baseline (negative: helped)")
    else:
        what = f"student {split} {m.name}" + (" (%)" if m.percent else "")
    fig.update_layout(title=f"{units}-unit student: {what}", height=320, margin=dict(l=10, r=10, t=50, b=10))
    fig.update_yaxes(autorange="reversed")
    return fig


# --- deployment --------------------------------------------------------------------------------
_FORMAT_SYMBOLS = {"keras": "circle", "none": "square", "float16": "diamond", "int8": "triangle-up"}


def _latency_sizes(latencies: list) -> list[float]:
    """Marker diameters growing with the log of latency: exports and Keras calls differ by 1,000×,
    so a linear scale would show one huge disc and specks. Unmeasured points get the smallest size."""
    known = [v for v in latencies if v]
    if not known:
        return [10.0] * len(latencies)
    low = min(known)
    return [10.0 if not v else float(min(48.0, 10.0 + 9.0 * np.log10(v / low))) for v in latencies]


def deployment_map(points: list[dict], front: list[dict], metric: Metric = metrics.ACCURACY) -> go.Figure:
    """Every model and export: file size (log) across, the test metric up, marker size = latency at batch 1.

    ``points`` and ``front`` come from :func:`kdcore.export.catalogue` and
    :func:`kdcore.export.pareto`. Colour is the kind of model (teacher,
    student), the symbol its format (.keras, or the LiteRT quantization);
    the dashed line joins the Pareto front, where nothing is both smaller and
    more accurate. Points without a score cannot be placed and are left out.
    Perplexity (lower is better) goes up on a log axis.
    """
    from .export import duration

    placed = [p for p in points if p.get("score") is not None]
    sizes = dict(zip((p["path"] for p in placed), _latency_sizes([p.get("latency_ms") for p in placed])))
    fig = go.Figure()
    for kind in dict.fromkeys(p["kind"] for p in placed):
        group = [p for p in placed if p["kind"] == kind]
        fig.add_trace(go.Scatter(
            name=kind, x=[p["bytes"] / 1024 for p in group], y=[p["score"] for p in group], mode="markers",
            marker=dict(color=_colour(kind) or "#7c3aed", size=[sizes[p["path"]] for p in group], opacity=0.8,
                        symbol=[_FORMAT_SYMBOLS.get(p["format"], "circle") + ("" if p.get("latency_ms") else "-open")
                                for p in group], line=dict(width=1, color="#0f172a")),
            text=[f"{p['label']} ({p['format']})<br>latency {duration(p.get('latency_ms'))}" for p in group],
            hovertemplate="%{text}<br>%{x:,.1f} KB · %{y:" + metric.hover(precise=True) + "}<extra></extra>"))
    if len(front) > 1:
        fig.add_trace(go.Scatter(name="Pareto front", x=[p["bytes"] / 1024 for p in front],
                                 y=[p["score"] for p in front], mode="lines", line_shape="hv",
                                 line=dict(color="#94a3b8", dash="dash"), hoverinfo="skip"))
    _waiting(fig, not placed, f"no model with a measured {metric.name} yet")
    fig.update_layout(title=dict(text=f"Size, {metric.name} and latency (bigger marker = slower at batch 1)",
                                 subtitle=dict(text="● .keras (Keras call) · ■ LiteRT float32 · ◆ float16 · ▲ int8; "
                                                    "hollow: latency not measured yet")),
                      height=460, margin=dict(l=10, r=10, t=80, b=10))
    fig.update_xaxes(type="log", title="file size (KB, log scale)")
    fig.update_yaxes(title=f"test {metric.name}{metric.direction}" + (", log scale" if metric.log_space else ""),
                     **metric.axis())
    return fig


# --- attention over a sentence (task text) ----------------------------------------------------------
def attention_heatmaps(maps: dict[str, np.ndarray], tokens: list[str], title: str = "",
                       softmax: bool = True) -> go.Figure:
    """Side-by-side heatmaps, one per model (``{"Teacher · layer 4": (n, n)}``): row = the token that
    attends, column = the token attended to.

    Tokens are placed by position with the words as tick labels, so a word
    that occurs twice keeps two rows (a categorical axis would merge them).
    The panels are laid out by hand on domains, as :func:`loss_curves` does.
    Values go in as plain lists (the browser tests read them back).
    """
    fig = go.Figure()
    n, k = len(tokens), max(len(maps), 1)
    gap = 0.08
    width = (1 - gap * (k - 1)) / k
    ticks = dict(tickmode="array", tickvals=list(range(n)), ticktext=list(tokens), tickangle=-60)
    layout = {}
    for i, (name, matrix) in enumerate(maps.items()):
        suffix = "" if i == 0 else str(i + 1)
        lo = i * (width + gap)
        fig.add_trace(go.Heatmap(z=np.asarray(matrix, dtype=float).round(4).tolist(), x=list(range(n)),
                                 y=list(range(n)), colorscale="Blues", zmin=0 if softmax else None,
                                 zmax=1 if softmax else None, showscale=i == k - 1, name=name,
                                 xaxis=f"x{suffix}", yaxis=f"y{suffix}",
                                 hovertemplate=name + "<br>%{y} → %{x}: %{z:.3f}<extra></extra>"))
        layout[f"xaxis{suffix}"] = dict(domain=[lo, lo + width], anchor=f"y{suffix}", **ticks)
        layout[f"yaxis{suffix}"] = dict(anchor=f"x{suffix}", autorange="reversed", **ticks)
        fig.add_annotation(text=name, x=lo + width / 2, y=1.0, xref="paper", yref="paper", yanchor="bottom",
                           showarrow=False, font=dict(color=_colour(name) or "#334155"))
    fig.update_layout(title=title or None, height=260 + 14 * n, margin=dict(l=10, r=10, t=70, b=10), **layout)
    return fig
