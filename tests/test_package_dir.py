"""Data-only wheels are found in the data-wheels folder first, else where Python imports from."""

import json
from pathlib import Path

from model_code.paths import DATA_WHEELS_ENV, data_wheels_dir, package_dir


def test_the_data_wheels_folder_comes_first_then_importable_packages(monkeypatch, tmp_path):
    monkeypatch.setenv(DATA_WHEELS_ENV, str(tmp_path))
    assert data_wheels_dir() == tmp_path
    (tmp_path / "json").mkdir()
    assert package_dir("json") == tmp_path / "json"  # shadows the importable one
    (tmp_path / "json").rmdir()
    assert package_dir("json") == Path(json.__file__).parent
    assert package_dir("no_such_package_here") is None


def test_make_setup_puts_them_outside_site_packages():
    recbole = package_dir("recbole")
    assert recbole is not None and recbole.parent == data_wheels_dir()
    assert (recbole / "dataset_example" / "ml-100k" / "ml-100k.inter").is_file()
