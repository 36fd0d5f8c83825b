"""``neurofs://``: the mount's tree for fsspec (Dask, zarr, pandas, h5py) without FUSE.

Registered with fsspec as protocol ``neurofs`` (the package's ``fsspec.specs`` entry point).
It imports nothing of the FUSE layer's pyfuse3: workers need no libfuse and no /dev/fuse.
"""

from neurofs.fsspec.filesystem import NeurofsFile, NeurofsFileSystem

__all__ = ["NeurofsFile", "NeurofsFileSystem"]
