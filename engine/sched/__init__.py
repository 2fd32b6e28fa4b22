"""Running the queue: the scheduler, its state, its execution backends (local worker processes, Ray
jobs), the worker, and the control client."""
