"""What a forward pass gives: hooks on every unit (``hooks``), the kept units counted (``activity``), and the
per-sequence losses of passes over evaluation data (``passes``). The layer under every target's measurement
(``targets.engine``); see docs/architecture.md."""
