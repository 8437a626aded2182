"""Plotly figures the dashboard shows, built from plain NumPy data (no Streamlit here).

Teacher, student and baseline keep one colour each on every screen, so a
reader who has learnt "the student is orange" on one chart can read the next.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

COLOURS = {"teacher": "#2563eb", "student": "#f97316", "baseline": "#64748b"}


def _colour(name: str) -> str | None:
    return COLOURS.get(name.split()[0].lower())


# --- probabilities and confusion -------------------------------------------------------------
def probability_bars(series: dict[str, np.ndarray], classes, title: str = "") -> go.Figure:
    """Grouped bars, one group per class and one bar per model (e.g. ``{"Teacher": p, "Student": q}``)."""
    labels = [str(c) for c in classes]
    fig = go.Figure([go.Bar(name=name, x=labels, y=np.asarray(p, dtype=float), marker_color=_colour(name),
                            hovertemplate="%{x}: %{y:.2%}<extra>" + name + "</extra>")
                     for name, p in series.items()])
    fig.update_layout(barmode="group", title=title or None, height=300, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", y=1.12, x=1, xanchor="right"))
    fig.update_xaxes(type="category", title=None)
    fig.update_yaxes(range=[0, 1], tickformat=".0%", title="probability")
    return fig


def entropy_curve(temperatures, series: dict[str, np.ndarray], temperature: float,
                  max_bits: float | None = None) -> go.Figure:
    """Entropy (bits) against T per model, with the chosen T marked and the uniform ceiling dashed."""
    fig = go.Figure([go.Scatter(name=name, x=np.asarray(temperatures, dtype=float), y=np.asarray(h, dtype=float),
                                mode="lines", line_color=_colour(name))
                     for name, h in series.items()])
    fig.add_vline(x=temperature, line_dash="dot", line_color="#0f172a",
                  annotation_text=f"T = {temperature:g}", annotation_position="top left")
    if max_bits is not None:
        fig.add_hline(y=max_bits, line_dash="dash", line_color="#94a3b8",
                      annotation_text="uniform", annotation_position="bottom right")
    fig.update_layout(height=260, margin=dict(l=10, r=10, t=30, b=10), showlegend=len(series) > 1,
                      legend=dict(orientation="h", y=1.15, x=1, xanchor="right"))
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
    """A 28×28 image as uint8 blown up by whole pixels, so the browser shows the grid the model sees, not a blur."""
    pixels = np.asarray(image, dtype="float32").reshape(28, 28)
    big = np.kron(pixels, np.ones((scale, scale), dtype="float32"))
    return (np.clip(big, 0, 1) * 255).astype("uint8")
