"""Ed25519 signature checks through the OpenSSL libcrypto that Python's ssl module loads.

The relay checks an Ed25519 signature on every job envelope and does nothing else with
`cryptography`, whose import costs the idle daemon ~7 MiB of resident memory. The libcrypto
that the TLS connection to the broker already maps does the same check, and releases the
GIL while it does (ctypes calls do), so intake can overlap with the other threads.
"""

from __future__ import annotations

import base64
import binascii
import ctypes
import functools
import re

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
_EVP_PKEY_ED25519 = 1087  # NID_ED25519
# The DER SubjectPublicKeyInfo of an Ed25519 key (RFC 8410) is this prefix plus the key.
_SPKI_PREFIX = bytes.fromhex("302a300506032b6570032100")
_PEM = re.compile(rb"-----BEGIN PUBLIC KEY-----\s*([A-Za-z0-9+/=\s]+?)\s*-----END PUBLIC KEY-----")
_SYMBOLS = (
    "EVP_PKEY_new_raw_public_key",
    "EVP_PKEY_free",
    "EVP_MD_CTX_new",
    "EVP_MD_CTX_free",
    "EVP_DigestVerifyInit",
    "EVP_DigestVerify",
    "ERR_clear_error",
)


def _open_libcrypto() -> ctypes.CDLL:
    """libcrypto (OpenSSL >= 1.1.1), preferably the very copy the ssl module is linked to."""
    import _ssl

    candidates = [getattr(_ssl, "__file__", None), "libcrypto.so.3", "libcrypto.so.1.1"]
    for candidate in candidates:
        if candidate is None:
            continue
        try:
            lib = ctypes.CDLL(candidate)  # dlsym on _ssl also searches the libraries it needs
        except OSError:
            continue
        if all(hasattr(lib, symbol) for symbol in _SYMBOLS):
            return lib
    raise OSError("no libcrypto with Ed25519 support (OpenSSL 1.1.1 or later) was found")


@functools.cache
def _libcrypto() -> ctypes.CDLL:
    lib = _open_libcrypto()
    c_void_p, c_char_p, c_size_t, c_int = (
        ctypes.c_void_p,
        ctypes.c_char_p,
        ctypes.c_size_t,
        ctypes.c_int,
    )
    lib.EVP_PKEY_new_raw_public_key.argtypes = [c_int, c_void_p, c_char_p, c_size_t]
    lib.EVP_PKEY_new_raw_public_key.restype = c_void_p
    lib.EVP_PKEY_free.argtypes = [c_void_p]
    lib.EVP_PKEY_free.restype = None
    lib.EVP_MD_CTX_new.argtypes = []
    lib.EVP_MD_CTX_new.restype = c_void_p
    lib.EVP_MD_CTX_free.argtypes = [c_void_p]
    lib.EVP_MD_CTX_free.restype = None
    lib.EVP_DigestVerifyInit.argtypes = [c_void_p, c_void_p, c_void_p, c_void_p, c_void_p]
    lib.EVP_DigestVerifyInit.restype = c_int
    lib.EVP_DigestVerify.argtypes = [c_void_p, c_char_p, c_size_t, c_char_p, c_size_t]
    lib.EVP_DigestVerify.restype = c_int
    lib.ERR_clear_error.argtypes = []
    lib.ERR_clear_error.restype = None
    return lib


def raw_key_from_pem(pem: bytes) -> bytes:
    """The 32 key bytes of a PEM `PUBLIC KEY` (SubjectPublicKeyInfo) holding an Ed25519 key."""
    match = _PEM.search(pem)
    if match is None:
        raise ValueError("not a PEM public key (no BEGIN/END PUBLIC KEY block)")
    try:
        der = base64.b64decode(b"".join(match.group(1).split()), validate=True)
    except binascii.Error:
        raise ValueError("the PEM public key is not valid base64") from None
    if len(der) != len(_SPKI_PREFIX) + PUBLIC_KEY_BYTES or not der.startswith(_SPKI_PREFIX):
        raise ValueError("envelope public key is not an Ed25519 key")
    return der[len(_SPKI_PREFIX) :]


class Ed25519PublicKey:
    """An Ed25519 public key that verifies signatures; safe to share between threads."""

    def __init__(self, raw: bytes) -> None:
        if len(raw) != PUBLIC_KEY_BYTES:
            raise ValueError(f"an Ed25519 public key has {PUBLIC_KEY_BYTES} bytes, not {len(raw)}")
        self._lib = _libcrypto()
        pkey = self._lib.EVP_PKEY_new_raw_public_key(_EVP_PKEY_ED25519, None, raw, len(raw))
        if not pkey:
            self._lib.ERR_clear_error()
            raise ValueError("OpenSSL refused the Ed25519 public key")
        self._pkey: int | None = pkey
        self.raw = raw

    @classmethod
    def from_pem(cls, pem: bytes) -> Ed25519PublicKey:
        return cls(raw_key_from_pem(pem))

    def __del__(self) -> None:
        pkey, self._pkey = getattr(self, "_pkey", None), None
        if pkey:
            self._lib.EVP_PKEY_free(pkey)

    def verify(self, signature: bytes, message: bytes) -> bool:
        """True only when `signature` is this key's valid signature of `message`."""
        if len(signature) != SIGNATURE_BYTES or not self._pkey:
            return False
        lib = self._lib
        ctx = lib.EVP_MD_CTX_new()
        if not ctx:
            raise MemoryError("EVP_MD_CTX_new failed")
        try:
            ready = lib.EVP_DigestVerifyInit(ctx, None, None, None, self._pkey)
            verdict = (
                lib.EVP_DigestVerify(ctx, signature, len(signature), message, len(message))
                if ready == 1
                else ready
            )
        finally:
            lib.EVP_MD_CTX_free(ctx)
        if verdict != 1:
            # A failed check leaves entries in this thread's OpenSSL error queue; the ssl
            # module reads that queue to explain TLS errors on this same thread later.
            lib.ERR_clear_error()
            if ready != 1:
                raise RuntimeError("OpenSSL could not set up Ed25519 verification")
        return bool(verdict == 1)
