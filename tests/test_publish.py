"""The students' repository is exported without solutions or hidden tests, and with what students need."""

import pytest

from autograder import publish


def test_export_has_chapters_and_releases_but_no_solutions(tmp_path):
    files = publish.publish(tmp_path / "public")
    out = tmp_path / "public"
    assert (out / "assignments" / "01-optimizers" / "optimizers.ipynb").exists()
    assert (out / "chapters" / "01-sgd-learning-rate.ipynb").exists() and (out / "Makefile").exists()
    assert not (out / "solutions").exists() and not any(name.startswith("solutions/") for name in files)
    for path in out.rglob("*"):
        if path.is_file() and not path.is_relative_to(out / "autograder"):
            text = path.read_text(errors="ignore")
            assert "BEGIN HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text, path


def test_a_marker_outside_the_private_paths_stops_the_export(tmp_path, monkeypatch):
    leak = tmp_path / "repo"
    (leak / "notes").mkdir(parents=True)
    (leak / "notes" / "answers.md").write_text("### BEGIN HIDDEN TESTS\nassert f(2) == 4\n")
    monkeypatch.setattr(publish, "tracked_files", lambda root: ["notes/answers.md"])
    with pytest.raises(publish.PublishError, match="notes/answers.md"):
        publish.publish(tmp_path / "out", root=leak)


def test_export_refuses_a_folder_inside_the_repository():
    with pytest.raises(publish.PublishError, match="outside"):
        publish.publish(publish.ROOT / "_build" / "public")
