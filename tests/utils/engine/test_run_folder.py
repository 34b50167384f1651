"""utils/engine/run_folder.py: a torchrun restart finds the run folder its own job began, and no other."""


def test_a_torchrun_restart_finds_the_folder_its_job_began(tmp_path, monkeypatch):
    import os
    import time

    from utils.engine.run_folder import mark_elastic_run, restarted_run

    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "none")  # torchrun without --rdzv-id: the agent identifies the job
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "0")
    for name in ("exp", "exp2"):
        (tmp_path / name).mkdir()
    mark_elastic_run(tmp_path / "exp")
    assert restarted_run(tmp_path) is None  # a first attempt starts a new folder
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    assert restarted_run(tmp_path) == tmp_path / "exp"
    monkeypatch.setattr(os, "getppid", lambda: -5)  # another torchrun on this machine: not its folder
    assert restarted_run(tmp_path) is None
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "spd1")  # a named rendezvous: the newest folder of that name
    mark_elastic_run(tmp_path / "exp")
    time.sleep(0.01)
    mark_elastic_run(tmp_path / "exp2")
    os.utime(tmp_path / "exp2", None)
    assert restarted_run(tmp_path) == tmp_path / "exp2"
    monkeypatch.delenv("TORCHELASTIC_RUN_ID")
    assert restarted_run(tmp_path) is None  # not under torchrun


def test_a_folder_of_an_earlier_job_is_never_continued(tmp_path, monkeypatch):
    import os
    import time

    from utils.engine import run_folder
    from utils.engine.run_folder import mark_elastic_run, restarted_run

    (tmp_path / "exp").mkdir()
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "none")
    monkeypatch.setattr(run_folder, "_agent_started", lambda: 1000.0)
    mark_elastic_run(tmp_path / "exp")
    assert restarted_run(tmp_path) == tmp_path / "exp"
    monkeypatch.setattr(run_folder, "_agent_started", lambda: 2000.0)  # same pid, a later agent
    assert restarted_run(tmp_path) is None
    monkeypatch.setenv("TORCHELASTIC_RUN_ID", "spd1")  # a rendezvous id used again by a later job
    mark_elastic_run(tmp_path / "exp")
    old = time.time() - 3 * run_folder.NAMED_JOB_SLACK_S
    os.utime(tmp_path / "exp" / run_folder.ELASTIC_MARKER, (old, old))
    monkeypatch.setattr(run_folder, "_agent_started", time.time)
    assert restarted_run(tmp_path) is None
    monkeypatch.setattr(run_folder, "_agent_started", lambda: old + 60)
    assert restarted_run(tmp_path) == tmp_path / "exp"


def test_the_agent_start_time_is_read_from_proc():
    import time

    from utils.engine.run_folder import _agent_started

    started = _agent_started()
    assert started is None or 0 < started <= time.time() + 1
