"""`interleave report --plot`'s figure: three panels, one line per series, written as PNG."""

from __future__ import annotations

from pathlib import Path

from interleave.tools.report.figure import curves_figure, panels, save_figure


def test_one_line_per_series_in_the_panels_it_has_values_for(tmp_path: Path) -> None:
    series = {
        "a": [
            {"Epoch": 1, "Syno F1": 0.4, "Hyper F1": 0.5, "Identity Acc": 0.6},
            {"Epoch": 0, "Syno F1": 0.3, "Hyper F1": None, "Identity Acc": 0.7},
        ],
        "b (text)": [{"Epoch": 0, "Syno F1": 0.9, "Hyper F1": 0.8}],
    }
    figure = curves_figure(series)
    syn, hyp, ident = figure.axes
    assert [ax.get_title() for ax in figure.axes] == [name for _, name in panels()]
    assert [line.get_label() for line in syn.lines] == ["a", "b (text)"]
    assert list(syn.lines[0].get_xdata()) == [0, 1] and list(syn.lines[0].get_ydata()) == [0.3, 0.4]  # sorted
    assert list(hyp.lines[0].get_xdata()) == [1]  # a missing value is left out
    assert [line.get_label() for line in ident.lines] == ["a"]
    png = save_figure(figure, tmp_path / "curves.png")
    assert png.read_bytes()[:4] == b"\x89PNG"
