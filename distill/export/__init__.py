"""Export: a student as a torch.export or ONNX graph (formats.py), optionally int8 (int8.py)."""
