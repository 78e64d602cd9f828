"""The bot's certificate credential from PEM or base64 PKCS#12 (a Key Vault reference's text)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from bot.teams.tokens import CertificateCredential


class CertificateUnreadable(ValueError):
    """The text is not a certificate with its private key (the reason only, never the text)."""


def load_certificate(text: str) -> CertificateCredential:
    """MSAL's certificate credential from PEM (private key and certificate, in any order) or
    base64 PKCS#12 (what a Key Vault certificate read as a secret holds by default); neither
    protected by a password (Key Vault exports none)."""
    key: Any
    cert: x509.Certificate | None
    if "-----BEGIN" in text:
        data = text.encode()
        try:
            key = serialization.load_pem_private_key(data, None)
        except (ValueError, TypeError) as exc:
            raise CertificateUnreadable(f"no readable private key in the PEM ({exc})") from None
        try:
            cert = x509.load_pem_x509_certificate(data)
        except ValueError:
            raise CertificateUnreadable("no certificate in the PEM") from None
    else:
        try:
            raw = base64.b64decode("".join(text.split()), validate=True)
            key, cert, _ = pkcs12.load_key_and_certificates(raw, None)
        except (ValueError, TypeError, binascii.Error):
            raise CertificateUnreadable("neither PEM nor base64 PKCS#12 (or protected by a "
                                        "password)") from None
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) or cert is None:
        raise CertificateUnreadable("the certificate needs its RSA or EC private key")
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if key.public_key().public_bytes(*spki) != cert.public_key().public_bytes(*spki):
        raise CertificateUnreadable("the private key does not belong to the certificate")
    return {
        "private_key": key.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()).decode(),
        "thumbprint": cert.fingerprint(hashes.SHA1()).hex().upper(),  # Entra's x5t
        "public_certificate": cert.public_bytes(serialization.Encoding.PEM).decode(),
    }
