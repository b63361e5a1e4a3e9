import numpy as np
import pytest

from fabplan.disctable import DiscTable, make_ids, parse_id


def _table(n_rows=3, n_cols=12):
    r = np.repeat(np.arange(n_rows), n_cols).astype(np.int32)
    c = np.tile(np.arange(n_cols), n_rows).astype(np.int32)
    n = r.size
    return DiscTable(
        ("A",), np.zeros(n, np.int32), r, c, c * 20.0, r * 20.0,
        np.full(n, 10.0), np.full(n, np.nan), np.ones(n, np.int32),
    )


def test_ids_are_zero_padded_and_stable():
    t = _table()
    assert t.ids[0] == "A-r00c00"
    assert t.ids[-1] == "A-r02c11"
    assert list(t.index_of(["A-r01c03", "nope"])) == [15, -1]


def test_padding_grows_with_array_size():
    ids = make_ids(("B",), np.zeros(2, np.int32), np.array([0, 120]), np.array([5, 7]))
    assert list(ids) == ["B-r000c05", "B-r120c07"]


def test_parse_id_round_trip_and_error():
    assert parse_id("dose-1-r03c07") == ("dose-1", 3, 7)
    with pytest.raises(ValueError):
        parse_id("A03c07")


def test_take_and_concat_keep_columns():
    t = _table()
    sub = t.take(np.array([1, 2]))
    both = DiscTable.concat([sub, sub], ("A",))
    assert len(both) == 4 and both.x_um.tolist() == [20.0, 40.0, 20.0, 40.0]
