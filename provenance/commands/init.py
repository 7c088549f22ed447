"""Create a local certificate authority and an ES256 C2PA signing certificate.

Example:
  faceforge provenance init keys/            # keys/{ca.pem, ca.key, signer.pem, signer.key, chain.pem}

KEY_DIR is created (or set) 0700 whatever the umask, private keys 0600, never printed; an existing
identity is kept unless --force; signing refuses a key folder that group/others can write. Give verifiers keys/ca.pem as a trust anchor (faceforge provenance verify --trust keys/ca.pem).
"""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("key_dir", help="directory for the CA and signing certificate")
    p.add_argument("--force", action="store_true", help="replace an existing identity in KEY_DIR")
    p.add_argument("--common-name", default="faceforge signer", help="signer certificate CN")
    p.add_argument("--organization", default="faceforge", help="certificate O (also names the CA)")


def run(args: argparse.Namespace) -> int:
    from provenance.keys import init_identity

    ident = init_identity(args.key_dir, force=args.force, common_name=args.common_name,
                          organization=args.organization)
    print(f"signing identity: {ident.subject}")
    print(f"  trust anchor (share it): {ident.ca_cert}")
    print(f"  private keys (mode 0600): {ident.key_dir}/ca.key, {ident.key_dir}/signer.key")
    return 0
