from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("distill")
except PackageNotFoundError:  # run from a checkout on PYTHONPATH, uninstalled (e.g. benchmarks/gpu_check.sh)
    __version__ = "0+checkout"
