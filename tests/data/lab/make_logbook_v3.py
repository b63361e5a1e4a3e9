import numpy as np

from fabplan.lab import fit_all, import_manifest, open_db
from fabplan.lab.simulate import simulate_series

m = simulate_series([("A-r00c00", 8.0), ("A-r00c01", 10.0)], "spectra", np.linspace(2, 60, 8), seed=3, dead_fraction=0)
con = open_db("lab_v3.sqlite")
import_manifest(con, m, sample="s1", allow_unknown=True, meta={"operator": "E16"})
fit_all(con)
con.execute("UPDATE discs SET status='damaged', status_manual=1 WHERE disc_id='A-r00c01'")
con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
con.execute("PRAGMA journal_mode=DELETE")
con.close()
