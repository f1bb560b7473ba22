"""Unit tests of the macct building blocks (no Samba needed)."""
