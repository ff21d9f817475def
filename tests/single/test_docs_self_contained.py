"""The single-experiment docs, code and --help cite papers by title and the repository's own
docs, never files outside the repository (a design note, a folder of source documents)."""

import re
from pathlib import Path

import pytest

from manylift.cli.main import main

ROOT = Path(__file__).resolve().parents[2]
FILES = [
    "docs/single.md", "docs/bayes.md", "docs/personalize.md",
    *[str(p.relative_to(ROOT)) for folder in ("single", "personalize", "policy")
      for p in sorted((ROOT / "src/manylift" / folder).rglob("*.py"))],
    "src/manylift/report/single.py", "src/manylift/report/bayes.py",
    "src/manylift/report/personalize.py", "src/manylift/cli/_analyze.py",
    "src/manylift/cli/_bayes.py", "src/manylift/cli/_personalize.py",
    "src/manylift/data/datasets.py", "src/manylift/simulate/single.py",
    "src/manylift/simulate/multiarm.py", "src/manylift/simulate/segments.py",
]
OUTSIDE = re.compile(r"DESIGN\.md|STYLE\.md|shared/|seeds/|\.\./shared")


@pytest.mark.parametrize("name", FILES)
def test_file_cites_nothing_outside_the_repository(name):
    text = (ROOT / name).read_text()
    hits = [line.strip() for line in text.splitlines() if OUTSIDE.search(line)]
    assert not hits, hits


@pytest.mark.parametrize("command", ["analyze", "bayes", "personalize"])
def test_help_cites_nothing_outside_the_repository(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert not OUTSIDE.search(capsys.readouterr().out)


def test_links_between_the_docs_resolve():
    for name in ("docs/single.md", "docs/bayes.md", "docs/personalize.md"):
        for target in re.findall(r"\]\(([^)#]+\.md)", (ROOT / name).read_text()):
            assert (ROOT / "docs" / target).exists(), (name, target)
