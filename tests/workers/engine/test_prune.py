"""Prune keeps the newest points asked for, removes exactly the points it reports, and reports
them even when it cannot collect garbage."""

from tests.workers.engine.helpers import all_packs, run_engine
from workers.engine import backup, list_points, prune, verify


def test_prune_keeps_as_many_points_as_asked(image, repo):
    ids = [backup(repo, "job", image, "full").point_id for _ in range(3)]
    assert prune(repo, "job", keep=5).removed_points == []
    assert prune(repo, "job", keep=2).removed_points == ids[:1]
    assert [p.id for p in list_points(repo)] == ids[1:]
    assert verify(repo).unreferenced_packs == 0


def test_prune_reports_the_points_it_removed_when_another_point_is_unreadable(image, repo):
    first = backup(repo, "job", image, "full").point_id
    second = backup(repo, "job", image, "full").point_id
    broken = repo / "points" / "20200101T000000Z-0badf0"
    broken.write_bytes(b"not a point file")
    packs = all_packs(repo)

    report = prune(repo, "job", keep=1)

    assert (report.removed_points, report.kept) == ([first], [second])
    assert report.problems == [
        "Point file 20200101T000000Z-0badf0 is unreadable, so prune cannot tell which packs it "
        "needs and deleted no packs (Point file 20200101T000000Z-0badf0 is truncated)."
    ]
    assert (report.removed_packs, all_packs(repo)) == (0, packs)
    assert [p.id for p in list_points(repo, "job")] == [second]

    broken.unlink()  # once the bad file is gone, the next prune collects the garbage
    again = prune(repo, "job", keep=1)
    assert again.problems == [] and again.removed_packs > 0
    assert verify(repo, read_data=True).ok and verify(repo).unreferenced_packs == 0


def test_the_command_line_shows_what_prune_removed_and_why_it_kept_data(image, repo):
    first = backup(repo, "job", image, "full").point_id
    backup(repo, "job", image, "full")
    (repo / "points" / "20200101T000000Z-0badf0").write_bytes(b"not a point file")

    done = run_engine("prune", "--repo", repo, "--job", "job", "--keep", "1")

    assert done.returncode == 1
    assert f"removed point {first}" in done.stdout
    assert "deleted no packs" in done.stdout
    assert done.stderr == (
        "Prune removed the points listed but left garbage it could not judge (see above).\n"
    )
