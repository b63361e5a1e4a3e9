"""Fabrication executor: the only layer that touches hardware.

    from fabplan.execute.runner import execute
    result = execute(plan, stage, laser, "run.jsonl")                 # new run
    result = execute(plan, stage, laser, "run.jsonl", resume=True)    # continue an interrupted one

Modules, one idea each:
  journal    crash-safe JSON-lines journal, durability modes, resume state (pending/uncertain/fired)
  control    pause/stop state machine (deferred pause, immediate stop) and the signal handlers
  preflight  checks before anything moves (plan hash, travel, energies, devices, interlock, trigger)
  context    what a session carries (plan columns, devices, journal, counters, energy setting)
  step       step-and-shoot: move, encoder check, fire, record
  fly        position-synchronised firing per row, trigger lead, read-back and confirmation
  runner     one session: journal, pre-flight, arm, fire, safe stop on every path
  progress   live bar on a terminal, a line per 10 % otherwise
  pulselog   incremental reader of an emulator's pulse log (dry-run ground truth)
  report     end-of-run summary and the report figure
The CLI is fabplan/cli/cmd_run.py (`fabplan run`, `fabplan dry-run`).
"""
