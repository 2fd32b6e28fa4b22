"""A third-party codec for the tests: registered only through an entry point, as a plug-in would be."""
