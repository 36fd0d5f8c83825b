"""Run by pvpython (ParaView's Python): open each volume header with ParaView's own reader.

Arguments: a JSON list of voxel indices ``[[x, y, z], ...]``, a directory for the voxels,
then the header files. For each file it prints one JSON line (the reader ParaView chose, the
image's dimensions, spacing, origin, element type, value range, and the values at the given
indices) and saves all the voxels as ``<directory>/<n>.npy``, shaped (z, y, x).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np
from paraview.simple import OpenDataFile, servermanager
from vtkmodules.util.numpy_support import vtk_to_numpy

points = json.loads(sys.argv[1])
out_dir = sys.argv[2]
for n, path in enumerate(sys.argv[3:]):
    reader = OpenDataFile(path)
    if reader is None:
        sys.exit(f"ParaView has no reader for {path}")
    reader.UpdatePipeline()
    image = servermanager.Fetch(reader)
    data = image.GetPointData()
    array = data.GetScalars() or data.GetArray(0)
    nx, ny, nz = image.GetDimensions()
    np.save(os.path.join(out_dir, f"{n}.npy"), vtk_to_numpy(array).reshape(nz, ny, nx))
    print(
        json.dumps(
            {
                "path": path,
                "reader": type(reader).__name__,
                "dimensions": [nx, ny, nz],
                "components": array.GetNumberOfComponents(),
                "spacing": list(image.GetSpacing()),
                "origin": list(image.GetOrigin()),
                "type": array.GetDataTypeAsString(),
                "range": list(array.GetRange(0)),
                "values": [array.GetValue(x + nx * (y + ny * z)) for x, y, z in points],
            }
        )
    )
