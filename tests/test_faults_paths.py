"""Faults in paths (issue 22, item 6): FIFOs, devices and links are refused before anything
opens them (no command blocks), no output replaces a link, a device or a database's -wal
file, no reading command writes beside the file it reads, an empty --db is not ./etameter.db,
a failed command leaves no new empty database, and OS errors (a path too long, a full disk)
are one-line messages."""

import errno
import os
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli
from profiler.errors import ConfigError, ProfileError, StoreError
from profiler.files import check_input_file, check_output_path, write_atomically
from profiler.store import Store

LONG = "x" * 300  # longer than any file system's NAME_MAX (255)


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def fails(*args, match=None):
    result = run(*args)
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    lines = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    if match:
        assert match in lines[0], lines[0]
    return lines[0]


def add_run(db_path):
    store = Store(db_path)
    run_id = store.start_run(scenario="train", preset="tiny", variant="fp32", device="cpu",
                             device_type="cpu", attention_convention="full", config={},
                             environment={"host": "h"})
    store.add_result(run_id, {"window": 0, "steps": 1, "duration_s": 1.0, "tokens_per_s": 10.0})
    store.finish_run(run_id, "ok")
    store.close()
    return run_id


@pytest.fixture
def fifo(tmp_path):
    """A FIFO that never blocks the test for long: a writer opens and closes it after 5 s,
    which ends any read with EOF (so a regression fails on time, it does not hang)."""
    path = tmp_path / "pipe.json"
    os.mkfifo(path)

    def unblock():
        time.sleep(5)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
        except OSError:
            pass

    threading.Thread(target=unblock, daemon=True).start()
    return path


def quick(fn):
    t0 = time.monotonic()
    fn()
    assert time.monotonic() - t0 < 3.0, "a FIFO blocked the command"


# -- inputs that are not regular files --------------------------------------------------------

def test_a_fifo_as_model_is_refused_without_blocking(fifo):
    quick(lambda: fails("flops", "--model", fifo, match="FIFO"))


def test_a_fifo_as_profile_is_refused_without_blocking(fifo):
    from hardware_profiles.profiles import load_profile_file

    def call():
        with pytest.raises(ProfileError, match="FIFO"):
            load_profile_file(fifo)
    quick(call)
    quick(lambda: fails("devices", "--profile", fifo, match="FIFO"))


def test_a_fifo_or_device_as_import_is_refused(fifo, tmp_path):
    db = tmp_path / "new.db"
    quick(lambda: fails("import", fifo, "--format", "json", "--db", db, match="FIFO"))
    fails("import", "/dev/null", "--format", "json", "--db", db, match="character device")
    assert not db.exists()


@pytest.mark.parametrize("kind", ["folder", "device"])
def test_check_input_file_names_the_kind(tmp_path, kind):
    path = tmp_path if kind == "folder" else Path("/dev/null")
    with pytest.raises(ConfigError, match="folder" if kind == "folder" else "character device"):
        check_input_file(path, "model file")


# -- outputs: links, devices, a database's own files -------------------------------------------

def test_export_onto_a_link_to_stdout_is_refused_without_blocking(db_path, tmp_path):
    add_run(db_path)
    link = tmp_path / "out.json"
    link.symlink_to("/proc/self/fd/1")
    quick(lambda: fails("export", link, "--db", db_path, match="symbolic link"))
    quick(lambda: fails("export", link, "--db", db_path, "--force", match="symbolic link"))
    assert link.is_symlink()


def test_export_force_never_replaces_a_link_or_a_device(db_path, tmp_path):
    add_run(db_path)
    real = tmp_path / "real.json"
    real.write_text("keep")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    fails("export", link, "--db", db_path, "--force", match="symbolic link")
    assert link.is_symlink() and real.read_text() == "keep"
    fails("export", "/dev/null", "--format", "json", "--db", db_path, "--force",
          match="character device")


def test_export_force_never_writes_over_the_databases_wal(db_path, tmp_path):
    add_run(db_path)
    Store(db_path).close()
    for suffix in ("-wal", "-shm", "-journal"):
        fails("export", db_path + suffix, "--format", "json", "--db", db_path, "--force",
              match="database this command reads")


def test_plot_and_html_refuse_links_too(db_path, tmp_path):
    add_run(db_path)
    link = tmp_path / "p.html"
    link.symlink_to(tmp_path / "elsewhere.html")
    fails("report", "--db", db_path, "--html", link, "--force", match="symbolic link")
    assert not (tmp_path / "elsewhere.html").exists()


# -- databases that are not regular files, empty paths -----------------------------------------

def test_a_reading_command_on_a_device_writes_nothing_beside_it():
    before = set(os.listdir("/dev"))
    fails("report", "--db", "/dev/null", match="character device")
    fails("export", "/tmp/never-written.json", "--db", "/dev/null", match="character device")
    assert not any(n.startswith("null-") for n in set(os.listdir("/dev")) - before)
    assert not os.path.exists("/tmp/never-written.json")


def test_a_fifo_as_db_is_refused_without_blocking(fifo):
    quick(lambda: fails("report", "--db", fifo, match="FIFO"))
    quick(lambda: fails("bench", "--preset", "tiny", "--db", fifo, match="FIFO"))


def test_a_reading_command_on_an_empty_file_does_not_migrate_it(tmp_path):
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    fails("report", "--db", empty, match="empty")
    assert empty.stat().st_size == 0 and sorted(os.listdir(tmp_path)) == ["empty.db"]


@pytest.mark.parametrize("command", [["import", "x.json"], ["report"], ["delete", "--status", "failed"],
                                     ["bench", "--preset", "tiny"]])
def test_an_empty_db_is_an_error_not_etameter_db(tmp_path, monkeypatch, command):
    monkeypatch.chdir(tmp_path)
    Path("x.json").write_text('{"etameter_export": 1, "runs": []}')
    fails(*command, "--db", "", match="empty")
    assert not Path("etameter.db").exists()
    with pytest.raises(StoreError, match="empty"):
        Store("")


# -- failed commands leave no new empty database ------------------------------------------------

def test_a_failed_import_leaves_no_new_database(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"etameter_export": 1, "runs": [{"id": 5}]}')
    db = tmp_path / "new.db"
    fails("import", bad, "--db", db)
    assert sorted(os.listdir(tmp_path)) == ["bad.json"]
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    fails("import", broken, "--db", db, match="not valid JSON")
    assert not db.exists()


def test_a_failed_merge_leaves_no_new_database(tmp_path):
    src = tmp_path / "notdb.db"
    src.write_text("hello, not sqlite")
    into = tmp_path / "into.db"
    fails("merge", src, "--into", into)
    assert not into.exists() and not Path(str(into) + "-wal").exists()


def test_a_failed_import_keeps_an_existing_database(db_path, tmp_path):
    add_run(db_path)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    fails("import", bad, "--db", db_path)
    assert len(Store(db_path, write=False).runs()) == 1


def test_a_refused_cuda_bench_leaves_no_new_database(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: --device cuda is not refused")
    db = tmp_path / "new.db"
    fails("bench", "--preset", "tiny", "--device", "cuda", "--db", db)
    assert sorted(os.listdir(tmp_path)) == []


# -- OS errors ------------------------------------------------------------------------------------

def test_very_long_paths_are_one_line_errors(db_path, tmp_path):
    add_run(db_path)
    fails("export", tmp_path / f"{LONG}.json", "--db", db_path, match="too long")
    fails("report", "--db", tmp_path / f"{LONG}.db", match="too long")
    fails("bench", "--preset", "tiny", "--db", tmp_path / f"{LONG}.db", match="too long")
    fails("flops", "--model", tmp_path / f"{LONG}.json", match="too long")
    fails("import", tmp_path / f"{LONG}.json", "--db", db_path, match="too long")
    fails("report", "--db", db_path, "--html", tmp_path / f"{LONG}.html", match="too long")


def test_a_name_near_the_limit_still_gets_a_temporary_file(tmp_path):
    target = tmp_path / ("y" * 250 + ".txt")
    write_atomically(target, lambda tmp: Path(tmp).write_text("ok"))
    assert target.read_text() == "ok"


def test_a_full_disk_is_a_one_line_error_and_leaves_nothing(db_path, tmp_path, monkeypatch):
    add_run(db_path)

    def full(store, ids, out, *a, **k):  # the streamed export's writer hits a full disk
        raise OSError(errno.ENOSPC, "No space left on device", getattr(out, "name", "out"))

    monkeypatch.setattr("profiler.store.streaming.write_json_records", full)
    out = tmp_path / "out.json"
    fails("export", out, "--db", db_path, match="disk is full")
    assert not out.exists()
    assert not [n for n in os.listdir(tmp_path) if n.endswith(".tmp")]


def test_any_stray_os_error_becomes_one_line():
    from harness.cli.options import translate_errors

    @translate_errors
    def boom():
        raise OSError(errno.ENOSPC, "No space left on device", "/some/file")

    import click

    with pytest.raises(click.ClickException, match="/some/file: the disk is full"):
        boom()


def test_check_output_path_refuses_an_empty_path():
    with pytest.raises(ConfigError, match="empty"):
        check_output_path("")
