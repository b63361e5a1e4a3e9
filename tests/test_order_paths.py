"""Orders are permutations; serpentine is exact on lattices; 2-opt/Or-opt shortens; bounds hold."""

import itertools

import numpy as np
import pytest

from fabplan.planning.flylines import line_velocity, split_lines
from fabplan.planning.order import order_shots, serpentine
from fabplan.planning.tour import improve, lower_bound, nearest_neighbour, path_length


def lattice(rows, cols, pitch=10.0, angle_deg=0.0):
    r = np.repeat(np.arange(rows), cols)
    c = np.tile(np.arange(cols), rows)
    x, y = c * pitch, r * pitch
    t = np.radians(angle_deg)
    return r, c, np.cos(t) * x - np.sin(t) * y, np.sin(t) * x + np.cos(t) * y


def test_serpentine_exact_on_a_lattice():
    r, c, x, y = lattice(3, 4)
    rng = np.random.default_rng(0)
    perm = rng.permutation(12)  # the table order must not matter
    order, _ = order_shots(x[perm], y[perm], np.zeros(12, int), r[perm], c[perm], [True], "serpentine")
    visited = [(int(r[perm][i]), int(c[perm][i])) for i in order]
    expected = [
        (0, 0),
        (0, 1),
        (0, 2),
        (0, 3),
        (1, 3),
        (1, 2),
        (1, 1),
        (1, 0),
        (2, 0),
        (2, 1),
        (2, 2),
        (2, 3),
    ]
    assert visited == expected
    assert path_length(x[perm], y[perm], order) == pytest.approx(11 * 10.0)


def test_serpentine_follows_columns_when_the_lattice_is_turned():
    r, c, x, y = lattice(4, 3, angle_deg=90.0)  # rows now run along y: lines are the columns
    order, _ = order_shots(x, y, np.zeros(12, int), r, c, [True], "serpentine")
    assert path_length(x, y, order) == pytest.approx(11 * 10.0)
    ys = np.round(y[order], 6)
    assert ys[0] == ys[1] == ys[2] == ys[3]  # first line at constant y, along x


def test_serpentine_flips_choose_the_corner():
    r, c, x, y = lattice(2, 3)
    o = serpentine(x, y, r, True, True)
    assert (r[o[0]], c[o[0]]) == (1, 0) or (r[o[0]], c[o[0]]) == (1, 2)


@pytest.mark.parametrize("n", [1, 2, 5, 300])
def test_nearest_and_improve_are_permutations(n):
    rng = np.random.default_rng(n)
    x, y = rng.uniform(0, 1000, (2, n))
    o = improve(x, y, nearest_neighbour(x, y, 0))
    assert sorted(o.tolist()) == list(range(n))
    if n > 3:
        assert path_length(x, y, o) <= path_length(x, y, nearest_neighbour(x, y, 0)) + 1e-9


def test_kicks_are_deterministic_and_never_lengthen():
    rng = np.random.default_rng(11)
    x, y = rng.uniform(0, 1000, (2, 400))
    start = nearest_neighbour(x, y, 0)
    plain = improve(x, y, start)
    a = improve(x, y, start, kicks=300, seed=4)
    b = improve(x, y, start, kicks=300, seed=4)
    assert a.tolist() == b.tolist() and sorted(a.tolist()) == list(range(400))
    assert path_length(x, y, a) <= path_length(x, y, plain) + 1e-9


def test_improve_gets_close_to_optimal_on_small_sets():
    rng = np.random.default_rng(3)
    for _ in range(5):
        x, y = rng.uniform(0, 100, (2, 7))
        best = min(path_length(x, y, np.array(p)) for p in itertools.permutations(range(7)))
        o = improve(x, y, nearest_neighbour(x, y, 0))
        bound, _ = lower_bound(x, y)
        assert bound <= best + 1e-9  # the reported bound is a true lower bound
        assert path_length(x, y, o) <= 1.25 * best


def test_lower_bound_on_a_line_and_lattice_is_tight():
    x = np.arange(10) * 3.0
    bound, how = lower_bound(x, np.zeros(10))
    assert bound == pytest.approx(27.0)
    r, c, x, y = lattice(5, 5)
    assert lower_bound(x, y)[0] == pytest.approx(24 * 10.0)


def test_grouping_visits_groups_in_ascending_order():
    r, c, x, y = lattice(3, 4)
    group = np.where(c % 2 == 0, 2.0, 1.0)  # alternating attenuator settings along each row
    order, _ = order_shots(x, y, np.zeros(12, int), r, c, [True], "auto", group)
    g = group[order]
    assert g[:6].tolist() == [1.0] * 6 and g[6:].tolist() == [2.0] * 6
    assert sorted(order.tolist()) == list(range(12))


def test_as_listed_and_irregular_arrays():
    rng = np.random.default_rng(5)
    x, y = rng.uniform(0, 100, (2, 50))
    z = np.zeros(50, int)
    assert order_shots(x, y, z, z, np.arange(50), [False], "as-listed")[0].tolist() == list(range(50))
    o, _ = order_shots(x, y, z, z, np.arange(50), [False], "auto")
    assert sorted(o.tolist()) == list(range(50))


def test_fly_lines_split_where_spacing_or_setting_changes():
    x = np.array([0.0, 10, 20, 30, 45, 60, 75, 85])
    n = len(x)
    att = np.array([1.0] * 7 + [2.0])
    line = split_lines(x, np.zeros(n), np.zeros(n), np.zeros(n, int), att, np.ones(n, int), 0.1)
    # 0-30 at 10 um; 45-75 at 15 um (the 15 um step from 30 starts... a new line at 45); 85: new setting
    assert line.tolist() == [0, 0, 0, 0, 1, 1, 1, 2]


def test_fly_velocity_limits():
    # pitch 20 um at 10 kHz allows 200 mm/s; 50 ns jitter and 0.1 um tolerance allow 2 m/s
    v = line_velocity(np.array([20.0, 20.0, 0.0]), np.array([1, 2, 1]), 1e6, 0.1, 50e-9, 1e4)
    assert v[0] == pytest.approx(2e5)
    assert v[1] == pytest.approx(2e5)  # 2 pulses = 2 passes, one pulse per trigger each
    assert v[2] == pytest.approx(1e3)  # a single-shot line runs slowly (short run-up)
    v = line_velocity(np.array([20.0]), np.array([1]), 5e4, 0.1, 50e-9, 1e4)
    assert v[0] == pytest.approx(5e4)  # the motion limit
    v = line_velocity(np.array([2000.0]), np.array([1]), 1e7, 0.1, 50e-9, 1e4)
    assert v[0] == pytest.approx(2e6)  # tolerance / jitter
