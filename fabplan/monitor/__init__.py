"""Watch a run from a browser: a read-only page that follows a fabrication journal as it grows.

The journal (fabplan/execute/journal.py) is the only source: the monitor never talks to a device,
so it can follow a run written by another process, or by another machine into a shared folder.

    follow.py   incremental reader: reads only the bytes appended since its last look, keeps a torn
                last line until its newline arrives, and folds the records into per-shot arrays
    layout.py   the map's static geometry: disc centres from the plan, region/keep-outs/fiducials
                from the design
    state.py    the JSON the page is drawn from (/api/state): run card, progress in time, counts,
                quality, events, binned map
    notify.py   webhook posts on pause, failure, stall and the first uncertain shot
    app.py      the starlette application (page, /api/state, server-sent events, request pause)
    server.py   `fabplan monitor` and `run/dry-run --monitor` (a child process beside the run)

Nothing is imported here: `fabplan --help` must not pay for numpy or the web stack.
"""
