"""Lasing-threshold logbook: per-disc measurements, spectra, fits and reports (SQLite or PostgreSQL).

Python API for scripts and the end-to-end demo:

    from fabplan import lab
    con = lab.open_db("lab.sqlite")                       # or "postgresql://user@host/db"; migrated
    lab.register_design(con, "designs/dose_matrix.yaml")  # designs + designed discs (optional)
    lab.import_journal(con, "run/journal.jsonl")          # fabricated discs (optional)
    discs = lab.fabricated_discs(con)                     # [{"disc_id", "diameter_um", ...}]
    manifest = lab.simulate_series(discs, "spectra/")     # dry run: files + manifest.csv
    lab.import_manifest(con, manifest)                    # atomic
    results = lab.fit_all(con)                            # thresholds, linewidth, Q, FSR; stored
    lab.report(con, "report/")                            # figures + fits.csv/json
    lab.Logbook("lab.sqlite").fits()                      # pandas DataFrames (the `data` extra)

Modules: db (URL -> SQLite/PostgreSQL, schema, migrations, transactions, audit, float32 blobs), records (samples, designs,
runs, discs), spectra_io (CSV/TXT, Andor SIF), importer (add / manifest import), spectral
(baseline, integration, batched Lorentzian FWHM, peaks, mode spacing), ratemodel (rate-equation
S-curve), threshold (two-segment + S-curve fits, flags, damage), modes (WGM estimator bridge),
fitting (pipeline + status), queries (read views), dataframes (Logbook, plan/journal/pulse-log
DataFrames), export (NeXus/HDF5, Parquet), figures (report), simulate (dry-run spectra via
sim/lasing.py).
"""

import importlib
from typing import Any

# Public names -> defining module. Imported on first use, so `fabplan --help` (which imports the CLI
# module that names this package) does not pay for scipy and matplotlib.
_EXPORTS = {
    "open_db": "fabplan.lab.db",
    "connect": "fabplan.lab.db",
    "Logbook": "fabplan.lab.dataframes",
    "plan_frame": "fabplan.lab.dataframes",
    "journal_frame": "fabplan.lab.dataframes",
    "pulse_log_frame": "fabplan.lab.dataframes",
    "transaction": "fabplan.lab.db",
    "fit_all": "fabplan.lab.fitting",
    "add_spectrum": "fabplan.lab.importer",
    "import_manifest": "fabplan.lab.importer",
    "disc_rows": "fabplan.lab.queries",
    "fabricated_discs": "fabplan.lab.queries",
    "import_journal": "fabplan.lab.records",
    "register_design": "fabplan.lab.records",
    "simulate_series": "fabplan.lab.simulate",
}


def report(*args, **kwargs):
    """See `fabplan.lab.figures.report` (a function here: the submodule is `figures`)."""
    from fabplan.lab.figures import report as _report

    return _report(*args, **kwargs)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'fabplan.lab' has no attribute {name!r}")


__all__ = [
    "Logbook",
    "connect",
    "add_spectrum",
    "disc_rows",
    "fabricated_discs",
    "fit_all",
    "import_journal",
    "import_manifest",
    "journal_frame",
    "open_db",
    "plan_frame",
    "pulse_log_frame",
    "register_design",
    "report",
    "simulate_series",
    "transaction",
]
