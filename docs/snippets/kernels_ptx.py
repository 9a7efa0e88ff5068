# shown in: docs/kernels.md
# needs: nvcc
"""The kernels' entry points in the PTX that nvcc makes of each .cu file (no GPU needed)."""

import re
import subprocess
import tempfile
from pathlib import Path

from tinyalex.kernels import cuda

with tempfile.TemporaryDirectory() as folder:
    for filename in ("layers/conv.cu", "layers/lrn.cu", "layers/maxpool.cu", "engines/winograd.cu", "sgd.cu"):
        source, ptx = Path(folder) / "kernels.cu", Path(folder) / "out.ptx"
        source.write_text(cuda.gpu_source(filename))     # what CuPy compiles: KERNEL_LOOP defined first
        subprocess.run(["nvcc", "-ptx", "-Dscalar_t=float", "-x", "cu", str(source), "-o", str(ptx)], check=True)
        entries = re.findall(r"\.visible \.entry \w+\(", ptx.read_text())
        print(f"{filename:19} " + "   ".join(entries))
