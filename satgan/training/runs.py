"""A training run's folder: what lives where, and how a run starts, resumes or starts over.

::

    RUN_DIR/config.json                the run's config (another run there needs --resume auto or --overwrite)
    RUN_DIR/checkpoints/last.pt        refreshed every ``checkpoint_every`` steps and each epoch
    RUN_DIR/checkpoints/epoch_NNNN.pt  kept every ``keep_every`` epochs
    RUN_DIR/samples/epoch_NNNN.png     control images: mask | generated | real
    RUN_DIR/history.json               per epoch: mean losses, lr, time; val PSNR/SSIM when validated
    RUN_DIR/tb/                        TensorBoard events
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from satgan import SatganError
from satgan.atomic import check_output_folder, write_json
from satgan.checkpoint import LAST, Checkpoint, load_checkpoint, newest_intact, save_checkpoint
from satgan.config import Config, to_dict
from satgan.data.dataset import PairDataset

RESUME_CHOICES = "never, auto or a checkpoint path"
# what a run writes, by folder: --overwrite deletes these and nothing a user put beside them
RUN_FILES = {"checkpoints": r"last\.pt|epoch_\d{4,}\.pt", "samples": r"epoch_\d{4,}\.png",
             "tb": r"events\.out\.tfevents\..+"}


class RunDir:
    """The paths of one run folder."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser()
        self.config = self.root / "config.json"
        self.checkpoints = self.root / "checkpoints"
        self.last = self.checkpoints / LAST
        self.samples = self.root / "samples"
        self.history = self.root / "history.json"
        self.tb = self.root / "tb"

    def holds_run(self) -> bool:
        return self.config.exists() or self.last.exists() or any(self.checkpoints.glob("epoch_*.pt"))

    def newest_saved(self) -> Path | None:
        """``last.pt`` where it exists, else the newest ``epoch_NNNN.pt``; None before the
        run's first save (what a message may point at, so it never names a missing file)."""
        if self.last.is_file():
            return self.last
        return next(iter(sorted(self.checkpoints.glob("epoch_*.pt"), reverse=True)), None)

    def check_writable(self, inputs=()) -> None:
        """A clear error now for a RUN_DIR that cannot be a folder, or is one of ``inputs``
        (the data, a checkpoint to resume from), lies inside one or holds one."""
        check_output_folder(self.root, "RUN_DIR", inputs)
        for path in (self.checkpoints, self.samples, self.tb):
            if path.exists() and not path.is_dir():
                raise SatganError(f"{path}: exists and is not a folder; remove it or choose another RUN_DIR")

    def starting_point(self, resume: str, overwrite: bool, data_dir: str | os.PathLike = "") -> Checkpoint | None:
        """The checkpoint to continue from, or None to start fresh; refuses what would lose
        a run or an input. Reads only: nothing is written or deleted here."""
        if overwrite and resume != "never":
            raise SatganError(f"--overwrite (start over) and --resume {resume} (continue) contradict each other; "
                              "give one of them")
        self.check_writable([("the data folder", data_dir)])
        if overwrite:
            return None
        if resume == "never":
            if self.holds_run():
                raise SatganError(
                    f"{self.root} already holds a run; pass --resume auto to continue it "
                    "(with these settings), --overwrite to start over, or choose another RUN_DIR"
                )
            return None
        if resume == "auto":
            found, broken = newest_intact(self.checkpoints)
            if found is None and broken:
                raise SatganError(
                    f"{self.root}: no checkpoint there can be read ({', '.join(p.name for p in broken)}); "
                    "pass --overwrite to start over (they will be deleted), or resume from a copy"
                )
            return found
        if resume.strip() in ("", "none"):
            raise SatganError(f"--resume {resume!r}: choose {RESUME_CHOICES}")
        return load_checkpoint(resume)

    def save(self, name: str, config: Config, state: dict, train_set: PairDataset, trained_with: dict | None = None
             ) -> None:
        """``checkpoints/NAME``: a Trainer's ``state_dict()``, with its training data's pixel
        scale and manifest hash, and the networks that took part in training (``trained_with``)."""
        ckpt = Checkpoint.from_training_state(config, state, pixel_scale=train_set.pixel_scale,
                                              manifest_hash=train_set.manifest.get("content_hash", ""),
                                              trained_with=trained_with or {})
        save_checkpoint(self.checkpoints / name, ckpt)

    def start(self, config: Config, overwrite: bool) -> None:
        """Clear an old run (``overwrite``) and write this run's config. Called only once
        every setting and input has been checked, so a mistake never costs the old run."""
        if overwrite:  # the run's own files only: a user's notes in samples/ stay
            for folder, pattern in RUN_FILES.items():
                folder = self.root / folder
                for path in folder.glob("*") if folder.is_dir() else ():
                    if path.is_file() and re.fullmatch(pattern, path.name):
                        path.unlink()
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
            self.history.unlink(missing_ok=True)
        self.root.mkdir(parents=True, exist_ok=True)
        write_json(self.config, to_dict(config))
