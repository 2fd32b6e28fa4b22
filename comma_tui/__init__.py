"""comma-tui: the lab console for the comma.ai video compression challenge."""
