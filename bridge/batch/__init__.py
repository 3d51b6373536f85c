"""Batch: one recipe over a folder of images, resumable, in parallel, with a QA report.

`run_batch(in_dir, recipe, out_dir, engine="local"|"ray")` is the entry point;
`retouch-bridge batch` is its command line.
"""
