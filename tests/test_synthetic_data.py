"""The bundled demo data is what the documented model and seed produce, byte for byte."""

from pathlib import Path

from click.testing import CliRunner

from gobot.cli import cli

BUNDLED = Path(__file__).resolve().parents[1] / "data"


def test_bundled_data_regenerates_identically(tmp_path):
    result = CliRunner().invoke(cli, ["data", "synth", "--days", "10", "--seed", "1", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for name in ("BTC_USDT-5m.csv", "ETH_USDT-5m.csv"):
        assert (tmp_path / name).read_bytes() == (BUNDLED / name).read_bytes(), name


def test_bundled_data_is_labelled_synthetic():
    assert "SYNTHETIC" in (BUNDLED / "README.md").read_text()
