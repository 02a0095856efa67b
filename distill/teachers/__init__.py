"""Teachers: Keras HDF5 models (mini_xception, keras:PATH), face-api (TF.js), VGG-S, timm + checkpoint, ensembles."""

from distill.teachers import face_api, vgg_s, zoo  # noqa: F401  (registers the teachers)
