"""utils/validation_plots.py: the four curve files with per-class lines and the summary legends, and the
confusion matrices with class names, a labelled background and the busiest classes when there are many."""

from __future__ import annotations

import numpy as np
import pytest

from utils.validation_plots import plot_confusion_matrix, plot_curves


@pytest.fixture
def captured(monkeypatch):
    """Every figure saved: its title, legend texts and tick labels, by file name."""
    from matplotlib.figure import Figure

    seen = {}
    original = Figure.savefig

    def savefig(fig, path, *args, **kwargs):
        ax = fig.axes[0]
        legend = ax.get_legend()
        seen[path.name] = {"title": ax.get_title(), "legend": [t.get_text() for t in legend.get_texts()]
                           if legend else [], "x": [t.get_text() for t in ax.get_xticklabels()],
                           "y": [t.get_text() for t in ax.get_yticklabels()]}
        return original(fig, path, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return seen


def test_curves_are_four_files_with_class_lines_and_the_summary(tmp_path, captured):
    grid = np.linspace(0, 1, 1000)
    precision = np.stack([grid ** 0.5, grid ** 0.3, np.ones_like(grid)])
    recall = np.stack([1 - grid, 1 - grid ** 2, 1 - grid ** 0.5])
    f1 = 2 * precision * recall / (precision + recall + 1e-16)
    curves = {"grid": grid, "precision": precision, "recall": recall, "f1": f1, "classes": np.array([0, 2, 3]),
              "ap50": np.array([0.5, 0.6, 0.7])}
    names = ["car", "unused", "person", "bike"]
    paths = plot_curves(curves, names, tmp_path)
    assert sorted(p.name for p in paths) == ["F1_curve.png", "PR_curve.png", "P_curve.png", "R_curve.png"]
    assert all(p.stat().st_size > 10_000 for p in paths)
    assert captured["PR_curve.png"]["legend"] == ["car 0.500", "person 0.600", "bike 0.700",
                                                  "all classes 0.600 mAP@0.5"]
    best = int(np.argmax(f1.mean(0)))
    f1_summary = captured["F1_curve.png"]["legend"][-1]
    assert f1_summary.startswith("all classes") and abs(float(f1_summary.split(" at ")[1]) - grid[best]) < 0.06


def test_many_classes_keep_the_summary_only(tmp_path, captured):
    grid = np.linspace(0, 1, 1000)
    ones = np.ones((25, 1000))
    plot_curves({"grid": grid, "precision": ones, "recall": ones * 0.5, "f1": ones * 0.66, "classes":
                 np.arange(25), "ap50": np.full(25, 0.4)}, [str(i) for i in range(25)], tmp_path)
    assert captured["PR_curve.png"]["legend"] == ["all classes 0.400 mAP@0.5"]


def test_confusion_matrix_names_classes_and_background(tmp_path, captured):
    matrix = np.array([[5, 1, 2], [0, 3, 1], [1, 2, 0]])
    written = plot_confusion_matrix(matrix, ["car", "person"], tmp_path / "confusion_matrix.png")
    assert [p.name for p in written] == ["confusion_matrix.png", "confusion_matrix_normalized.png"]
    counts = captured["confusion_matrix.png"]
    assert counts["x"] == ["car", "person", "background"] == counts["y"] and "counts" in counts["title"]
    assert "normalised" in captured["confusion_matrix_normalized.png"]["title"]


def test_many_classes_show_the_busiest(tmp_path, captured):
    rng = np.random.default_rng(0)
    matrix = rng.integers(0, 3, (81, 81))
    matrix[7, 7] = matrix[40, 40] = 500
    names = [f"c{i}" for i in range(80)]
    plot_confusion_matrix(matrix, names, tmp_path / "cm.png")
    shown = captured["cm.png"]
    assert len(shown["x"]) == 31 and shown["x"][-1] == "background" and {"c7", "c40"} <= set(shown["x"])
    assert "30 of 80 classes" in shown["title"]
