"""Files as the toolkit writes and reads them: atomic writes, HDF5 shards, locks, torch files."""
