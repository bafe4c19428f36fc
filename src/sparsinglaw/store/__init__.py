"""What runs and studies keep on disk: a run's measurements (``database``, ``RUN_DIR/results.sqlite``), its
checkpoints and validation sequences (``runs``), the files a study writes and its report reads
(``artifacts``) and their names (``layout``); see docs/architecture.md, "Files"."""
