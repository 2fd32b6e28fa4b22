"""One run: its spec, the pipeline of stages, post-filter training, archives, submissions, exports and sweeps."""
