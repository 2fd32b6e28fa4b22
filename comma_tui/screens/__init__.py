"""The console's screens: main, run detail, review mode, and the modal forms and prompts."""
