"""Lightning training: data (HDF5 store + cache), module (student, loss, metrics), trainer setup."""
