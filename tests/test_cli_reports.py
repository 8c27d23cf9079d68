"""`landed report` and `landed review` on the sample data: JSON, Markdown, and a review file
that works offline (plotly.js inlined)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from app.cli import main
from app.demo import load_sample
from app.page_data import current_week
from app.storage import Storage


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = str(tmp_path_factory.mktemp("cli") / "sample.duckdb")
    storage = Storage(path)
    load_sample(storage, today=datetime.now(UTC))
    storage.close()
    return path


def test_report_as_json_and_markdown(sample_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "smart-export", "--db", sample_db]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["verdict"] == "missed"
    assert report["counts"]["active"] == report["metrics"]["exposure_rate"]["n"]
    assert main(["report", "smart-export", "--db", sample_db, "--format", "md", "--segment", "plan"]) == 0
    markdown = capsys.readouterr().out
    assert markdown.startswith("# Smart export: Missed\n")
    assert "amended to 10.0%, judged as first set" in markdown
    assert "never saw the announcement" in markdown


def test_report_refuses_a_bad_as_of(sample_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "smart-export", "--db", sample_db, "--as-of", "yesterday"]) == 1
    assert "--as-of 'yesterday' is not an ISO 8601 time" in capsys.readouterr().err


def test_review_file_is_self_contained(
    sample_db: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    week = current_week(datetime.now(UTC))
    out = tmp_path / "review.html"
    assert main(["review", "--db", sample_db, "--week", week, "--out", str(out)]) == 0
    assert f"wrote the {week} review (1 launch" in capsys.readouterr().out
    html = out.read_text(encoding="utf-8")
    assert 'src="/static/plotly.min.js"' not in html
    assert "Plotly" in html and len(html) > 1_000_000  # plotly.js inlined: works offline
    assert "AI summaries" in html or "ai-summaries" in html
    assert main(["review", "--db", sample_db, "--week", week, "--format", "md"]) == 0
    assert capsys.readouterr().out.startswith(f"# Weekly launch review: {week}")


def test_review_refuses_a_bad_week(sample_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["review", "--db", sample_db, "--week", "2026-W60"]) == 1
    assert "week '2026-W60' does not exist" in capsys.readouterr().err
