"""CP-ALS of a conv kernel (O, I, kh, kw) without forming Khatri-Rao products.

Why not tensorly for every layer: its ALS multiplies each unfolding by an explicitly formed Khatri-Rao product
(the einsum backend by an (O, I, kh, R) intermediate). For VGG-S's 512x512x3x3 convs at rank 1,145 that is
786k x 1,145 doubles, 7 GB: a VGG-S compress was still fitting after 24 minutes at 6.8 GB resident. A conv
kernel has only kh*kw spatial taps, so each MTTKRP here is kh*kw matrix products (O x I by I x R) instead: the
same ALS updates in tens of MB; VGG-S's four layers took 5 min 40 s on one core. `CPConv.load_factors` keeps
tensorly for layers whose product is small.
"""

from __future__ import annotations

import torch


def _svd_init(unfolded: torch.Tensor, rank: int, gen: torch.Generator) -> torch.Tensor:
    """Leading left singular vectors of a mode's unfolding; random columns where the rank exceeds the mode's size
    (tensorly's 'svd' initialisation does the same)."""
    u = torch.linalg.svd(unfolded, full_matrices=False).U[:, :rank]
    if u.shape[1] < rank:
        extra = torch.randn(unfolded.shape[0], rank - u.shape[1], generator=gen, dtype=unfolded.dtype)
        u = torch.cat([u, extra / unfolded.shape[0] ** 0.5], 1)
    return u


def cp_als_conv(
    weight: torch.Tensor, rank: int, n_iter_max: int = 100, tol: float = 1e-6, seed: int = 0
) -> tuple[torch.Tensor, ...]:
    """Factors (A (O,R), B (I,R), C (kh,R), D (kw,R)) with weight[o,i,h,w] ~ sum_r A[o,r] B[i,r] C[h,r] D[w,r].
    Stops after n_iter_max sweeps or when the relative error changes by less than tol."""
    w = weight.detach().double()
    o, i, kh, kw = w.shape
    gen = torch.Generator().manual_seed(seed)
    a, b = _svd_init(w.reshape(o, -1), rank, gen), _svd_init(w.transpose(0, 1).reshape(i, -1), rank, gen)
    c = _svd_init(w.permute(2, 0, 1, 3).reshape(kh, -1), rank, gen)
    d = _svd_init(w.permute(3, 0, 1, 2).reshape(kw, -1), rank, gen)
    taps = w.permute(2, 3, 0, 1).reshape(kh * kw, o, i)  # (hw, O, I): one O x I matrix per kernel tap
    norm2, previous = float((w * w).sum()), float("inf")
    for _ in range(n_iter_max):
        cd = (c[:, None, :] * d[None, :, :]).reshape(kh * kw, rank)  # (hw, R) Khatri-Rao of the small modes
        a = _solve((taps @ b * cd[:, None, :]).sum(0), (b.T @ b) * (c.T @ c) * (d.T @ d))
        ta = taps.transpose(1, 2) @ a  # (hw, I, R)
        b = _solve((ta * cd[:, None, :]).sum(0), (a.T @ a) * (c.T @ c) * (d.T @ d))
        p = (ta * b).sum(1).reshape(kh, kw, rank)  # sum_o,i W[o,i,h,w] A[o,r] B[i,r]
        c = _solve((p * d[None, :, :]).sum(1), (a.T @ a) * (b.T @ b) * (d.T @ d))
        mttkrp_d = (p * c[:, None, :]).sum(0)
        d = _solve(mttkrp_d, (a.T @ a) * (b.T @ b) * (c.T @ c))
        fit = (mttkrp_d * d).sum()  # <W, W_hat>
        model2 = ((a.T @ a) * (b.T @ b) * (c.T @ c) * (d.T @ d)).sum()  # ||W_hat||^2
        error = float((norm2 - 2 * fit + model2).clamp_min(0).sqrt()) / norm2**0.5
        if abs(previous - error) < tol:
            break
        previous = error
    return a, b, c, d


def _solve(mttkrp: torch.Tensor, gram: torch.Tensor) -> torch.Tensor:
    """The ALS update mttkrp @ pinv(gram) (gram symmetric, R x R)."""
    return torch.linalg.lstsq(gram, mttkrp.T).solution.T
