"""QA for batches: per-image metrics, outlier flags, and an HTML + JSON report."""
