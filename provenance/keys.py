"""Signing identities: a local certificate authority + an ES256 (P-256) C2PA signing certificate.

Layout of a key directory (``faceforge provenance init KEY_DIR``)::

    KEY_DIR/      the folder itself                                                      0700
    ca.pem        CA certificate (basicConstraints CA, keyUsage keyCertSign + cRLSign)   0644
    ca.key        CA private key (PKCS#8 PEM)                                            0600
    signer.pem    signing certificate (digitalSignature, EKU emailProtection, SKI/AKI)    0644
    signer.key    signing private key (PKCS#8 PEM)                                       0600
    chain.pem     signer.pem + ca.pem, the chain embedded in every manifest              0644

Signing goes through the small :class:`Signer` interface (``alg``, ``certificate_chain()``,
``sign(data)``): :class:`LocalKeySigner` holds a key file today; a KMS/HSM signer only needs the
same three members. Private keys are never printed or logged, and never overwritten without
``force=True``; nothing is signed with a key that group/others can read or whose folder they can write
(they could swap the key or the chain). ``cryptography`` is imported lazily.
"""

from __future__ import annotations

import datetime
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from core.common import FaceforgeError, atomic_write, get_logger, require_file

log = get_logger("provenance.keys")

CA_CERT, CA_KEY = "ca.pem", "ca.key"
SIGNER_CERT, SIGNER_KEY = "signer.pem", "signer.key"
CHAIN = "chain.pem"
KEY_MODE = 0o600            # private keys: owner read/write only
KEY_DIR_MODE = 0o700        # the key folder: owner only, whatever the umask
CERT_MODE = 0o644
CA_DAYS, SIGNER_DAYS = 3650, 825
BACKDATE = datetime.timedelta(hours=1)  # tolerate small clock skew between signer and verifier


@runtime_checkable
class Signer(Protocol):
    """What c2pa_io needs to sign a claim. ES256: ``sign`` returns raw ``r || s`` (64 bytes)."""

    alg: str

    def certificate_chain(self) -> bytes: ...

    def sign(self, data: bytes) -> bytes: ...


class LocalKeySigner:
    """ES256 signer backed by a PEM private key file and a PEM chain (signer first, then CAs)."""

    alg = "es256"

    def __init__(self, key_path: str | os.PathLike, chain_path: str | os.PathLike):
        self.key_path = require_file(key_path, "signing key")
        self.chain_path = require_file(chain_path, "certificate chain")
        check_key_mode(self.key_path)
        check_key_dir(self.key_path.parent)
        self._key = None

    def __repr__(self) -> str:  # never show key material
        return f"LocalKeySigner(key={self.key_path.name}, chain={self.chain_path.name})"

    def certificate_chain(self) -> bytes:
        return self.chain_path.read_bytes()

    def _private_key(self):
        if self._key is None:
            from cryptography.hazmat.primitives import serialization
            from cryptography.hazmat.primitives.asymmetric import ec

            try:
                key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
            except (ValueError, TypeError) as e:
                raise FaceforgeError(f"signing key {self.key_path} is not an unencrypted PEM key: "
                                     f"{type(e).__name__}") from None
            if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
                raise FaceforgeError(f"signing key {self.key_path} must be an EC P-256 key (ES256)")
            self._key = key
        return self._key

    def sign(self, data: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        der = self._private_key().sign(data, ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")  # COSE ES256: raw r || s


@dataclass(frozen=True)
class Identity:
    """A signing identity: the signer plus the CA certificate that verifiers may trust."""

    key_dir: Path | None
    signer: Signer
    ca_cert: Path | None        # PEM of the root to configure as a trust anchor (None if unknown)
    subject: str

    def trust_anchor_pem(self) -> str | None:
        return self.ca_cert.read_text() if self.ca_cert is not None else None


def check_key_mode(path: Path) -> None:
    """Refuse private keys readable by group/others (like ssh does)."""
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise FaceforgeError(f"private key {path} has mode {mode:04o}; run: chmod 600 {path}")


def check_key_dir(folder: Path) -> None:
    """Refuse a key folder that group/others can write: they could replace the key or the chain."""
    mode = stat.S_IMODE(folder.stat().st_mode)
    if mode & 0o022:
        raise FaceforgeError(f"key folder {folder} is writable by group/others (mode {mode:04o}); "
                             f"run: chmod 700 {folder}")


def make_key_dir(key_dir: Path) -> None:
    """Create the key folder (and parents) and set it to 0700 whatever the umask: the one place."""
    key_dir.mkdir(parents=True, exist_ok=True, mode=KEY_DIR_MODE)
    os.chmod(key_dir, KEY_DIR_MODE)


def _write(path: Path, data: bytes, mode: int) -> None:
    with atomic_write(path, "wb") as f:  # set the key mode before any key byte is written
        os.fchmod(f.fileno(), mode)
        f.write(data)


def _name(common_name: str, org: str):
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)])


def _key_usage(*, signing: bool):
    from cryptography import x509

    return x509.KeyUsage(digital_signature=signing, content_commitment=False, key_encipherment=False,
                         data_encipherment=False, key_agreement=False, key_cert_sign=not signing,
                         crl_sign=not signing, encipher_only=False, decipher_only=False)


def init_identity(key_dir: str | os.PathLike, force: bool = False, common_name: str = "faceforge signer",
                  organization: str = "faceforge") -> Identity:
    """Create a local CA and a C2PA-acceptable ES256 signing certificate in ``key_dir``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    key_dir = Path(key_dir)
    existing = [n for n in (CA_CERT, CA_KEY, SIGNER_CERT, SIGNER_KEY, CHAIN) if (key_dir / n).exists()]
    if existing and not force:
        raise FaceforgeError(f"{key_dir} already holds {', '.join(existing)}; use --force to replace them")
    make_key_dir(key_dir)
    now = datetime.datetime.now(datetime.timezone.utc) - BACKDATE

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"{organization} local CA", organization)
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=CA_DAYS))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(_key_usage(signing=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name(common_name, organization)).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=SIGNER_DAYS))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(signing=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))

    pem = serialization.Encoding.PEM
    pkcs8 = dict(encoding=pem, format=serialization.PrivateFormat.PKCS8,
                 encryption_algorithm=serialization.NoEncryption())
    _write(key_dir / CA_KEY, ca_key.private_bytes(**pkcs8), KEY_MODE)
    _write(key_dir / SIGNER_KEY, key.private_bytes(**pkcs8), KEY_MODE)
    _write(key_dir / CA_CERT, ca.public_bytes(pem), CERT_MODE)
    _write(key_dir / SIGNER_CERT, cert.public_bytes(pem), CERT_MODE)
    _write(key_dir / CHAIN, cert.public_bytes(pem) + ca.public_bytes(pem), CERT_MODE)
    log.info("created signing identity in %s (folder 0700, CA + ES256 signer, keys 0600)", key_dir)
    return load_identity(key_dir)


def load_identity(key_dir: str | os.PathLike) -> Identity:
    """Load the identity made by :func:`init_identity` (or a user's own chain/key in that layout)."""
    key_dir = Path(key_dir)
    if not key_dir.is_dir():
        raise FaceforgeError(f"key directory not found: {key_dir} (run: faceforge provenance init {key_dir})")
    chain = key_dir / CHAIN if (key_dir / CHAIN).exists() else key_dir / SIGNER_CERT
    signer = LocalKeySigner(key_dir / SIGNER_KEY, chain)
    ca = key_dir / CA_CERT
    return Identity(key_dir=key_dir, signer=signer, ca_cert=ca if ca.exists() else None,
                    subject=_subject(chain))


def ensure_identity(key_dir: str | os.PathLike) -> Identity:
    """The identity in ``key_dir``, created there first (folder 0700) when it holds none yet."""
    key_dir = Path(key_dir)
    if any((key_dir / n).exists() for n in (CA_CERT, SIGNER_CERT, SIGNER_KEY, CHAIN)):
        return load_identity(key_dir)
    log.info("creating a signing identity in %s", key_dir)
    return init_identity(key_dir)


def identity_from_files(chain_pem: str | os.PathLike, key_pem: str | os.PathLike,
                        ca_pem: str | os.PathLike | None = None) -> Identity:
    """Bring your own chain (signer first) and ES256 key."""
    signer = LocalKeySigner(key_pem, chain_pem)
    return Identity(key_dir=None, signer=signer, ca_cert=Path(ca_pem) if ca_pem else None,
                    subject=_subject(Path(chain_pem)))


def _subject(chain: Path) -> str:
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificates(chain.read_bytes())[0]
    except (ValueError, IndexError):
        raise FaceforgeError(f"{chain} is not a PEM certificate chain") from None
    return cert.subject.rfc4514_string()
