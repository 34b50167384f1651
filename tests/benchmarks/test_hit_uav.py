from pathlib import Path

from benchmarks import hit_uav


def test_each_seed_trains_into_its_own_folder(tmp_path):
    table = hit_uav.arms(10, 320, seed=1)
    folder = tmp_path / hit_uav.folder_name("scratch_yolo11n", 1)
    cmd = hit_uav.train_command(table["scratch_yolo11n"], folder)
    assert cmd[cmd.index("--project") + 1] == str(tmp_path)
    assert cmd[cmd.index("--name") + 1] == "scratch_yolo11n_seed1" == folder.name
    assert cmd[cmd.index("--seed") + 1] == "1"
    (folder / "weights").mkdir(parents=True)
    (folder / "weights" / "last.pt").touch()
    assert hit_uav.train_command(table["scratch_yolo11n"], folder) == ["train.py", "--resume",
                                                                       str(folder / "weights" / "last.pt")]


def test_an_spd_order_arm_writes_its_config_beside_the_run(tmp_path):
    from models.parser import load_config

    arm = hit_uav.arms(10, 320, seed=0)["scratch_yolo11n_spd_conv_first"]
    cmd = hit_uav.train_command(arm, tmp_path / "scratch_yolo11n_spd_conv_first")
    config = load_config(Path(cmd[cmd.index("--cfg") + 1]))
    assert config["backbone"][0][2:] == ["SPDConv", [64, 3, "conv_first"]] and config["scale"] == "n"


def test_report_gives_mean_and_spread_over_seeds(tmp_path, monkeypatch):
    import json

    monkeypatch.setattr(hit_uav, "OUT", tmp_path)
    monkeypatch.setattr(hit_uav, "RESULTS", tmp_path / "kept")
    for seed, ap in ((0, 0.10), (1, 0.14)):
        folder = tmp_path / hit_uav.folder_name("scratch_yolo11n", seed)
        folder.mkdir()
        coco = {"AP": ap, "AP50": 2 * ap, "AP_S": ap / 2, "AP_vt": 0.0, "AP_t": 0.01, "AP_s16": 0.02}
        (folder / "result.json").write_text(json.dumps({"coco": coco, "per_class": [], "train_seconds": 600}))
    row = hit_uav.report(["scratch_yolo11n", "yolo26n"], [0, 1]).splitlines()
    assert "| scratch_yolo11n | 0, 1 | 0.1200 ± 0.0200 | 0.2400 ± 0.0400 | 0.0600 ± 0.0100 |" in row[2]
    assert row[3].startswith("| yolo26n | not run yet")
