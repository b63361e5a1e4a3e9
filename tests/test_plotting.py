"""Figure helpers at the two extremes: one disc and 250,000 discs (issue 17)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from fabplan.plotting import count_limits, legend_clear, sample_map, span_limits  # noqa: E402


def test_one_count_gets_integer_ticks():
    fig, ax = plt.subplots()
    ax.bar([0], [1])
    count_limits(ax, 1)
    fig.canvas.draw()
    ticks = [t for t in ax.get_yticks() if 0 <= t <= ax.get_ylim()[1]]
    assert ticks and all(float(t).is_integer() for t in ticks)
    assert len(ax.yaxis.get_minorticklocs()) == 0
    plt.close(fig)


def test_one_disc_map_spans_at_least_the_minimum():
    fig, ax = plt.subplots()
    sample_map(ax, np.array([0.0]), np.array([0.0]))
    span_limits(ax, np.array([0.0]), np.array([0.0]), min_span_um=20)
    lo, hi = ax.get_xlim()
    assert hi - lo >= 20 and lo < 0 < hi
    plt.close(fig)


def test_a_quarter_million_discs_are_binned():
    g = np.arange(500) * 20.0 + 10
    x, y = np.meshgrid(g, g)
    fig, ax = plt.subplots()
    m = sample_map(ax, x.ravel(), y.ravel(), c=np.hypot(x, y).ravel())
    assert type(m).__name__ == "QuadMesh" and m.get_array().size == 200 * 200
    fig.colorbar(m, ax=ax)
    fig.savefig(__import__("io").BytesIO(), format="png")  # renders quickly: no 250,000 markers
    plt.close(fig)
    fig, ax = plt.subplots()
    assert type(sample_map(ax, x.ravel()[:100], y.ravel()[:100])).__name__ == "PathCollection"
    plt.close(fig)


def test_a_legend_never_sits_on_the_data():
    fig, ax = plt.subplots()
    rng = np.random.default_rng(0)
    ax.plot(rng.uniform(0, 1, 3000), rng.uniform(0, 1, 3000), ".", label="everywhere")
    leg = legend_clear(ax)
    fig.canvas.draw()
    box = leg.get_window_extent()
    top_data = ax.transData.transform((0.5, 1.0))[1]
    assert box.y0 >= top_data - 1  # every place held data: the legend sits in a strip above it
    assert ax.get_ylim()[1] > 1.1
    plt.close(fig)
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 0.1], label="low line")
    ax.set_ylim(0, 1)
    leg = legend_clear(ax)
    fig.canvas.draw()
    assert leg.get_window_extent().x0 < ax.get_window_extent().x1  # room inside: stays inside
    ax2 = plt.subplots()[1]
    ax2.plot([0, 1], [0, 1], label="_hidden")
    assert legend_clear(ax2) is None
    plt.close("all")


def test_dry_run_report_is_in_fabrication_time(tmp_path):
    """The dry-run figure's timeline runs on the emulator's clock (its wall time is ~0 s) and one
    disc gets a readable map and whole-number counts."""
    from pathlib import Path

    from fabplan.cli import main

    design = Path(__file__).resolve().parents[1] / "designs" / "seed_single_disc.yaml"
    svg = tmp_path / "r.svg"
    assert main(["dry-run", str(design), "--journal", str(tmp_path / "j.jsonl"), "--report", str(svg)]) == 0
    text = svg.read_text()
    assert "emulated fabrication time since first pulse (s)" in text
    assert "wall time" not in text and "fired 1" in text


def test_binned_maps_hold_the_mean_per_bin():
    """The binned image's values against scipy.stats.binned_statistic_2d (an independent binning) on
    the same edges: the mean of c per bin for sample_map, the fraction selected for fraction_map, the
    disc count without c; empty bins are NaN."""
    from scipy.stats import binned_statistic_2d

    from fabplan.plotting import fraction_map

    rng = np.random.default_rng(5)
    x, y = rng.uniform(0, 3000, 30_000), rng.uniform(-500, 500, 30_000)
    x[:5000] *= 0.2  # a dense strip ...
    x[(x > 1000) & (x < 1400)] += 1000  # ... and a band of empty bins
    c = np.hypot(x, y)
    c[::97] = np.nan  # discs without a value count in no bin's mean
    sel = rng.uniform(size=x.size) < 0.3
    edges = [np.linspace(v.min(), v.max() + 1e-9, 41) for v in (x, y)]
    fig, ax = plt.subplots()
    good = np.isfinite(c)
    count = binned_statistic_2d(x, y, None, "count", bins=edges).statistic
    for got, want in (
        (sample_map(ax, x, y, c, bins=40), binned_statistic_2d(x[good], y[good], c[good], "mean", bins=edges).statistic),
        (fraction_map(ax, x, y, sel, bins=40), binned_statistic_2d(x, y, sel.astype(float), "mean", bins=edges).statistic),
        (sample_map(ax, x, y, bins=40), np.where(count > 0, count, np.nan)),
    ):
        assert np.isnan(want).any() and np.isfinite(want).any()
        g = np.ma.filled(got.get_array().astype(float), np.nan).reshape(want.T.shape)
        np.testing.assert_allclose(g, want.T, rtol=1e-12, equal_nan=True)
    plt.close(fig)
    fig, ax = plt.subplots()
    m = fraction_map(ax, x[:10], y[:10], sel[:10], bins=4)  # binned at any size: a fraction, not markers
    assert type(m).__name__ == "QuadMesh" and np.nanmax(m.get_array()) <= 1.0
    plt.close(fig)
