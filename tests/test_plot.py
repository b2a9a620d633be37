"""`kinetic.plot`: figures from a real QWZ table; plotted numbers equal the table; bad input."""
import csv
import sys

import numpy as np
import pytest
from scipy import constants as C

from kinetic.cli import main
from kinetic.errors import ConfigError

pytest.importorskip("matplotlib")
from kinetic.plot import plot_table, series  # noqa: E402

E2_H = C.e**2 / C.h
MUS = [-2.0, -1.5, -0.3, 0.3, 1.5, 2.0]  # QWZ M = 1: bands at |E| ≥ 1 eV, μ = ±0.3 in the gap
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    d = tmp_path_factory.mktemp("plot")
    run = d / "qwz.toml"
    run.write_text('[model]\nname = "qwz"\nparams = { M = 1.0 }\n[mesh]\nk = [64, 64]\n'
                   f"[physics]\ntemperature = [300.0, 600.0]\ntau = [10.0, 20.0]\nmu = {MUS}\n"
                   '[response]\nquantities = ["density", "drude", "ahc"]\n')
    out = d / "qwz.csv"
    assert main(["table", str(run), "--out", str(out)]) == 0
    return out


def rows_of(table, quantity, component):
    lines = [ln for ln in table.read_text().splitlines() if not ln.startswith("#")]
    return [r for r in csv.DictReader(lines)
            if r["quantity"] == quantity and r["component"] == component]


def test_png_written_next_to_table_and_readable(table):
    from matplotlib.image import imread

    out = plot_table(table, "ahc", "xy")
    assert out == table.with_name("qwz_ahc_xy_vs_mu.png")
    assert out.read_bytes()[:8] == PNG_MAGIC
    img = imread(out)
    assert img.ndim == 3 and img.shape[0] > 100 and img.shape[1] > 100
    assert not list(table.parent.glob(".*.part"))  # no temporary left behind


def test_in_gap_ahc_is_one_e2_over_h(table):
    s = series(table, "ahc", "xy", "mu")
    assert "(e²/h)" in s.y_label and "σ" in s.y_label and s.x_label == "μ (eV)"
    assert s.scale == pytest.approx(3.874045865e-5, rel=1e-9)
    assert s.legend_title == "independent of τ"  # the AHC does not depend on τ
    assert [ln.label for ln in s.lines] == ["T = 300 K", "T = 600 K"]
    ln300 = s.lines[0]
    np.testing.assert_array_equal(ln300.x, MUS)
    gap = np.abs(ln300.x) < 1
    np.testing.assert_allclose(ln300.y[gap], 1.0, rtol=1e-9)  # C = −1 → σ_xy = +e²/h
    assert np.all(np.abs(ln300.y[~gap]) < 0.5)


@pytest.mark.parametrize("quantity,component,vs", [
    ("drude", "xx", "mu"), ("drude", "xx", "tau"), ("density", "", "T"), ("ahc", "xy", "T")])
def test_plotted_data_equal_table(table, quantity, component, vs):
    col = {"mu": "mu_eV", "T": "T_K", "tau": "tau_fs"}[vs]
    s = series(table, quantity, component, vs)
    rows = rows_of(table, quantity, component)
    for ln in s.lines:
        for x, y, e in zip(ln.x, ln.y, ln.err):
            match = [r for r in rows if float(r[col]) == x
                     and float(r["value"]) / s.scale == pytest.approx(y, rel=1e-14)
                     and float(r["error"]) / s.scale == pytest.approx(e, rel=1e-14)]
            assert match, (ln.label, x, y)
    if "shown" in s.legend_title:  # more than 8 curves: thinned on purpose, tested below
        return
    # every table value of the quantity appears in the plot (no variable was dropped wrongly)
    plotted = {float(v) for ln in s.lines for v in ln.y * s.scale}
    assert all(any(float(r["value"]) == pytest.approx(p, rel=1e-14) for p in plotted) for r in rows)


def test_drude_lines_per_t_and_tau(table):
    s = series(table, "drude", "xx", "mu")
    assert len(s.lines) == 4 and s.legend_title == ""
    assert s.lines[0].label == "T = 300 K, τ = 10 fs"
    np.testing.assert_allclose(s.lines[1].y, 2 * s.lines[0].y, rtol=1e-12)  # ∝ τ


def test_many_curves_are_thinned_and_say_so(table):
    s = series(table, "drude", "xx", "tau")  # 6 μ × 2 T = 12 curves > 8
    assert "4 of 6 μ values shown" in s.legend_title
    assert [ln.label for ln in s.lines][:2] == ["μ = −2 eV, T = 300 K", "μ = −2 eV, T = 600 K"]
    assert len(s.lines) == 8 and {ln.label.split(",")[0] for ln in s.lines} == {
        "μ = −2 eV", "μ = −0.3 eV", "μ = 0.3 eV", "μ = 2 eV"}  # evenly spaced


def test_density_si_with_power_of_ten(table):
    s = series(table, "density", None, "mu")
    assert s.y_label.endswith("(10¹⁸ 1/m²)") and s.scale == 1e18


def test_pdf_and_explicit_out(table, tmp_path):
    out = plot_table(table, "drude", "xx", vs="tau", fmt="pdf")
    assert out.name == "qwz_drude_xx_vs_tau.pdf" and out.read_bytes()[:5] == b"%PDF-"
    out = plot_table(table, "density", "", vs="T", out=tmp_path / "n.svg")
    assert out == tmp_path / "n.svg" and b"<svg" in out.read_bytes()[:1000]


@pytest.mark.parametrize("args,words", [
    (("hall", "xy"), ["'hall'", "ahc [xy]", "density [(none)]", "drude [xx, xy, yx, yy]"]),
    (("ahc", "yx"), ["'yx'", "'xy'"]),
    (("ahc", "xy", "energy"), ["'energy'", "mu", "T", "tau"]),
])
def test_unknown_names_list_allowed(table, args, words):
    with pytest.raises(ConfigError) as exc:
        plot_table(table, *args)
    assert all(w in str(exc.value) for w in words), str(exc.value)


def test_bad_format_missing_table_and_dir_write_nothing(table, tmp_path):
    with pytest.raises(ConfigError, match="'bmpx'.*png"):
        plot_table(table, "ahc", "xy", fmt="bmpx")
    with pytest.raises(ConfigError, match="nope.csv"):
        plot_table(tmp_path / "nope.csv", "ahc", "xy")
    with pytest.raises(ConfigError, match="does not exist"):
        plot_table(table, "ahc", "xy", out=tmp_path / "no" / "f.png")
    assert not (table.parent / "qwz_ahc_xy_vs_mu.bmpx").exists()


def test_failure_while_rendering_leaves_no_file(table, tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    def boom(*a, **k):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Figure, "savefig", boom)
    with pytest.raises(RuntimeError):
        plot_table(table, "ahc", "xy", out=tmp_path / "f.png")
    assert list(tmp_path.iterdir()) == []


def test_not_a_table(tmp_path):
    bad = tmp_path / "x.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ConfigError, match="header"):
        series(bad, "ahc", "xy")


def test_without_matplotlib_says_install_extra(table, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ConfigError, match=r"pip install 'kinetic\[plot\]'"):
        plot_table(table, "ahc", "xy")
