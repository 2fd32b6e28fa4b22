"""Running the queue: the scheduler, its state, the worker pool, the worker, and the control client."""
