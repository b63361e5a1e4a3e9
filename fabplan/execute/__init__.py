"""Fabrication executor: the only layer that touches hardware.

    from fabplan.execute.session import RunConfig, RunHooks, RunSession
    result = RunSession.start(RunConfig(target="design.yaml", stage="xps://...")).run(RunHooks())
    result = RunSession.resume("run.jsonl").run()                        # continue an interrupted run
    result = RunSession.dry_run(RunConfig(target="design.yaml")).run()   # emulators started here

Modules, one idea each:
  session    the run use case: config -> plan, journal, devices; hooks; pause requests; dry-run lab
  runner     one executor session: journal, pre-flight, arm, fire, safe stop on every path
  records    the journal's record schema (the one place it is written down)
  journal    crash-safe JSON-lines journal writer, durability modes, the one reader (resume state)
  control    pause/stop state machine (deferred pause, immediate stop), signal handlers, RunHooks
  preflight  checks before anything moves (plan hash, travel, energies, devices and their
             abilities, interlock, trigger)
  context    what a session carries (plan columns, devices, journal, counters, energy setting)
  step       step-and-shoot: move, encoder check, fire, record
  fly        position-synchronised firing per row, trigger lead, read-back and confirmation
  progress   live bar on a terminal, a line per 10 % otherwise (and the progress hook)
  pulselog   incremental reader of an emulator's pulse log (dry-run ground truth)
  report     end-of-run summary and the report figure
The CLI is fabplan/cli/cmd_run.py (`fabplan run`, `fabplan dry-run`): argument parsing and printing.
"""
