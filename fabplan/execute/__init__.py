"""Fabrication executor: the only layer that touches hardware.

Modules: journal (crash-safe JSON-lines log + resume state), control (pause/stop state machine and
signals), progress (live bar), preflight (checks before anything moves), step (step-and-shoot),
fly (position-synchronised firing per row), runner (session: journal + devices + safe shutdown),
report (summary and figure).
"""
