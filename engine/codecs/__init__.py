"""Run kinds beyond the PyAV codecs, as plug-ins of `engine.runs.codec` (the neural codec)."""
