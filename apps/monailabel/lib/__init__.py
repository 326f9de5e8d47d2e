"""The ctharmonize MONAI Label app's code (``lib`` is the MONAI Label app convention)."""
