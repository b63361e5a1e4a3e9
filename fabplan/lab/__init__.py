"""Lasing-threshold logbook: per-disc measurements, spectra, fits and reports (SQLite).

Python API for scripts and the end-to-end demo:

    from fabplan import lab
    con = lab.open_db("lab.sqlite")                       # WAL, migrated
    lab.register_design(con, "designs/dose_matrix.yaml")  # designs + designed discs (optional)
    lab.import_journal(con, "run/journal.jsonl")          # fabricated discs (optional)
    discs = lab.fabricated_discs(con)                     # [{"disc_id", "diameter_um", ...}]
    manifest = lab.simulate_series(discs, "spectra/")     # dry run: files + manifest.csv
    lab.import_manifest(con, manifest)                    # atomic
    results = lab.fit_all(con)                            # thresholds, linewidth, Q, FSR; stored
    lab.report(con, "report/")                            # figures + fits.csv/json

Modules: db (schema, migrations, WAL, transactions, float32 blobs), records (samples, designs,
runs, discs), spectra_io (CSV/TXT, Andor SIF), importer (add / manifest import), spectral
(baseline, integration, batched Lorentzian FWHM, peaks, mode spacing), ratemodel (rate-equation
S-curve), threshold (two-segment + S-curve fits, flags, damage), modes (WGM estimator bridge),
fitting (pipeline + status), queries (read views), figures (report), simulate (dry-run spectra via
sim/lasing.py).
"""

from fabplan.lab.db import open_db, transaction
from fabplan.lab.fitting import fit_all
from fabplan.lab.importer import add_spectrum, import_manifest
from fabplan.lab.queries import disc_rows, fabricated_discs
from fabplan.lab.records import import_journal, register_design


def simulate_series(*args, **kwargs):
    """See `fabplan.lab.simulate.simulate_series` (imported lazily: it pulls in sim/)."""
    from fabplan.lab.simulate import simulate_series as _sim

    return _sim(*args, **kwargs)


def report(*args, **kwargs):
    """See `fabplan.lab.figures.report` (imported lazily: matplotlib)."""
    from fabplan.lab.figures import report as _report

    return _report(*args, **kwargs)


__all__ = [
    "add_spectrum",
    "disc_rows",
    "fabricated_discs",
    "fit_all",
    "import_journal",
    "import_manifest",
    "open_db",
    "register_design",
    "report",
    "simulate_series",
    "transaction",
]
