"""MicroPVR stand-in: a small, faithful imitation of the proprietary MicroPVR records manager.

Used only by this collection's tests.  The modules hold the pure logic (config parsing, database
schemas and migrations, health computation, JSON-RPC validation) so that unit tests can import
them without starting a server; ``daemon`` and ``server`` wire them into the running daemon.
"""
