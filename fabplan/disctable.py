"""DiscTable: every disc of a design as a struct of numpy arrays (no per-disc objects).

Columns, all of length n:
  array_index  int32   index into `array_ids` (the design's arrays, in file order)
  row, col     int32   lattice indices within the array (explicit arrays: row 0, col = index)
  x_um, y_um   float64 disc centre in sample coordinates
  diameter_um  float64 target disc diameter, NaN where the disc is specified by fluence
  fluence_mj_cm2 float64 peak fluence of the shot, NaN where the disc is specified by diameter
  pulses       int32   pulses per shot (>= 1)

Disc ids `<array>-r<row>c<col>` (zero padded to the array's row/col digit count, at least 2) are
derived, not stored, so a million-disc table stays a few tens of MB.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

COLUMNS = ("array_index", "row", "col", "x_um", "y_um", "diameter_um", "fluence_mj_cm2", "pulses")


@dataclass
class DiscTable:
    array_ids: tuple[str, ...]
    array_index: np.ndarray
    row: np.ndarray
    col: np.ndarray
    x_um: np.ndarray
    y_um: np.ndarray
    diameter_um: np.ndarray
    fluence_mj_cm2: np.ndarray
    pulses: np.ndarray
    _ids: np.ndarray | None = field(default=None, repr=False, compare=False)

    def __len__(self) -> int:
        return int(self.x_um.shape[0])

    @classmethod
    def empty(cls, array_ids: tuple[str, ...] = ()) -> DiscTable:
        return cls.concat([], array_ids)

    @classmethod
    def concat(cls, parts: list[DiscTable], array_ids: tuple[str, ...]) -> DiscTable:
        """Join per-array tables (each already using indices into `array_ids`)."""
        dtypes = {"array_index": np.int32, "row": np.int32, "col": np.int32, "pulses": np.int32}
        cols = {}
        for name in COLUMNS:
            dt = dtypes.get(name, np.float64)
            cols[name] = (
                np.concatenate([getattr(p, name) for p in parts]).astype(dt, copy=False)
                if parts
                else np.empty(0, dt)
            )
        return cls(array_ids=tuple(array_ids), **cols)

    def take(self, index: np.ndarray) -> DiscTable:
        """Rows selected by an integer index array or boolean mask (keeps the array names)."""
        return DiscTable(array_ids=self.array_ids, **{name: getattr(self, name)[index] for name in COLUMNS})

    @property
    def ids(self) -> np.ndarray:
        """Stable, human-readable disc ids as a numpy string array, e.g. 'A-r03c07'."""
        if self._ids is None:
            self._ids = make_ids(self.array_ids, self.array_index, self.row, self.col)
        return self._ids

    def index_of(self, disc_ids) -> np.ndarray:
        """Positions of the given ids in this table (-1 where unknown)."""
        ids = self.ids
        order = np.argsort(ids, kind="stable")
        wanted = np.asarray(disc_ids, dtype=ids.dtype if len(ids) else str)
        pos = np.searchsorted(ids[order], wanted)
        pos = np.clip(pos, 0, max(len(ids) - 1, 0))
        found = (ids[order][pos] == wanted) if len(ids) else np.zeros(len(wanted), bool)
        return np.where(found, order[pos] if len(ids) else -1, -1)

    def __repr__(self) -> str:
        from fabplan._display import span

        names = ", ".join(self.array_ids[:4]) + (", ..." if len(self.array_ids) > 4 else "")
        xmin, ymin, xmax, ymax = self.bounds()
        return (f"DiscTable({len(self):,} discs in {len(self.array_ids)} array(s) [{names}]; "
                f"x {xmin:g}..{xmax:g} um, y {ymin:g}..{ymax:g} um; D {span(self.diameter_um, 'um')}, "
                f"F {span(self.fluence_mj_cm2, 'mJ/cm^2')}, pulses {span(self.pulses, '')})")

    def columns(self) -> dict[str, np.ndarray]:
        """Every column by name, disc id first and the array's name instead of its index."""
        cols: dict[str, np.ndarray] = {"disc_id": self.ids,
                                       "array": np.asarray(self.array_ids, dtype=object)[self.array_index]
                                       if len(self) else np.empty(0, dtype=object)}
        cols.update({name: getattr(self, name) for name in COLUMNS if name != "array_index"})
        return cols

    def to_pandas(self):
        """One row per disc (pandas DataFrame; needs pandas, the `data` extra).

        `diameter_um` is NaN for discs the design gives by fluence: the diameter they will have is
        the beam model's, `fabplan.beam.expected_diameters(design, discs)`, or `plan.shots.diameter_um`.

        >>> from fabplan.design import expand, load_design
        >>> from fabplan.shipped import shipped_design
        >>> df = expand(load_design(shipped_design("hex_sweep"))).to_pandas()
        >>> df.shape, list(df.columns[:4])
        ((63, 9), ['disc_id', 'array', 'row', 'col'])
        """
        from fabplan._display import to_pandas

        return to_pandas(self.columns())

    def _repr_html_(self) -> str:
        from fabplan._display import html_summary

        return html_summary(repr(self).split("(", 1)[0] + f": {len(self):,} discs",
                            [("summary", repr(self)[len("DiscTable("):-1])], self.columns())

    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of disc centres."""
        if len(self) == 0:
            return (0.0, 0.0, 0.0, 0.0)
        return (
            float(self.x_um.min()),
            float(self.y_um.min()),
            float(self.x_um.max()),
            float(self.y_um.max()),
        )


def id_digits(n: int) -> int:
    """Zero-padding width for indices 0..n-1 (at least 2, so 'r03c07')."""
    return max(2, len(str(max(n - 1, 0))))


def make_ids(
    array_ids: tuple[str, ...], array_index: np.ndarray, row: np.ndarray, col: np.ndarray
) -> np.ndarray:
    """Vectorised `<array>-r<row>c<col>` with per-array zero padding."""
    out = np.empty(len(row), dtype=object)
    for k, name in enumerate(array_ids):
        sel = np.flatnonzero(array_index == k)
        if sel.size == 0:
            continue
        r, c = row[sel], col[sel]
        rw, cw = id_digits(int(r.max()) + 1), id_digits(int(c.max()) + 1)
        rs = np.char.zfill(r.astype(str), rw)
        cs = np.char.zfill(c.astype(str), cw)
        out[sel] = np.char.add(np.char.add(np.char.add(f"{name}-r", rs), "c"), cs)
    return out.astype(str) if len(out) else np.empty(0, dtype="<U1")


def parse_id(disc_id: str) -> tuple[str, int, int]:
    """'A-r03c07' -> ('A', 3, 7); raises ValueError on a malformed id."""
    name, _, rc = disc_id.rpartition("-r")
    r, sep, c = rc.partition("c")
    if not name or not sep or not r.isdigit() or not c.isdigit():
        raise ValueError(f"not a disc id of the form <array>-r<row>c<col>: {disc_id!r}")
    return name, int(r), int(c)
