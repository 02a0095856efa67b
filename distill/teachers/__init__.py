"""Teachers: Keras HDF5 models (mini_xception, keras:PATH), VGG-S, timm + checkpoint, ensembles."""

from distill.teachers import vgg_s, zoo  # noqa: F401  (registers the teachers)
