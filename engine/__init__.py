"""The engine: video I/O, codecs, filters, the scorer and the run pipeline.

The engine never draws and never imports Textual; it reports progress as events.
"""

__version__ = "0.1.0"
