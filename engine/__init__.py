"""The engine: video I/O, codecs, filters, the scorer, the run pipeline and the scheduler.

Its rooms, bottom to top: `media` (video in and out), `scoring` (the exact scorer), `runs` (one
run's stages), `sched` (the queue and its workers); `demo` makes the demo lab's assets. A room
imports only the rooms below it. The engine never draws and never imports Textual; it reports
progress as events.
"""

__version__ = "0.1.0"
