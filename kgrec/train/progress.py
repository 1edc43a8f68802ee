"""What a training run says while it trains: a bar on a terminal, one line per epoch in a log.

``kgrec train ... > train.log`` must not be silent until the summary: when standard error is
not a terminal (a log file, a batch job, CI), every evaluated epoch is one line with its loss,
the validation metric, the best so far and the time left at most. Optionally the same figures
go to TensorBoard (``train.tensorboard = true``; the ``tensorboard`` extra), and at the end a
plot of the curves (``curves.png``) is written into the run folder from ``metrics.jsonl``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tqdm.auto import tqdm


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


class EpochProgress:
    """Progress of the epochs ``first .. total``: a tqdm bar on a terminal, else log lines.

    Args:
        first, total: the first epoch this call trains (after a resume, not 1) and the last.
        enabled: False for a quiet run (tests, benchmark workers, processes other than rank 0).
        log: where the lines go (``print`` by default).
        terminal: override the terminal check (tests).
    """

    def __init__(self, first: int, total: int, *, enabled: bool, log=print, terminal: bool | None = None):
        self.first, self.total, self.log = first, total, log
        self.enabled = enabled
        self.terminal = sys.stderr.isatty() if terminal is None else terminal
        self.bar = None
        if enabled and self.terminal:
            self.bar = tqdm(total=total, initial=first - 1, desc="train", unit="epoch", mininterval=1.0, dynamic_ncols=True)

    def epoch(self, epoch: int, loss: float, seconds: list[float], metric: str | None = None, value: float | None = None, best: tuple[int, float] | None = None) -> None:
        """One epoch done (``metric``/``value``/``best`` where it was evaluated)."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.update(1)
            if value is not None:
                self.bar.set_postfix(loss=f"{loss:.4f}", **{f"valid_{metric}": f"{value:.4f}", "best": best[0]})
            return
        if value is None:
            return
        recent = seconds[-5:]
        left = (self.total - epoch) * sum(recent) / len(recent)
        self.log(
            f"epoch {epoch}/{self.total}: loss {loss:.4f}, valid {metric} {value:.4f}, "
            f"best {best[1]:.4f} (epoch {best[0]}), {seconds[-1]:.1f}s, at most {_duration(left)} left"
        )

    def close(self, stopped_early_at: int | None = None) -> None:
        if self.bar is not None:
            self.bar.close()
        elif self.enabled and stopped_early_at is not None and stopped_early_at < self.total:
            self.log(f"stopped early after epoch {stopped_early_at}: no better validation for train.patience evaluations")


class TensorBoardLog:
    """``train.tensorboard``: the loss terms and validation metrics as TensorBoard scalars."""

    def __init__(self, folder: Path):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # checked with the configuration; this is a safety net
            from kgrec.errors import KgrecError

            raise KgrecError("train.tensorboard = true needs the tensorboard package: pip install 'kgrec[tensorboard]'") from None
        self.writer = SummaryWriter(log_dir=str(folder))

    def record(self, record: dict) -> None:
        epoch = record["epoch"]
        for key, value in record.items():
            if key != "epoch" and isinstance(value, (int, float)):
                tag = f"valid/{key[len('valid_'):]}" if key.startswith("valid_") else f"train/{key}"
                self.writer.add_scalar(tag, value, epoch)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def tensorboard_available() -> bool:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return False
    return True


def plot_curves(metrics_path: Path, out: Path, metric: str) -> Path | None:
    """``curves.png``: the training loss and the validation ``metric`` per evaluated epoch."""
    lines = [json.loads(x) for x in Path(metrics_path).read_text().splitlines() if x.strip()]
    if not lines:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from kgrec.io import atomic_path

    epochs = [r["epoch"] for r in lines]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.plot(epochs, [r["loss"] for r in lines], color="tab:blue", label="training loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss", color="tab:blue")
    other = ax.twinx()
    key = f"valid_{metric}"
    other.plot(epochs, [r.get(key, float("nan")) for r in lines], color="tab:orange", label=f"valid {metric}")
    other.set_ylabel(f"valid {metric}", color="tab:orange")
    best = max(lines, key=lambda r: r.get(key, float("-inf")))
    other.axvline(best["epoch"], color="grey", linestyle=":", linewidth=1)
    ax.set_title(f"best valid {metric} {best.get(key, float('nan')):.4f} at epoch {best['epoch']}")
    fig.tight_layout()
    with atomic_path(Path(out), ".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return Path(out)


__all__ = ["EpochProgress", "TensorBoardLog", "plot_curves", "tensorboard_available"]
