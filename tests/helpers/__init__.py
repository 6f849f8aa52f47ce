"""Helpers that several test modules share (importable from any test folder: pyproject's
pytest `pythonpath` holds tests/). Test modules never import each other."""
