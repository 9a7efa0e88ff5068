# shown in: docs/kernels.md
# needs: nvcc
"""The kernels' entry points in the PTX that nvcc makes of each .cu file (no GPU needed)."""

import re
import subprocess
import tempfile
from pathlib import Path

LAYERS = Path(__file__).resolve().parents[2] / "tinyalex" / "layers"

with tempfile.TemporaryDirectory() as folder:
    for source in ("lrn.cu", "maxpool.cu"):
        ptx = Path(folder) / "out.ptx"
        subprocess.run(["nvcc", "-ptx", "-Dscalar_t=float", "-x", "cu", str(LAYERS / source), "-o", str(ptx)],
                       check=True)
        entries = re.findall(r"\.visible \.entry \w+\(", ptx.read_text())
        print(f"{source:10} " + "   ".join(entries))
