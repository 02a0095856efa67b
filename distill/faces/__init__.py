"""Faces: MTCNN cropping (crop.py) and the HDF5 face store (store.py)."""
