"""The ``azora`` command line."""
