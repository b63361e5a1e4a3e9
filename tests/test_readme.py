"""The README's first lines are the contract with a new user; .ci/run must run them as written."""

from pathlib import Path

from fabplan.docs import generated_files, render_readme

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("```bash", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.strip().splitlines() if line.strip()]


def test_readme_opens_with_two_commands():
    commands = _readme_commands()
    assert len(commands) == 2
    assert "pip install" in commands[0] and "fabplan demo" in commands[0]
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_commands():
    ci = (ROOT / ".ci" / "run").read_text()
    ci_lines = [line.strip() for line in ci.splitlines()]
    assert _readme_commands()[1] in ci_lines
    assert "sed -n '/^```bash$/{n;p;q}' README.md" in ci  # command 1 is taken from the README itself


def test_generated_reference_sections_are_current():
    paths = generated_files(ROOT / "README.md")
    found = "".join(p.read_text() for p in paths)
    for name in ("cli", "design-format"):  # every section lives in the README or docs/reference.md
        assert found.count(f"<!-- BEGIN GENERATED: {name} -->") == 1, name
    for path in paths:
        text = path.read_text()
        assert render_readme(text) == text, f"run `fabplan docs` to regenerate {path.name}"
