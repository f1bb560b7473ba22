"""Integration tests of machine-account capture and repair against a real Samba AD domain."""
