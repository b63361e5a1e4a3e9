from fabplan.cli import run

run()
