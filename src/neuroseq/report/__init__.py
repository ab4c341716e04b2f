"""Report figures: one module per analysis; each writes PNGs that the workflow's report shows."""
