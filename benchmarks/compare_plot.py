"""The comparison's figure: test F1 against unique parameters. matplotlib is optional, so imported only here."""

from __future__ import annotations

from pathlib import Path


def plot(rows: list[dict], path: str | Path) -> None:
    """Test F1 against unique parameters (log x), one labelled point per row; the teacher is a star."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = {
        "teacher": dict(marker="*", s=220, color="tab:red", label="teacher"),
        True: dict(marker="o", s=50, color="tab:blue", label="distilled"),
        False: dict(marker="o", s=50, facecolors="none", edgecolors="tab:blue", label="fine-tuned only"),
    }
    labelled, stacked = set(), {}
    for row in rows:
        if row["unique_params_m"] is None or row["test_f1"] is None:
            continue
        kind = "teacher" if row["method"] == "teacher" else row["distilled"]
        style = dict(styles[kind])
        if kind in labelled:
            style.pop("label")
        labelled.add(kind)
        ax.scatter(row["unique_params_m"], row["test_f1"], zorder=3, **style)
        # Rows of one size (a method with and without distillation) get their labels stacked, not overprinted.
        place = (round(row["unique_params_m"], 4), round(row["test_f1"], 2))
        stacked[place] = stacked.get(place, -1) + 1
        ax.annotate(row["method"], (row["unique_params_m"], row["test_f1"]), textcoords="offset points",
                    xytext=(5, 4 + 9 * stacked[place]), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("unique parameters (M, log scale)")
    ax.set_ylabel("test F1")
    ax.set_title("NER test F1 against model size")
    ax.grid(True, which="both", alpha=0.3)
    if labelled:
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)

