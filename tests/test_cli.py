import subprocess
import sys
from pathlib import Path

from satgan.cli import main
from tests.conftest import REPO


def test_synth_pretransform_info(tmp_path, capsys):
    assert main(["synth", str(tmp_path / "d"), "--cities", "vienna,kitsap", "--per-city", "6",
                 "--size", "128", "--test-per-city", "0"]) == 0
    assert len(list((tmp_path / "d/AerialImageDataset/train/gt").glob("*.tif"))) == 12
    assert main(["pretransform", str(tmp_path / "d"), str(tmp_path / "p"), "--size", "64", "--crop", "64",
                 "--val", "vienna6"]) == 0
    out = capsys.readouterr().out
    assert "train: 11 of 11 tiles" in out and "val: 1 of 1 tiles" in out
    assert main(["info", str(tmp_path / "d")]) == 0
    assert "vienna" in capsys.readouterr().out


def test_errors_exit_2_with_one_line(tmp_path, capsys):
    assert main(["pretransform", str(tmp_path / "missing"), str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("satgan: error: ") and "missing: no such folder" in err and "Traceback" not in err


def test_module_and_entry_point_are_the_same_program():
    by_module = subprocess.run([sys.executable, "-m", "satgan", "--help"], capture_output=True, text=True, cwd=REPO)
    by_script = subprocess.run([str(Path(sys.executable).parent / "satgan"), "--help"], capture_output=True, text=True)
    assert by_module.returncode == by_script.returncode == 0
    assert "pretransform" in by_module.stdout and by_module.stdout.replace("__main__.py", "satgan") == \
        by_script.stdout


def test_config_from_dict_rejects_unknown_keys():
    import pytest

    from satgan import SatganError
    from satgan.config import PretransformConfig
    from satgan.settings import from_dict

    cfg = from_dict(PretransformConfig, {"source": "s", "out": "o", "grid": 5})
    assert cfg.grid == 5 and cfg.size == 286
    unknown = r"unknown PretransformConfig setting\(s\) \['gird'\]; valid: source, out, grid"
    with pytest.raises(SatganError, match=unknown):
        from_dict(PretransformConfig, {"source": "s", "out": "o", "gird": 5})
    with pytest.raises(SatganError, match="missing"):
        from_dict(PretransformConfig, {"source": "s"})
