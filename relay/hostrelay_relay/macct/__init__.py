"""Machine-account capture and repair on a Samba AD DC (LINBO image restore support)."""
