"""Published coefficients (docs/paper.md section 3) and the paper's measured curves, both as shipped with the
package (sparsinglaw/laws/paper_data, read through sparsinglaw.laws.paper)."""

from __future__ import annotations

from sparsinglaw.laws.paper import paper_coefficients, paper_curve_names, paper_curve_path

# The folder of the packaged curves: tests read ``DATA_DIR / "0.4b_relu.json"`` like any user file.
DATA_DIR = paper_curve_path("0.1b_relu").parent

# ReLU (alpha, b, c, A0); SiLU (alpha, c, A0); every published set per curve (2.4B ReLU has two).
PUBLISHED = {name: [tuple(params.values()) for params in paper_coefficients(name).sets()]
             for name in paper_curve_names()}
