"""Pure domain: synchronous functions over immutable values.

Nothing in this package imports protobuf, grpc, asyncio, a database driver or reads the wall clock;
time is passed in as an argument. ``tests/test_layers.py`` enforces it.
"""
