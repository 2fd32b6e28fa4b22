"""The console's widgets: the ledger table, the queue pane, the score plot and the status line."""
