"""Views: identity leaves a face as it is, stored parameters reproduce a view exactly, draws are per face."""

import numpy as np
import torch

from distill.config import AugmentConfig
from distill.faces import augment


def test_identity_view_is_the_face_and_a_flip_mirrors_it():
    x = torch.rand(2, 3, 16, 16)
    identity = torch.from_numpy(np.stack([augment.IDENTITY] * 2))
    torch.testing.assert_close(augment.apply_views(x, identity), x, atol=1e-5, rtol=0)
    flipped = identity.clone()
    flipped[:, 0] = 1
    torch.testing.assert_close(augment.apply_views(x, flipped), x.flip(-1), atol=1e-5, rtol=0)


def test_views_are_drawn_per_face_and_seed():
    cfg = AugmentConfig()
    a, b = augment.view_params(7, 4, cfg, 0), augment.view_params(7, 4, cfg, 0)
    assert a.shape == (4, augment.N_PARAMS) and np.array_equal(a, b)
    assert not np.array_equal(a, augment.view_params(8, 4, cfg, 0))
    assert not np.array_equal(a, augment.view_params(7, 4, cfg, 1))
    assert (np.abs(np.rad2deg(a[:, 1])) <= cfg.degrees).all() and ((a[:, 2] >= 0.9) & (a[:, 2] <= 1.1)).all()


def test_to_float_is_channels_first_in_unit_range():
    px = np.full((1, 4, 4, 3), 255, np.uint8)
    px[..., 1] = 0
    out = augment.to_float(px)
    assert out.shape == (1, 3, 4, 4) and out[0, 0].min() == 1 and out[0, 1].max() == 0
