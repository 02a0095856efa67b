"""Teachers: Keras HDF5 models (mini_xception, keras:PATH), face-api (TF.js), VGG-S, timm + checkpoint, ONNX and
TorchScript / torch.export graphs (onnx:PATH, torchscript:PATH), ensembles."""

from distill.teachers import face_api, graphs, vgg_s, zoo  # noqa: F401  (registers the teachers)
