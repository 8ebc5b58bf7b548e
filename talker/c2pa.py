"""The C2PA manifest in every MP4: signing it (the deployer's certificate, or one issued at first use by a
local CA kept in the data folder) and reading it back."""

from __future__ import annotations

import datetime
import json
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from talker import __version__
from talker.paths import user_data_dir

log = logging.getLogger(__name__)

ENV_CERT = "TALKER_C2PA_CERT"  # PEM chain: signing certificate first, then its issuers
ENV_KEY = "TALKER_C2PA_KEY"  # PEM private key of the signing certificate
SOURCE_TYPE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"
MIME = {".mp4": "video/mp4", ".m4a": "audio/mp4", ".mov": "video/quicktime", ".png": "image/png",
        ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".wav": "audio/wav", ".mp3": "audio/mpeg",
        ".webp": "image/webp"}  # fmt: skip


@dataclass(frozen=True)
class Manifest:
    """``state``: "valid" (signature and content hashes check), "invalid" or "absent"; ``trusted``:
    whether the signer chains to a trust anchor the reader knows (a local CA never does)."""

    state: Literal["valid", "invalid", "absent"]
    trusted: bool = False
    generator: str = ""
    source_type: str = ""
    detail: str = ""


def signing_credentials(data_dir: Path | None = None) -> tuple[bytes, bytes]:
    """(PEM certificate chain, PEM private key): the deployer's, else the local ones (made once)."""
    cert, key = os.environ.get(ENV_CERT), os.environ.get(ENV_KEY)
    if cert and key:
        return Path(cert).read_bytes(), Path(key).read_bytes()
    folder = (data_dir or user_data_dir()) / "c2pa"
    chain, pkey = folder / "chain.pem", folder / "signer.key"
    if not (chain.exists() and pkey.exists()):
        folder.mkdir(parents=True, exist_ok=True)
        c, k = _local_credentials()
        tmp = pkey.with_suffix(".tmp")
        tmp.write_bytes(k)
        tmp.chmod(0o600)
        tmp.replace(pkey)
        chain.write_bytes(c)
        log.info("made a local C2PA signing certificate in %s (untrusted outside this machine)", folder)
    return chain.read_bytes(), pkey.read_bytes()


def _local_credentials() -> tuple[bytes, bytes]:
    """A local CA and an ES256 claim-signing certificate it issued (c2pa refuses self-signed leaves)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(days=1), now + datetime.timedelta(days=3650)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, "talker (local, untrusted)")])  # fmt: skip

    def usage(sign: bool, ca: bool) -> x509.KeyUsage:
        return x509.KeyUsage(digital_signature=sign, content_commitment=False, key_encipherment=False,
                             data_encipherment=False, key_agreement=False, key_cert_sign=ca, crl_sign=ca,
                             encipher_only=False, decipher_only=False)  # fmt: skip

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(name("talker local CA")).issuer_name(name("talker local CA"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(usage(False, True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder().subject_name(name("talker signer")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(start).not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(usage(True, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    pem = serialization.Encoding.PEM
    chain = leaf.public_bytes(pem) + ca.public_bytes(pem)
    pkey = key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return chain, pkey


def sign_mp4(path: str | Path, output_id: int | None = None, data_dir: Path | None = None) -> None:
    """Embed a signed C2PA manifest in the MP4 at ``path`` (rewritten in place)."""
    try:
        import c2pa
    except ImportError as e:
        raise RuntimeError("C2PA signing needs c2pa-python: pip install c2pa-python") from e
    path = Path(path)
    chain, pkey = signing_credentials(data_dir)
    agent = {"name": "talker", "version": __version__}
    created: dict[str, Any] = {"action": "c2pa.created", "digitalSourceType": SOURCE_TYPE, "softwareAgent": agent}
    if output_id is not None:
        created["parameters"] = {"talker.output_id": f"{output_id:08x}"}
    manifest = {
        "claim_generator_info": [agent],
        "title": path.name,
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [created]}}],
    }
    signer = c2pa.Signer.from_info(c2pa.C2paSignerInfo(b"es256", chain, pkey, None))
    builder = c2pa.Builder(json.dumps(manifest))
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".c2pa", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w+b") as dst, path.open("rb") as src:
            builder.sign(signer, "video/mp4", src, dst)
        shutil.copymode(path, tmp)  # (mkstemp makes the file private; the signed video keeps the original's mode)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
        builder.close()
        signer.close()


def read_manifest(path: Path) -> Manifest:
    """The C2PA manifest's state in the file at ``path``."""
    try:
        import c2pa
    except ImportError:
        return Manifest("absent", detail="c2pa-python is not installed: pip install c2pa-python")
    mime = MIME.get(path.suffix.lower())
    if mime is None:
        return Manifest("absent", detail=f"no C2PA reader for {path.suffix or 'this file'}")
    try:
        with path.open("rb") as f, c2pa.Reader(mime, f) as r:
            state = str(r.get_validation_state() or "")
            results = r.get_validation_results() or {}
            store = json.loads(r.json())
    except c2pa.C2paError as e:
        if "ManifestNotFound" in type(e).__name__ or "no JUMBF" in str(e):
            return Manifest("absent")
        return Manifest("invalid", detail=str(e))
    failures = [f.get("code", "") for f in (results.get("activeManifest") or {}).get("failure", [])]
    active = store.get("manifests", {}).get(store.get("active_manifest", ""), {})
    gen = ", ".join(f"{g.get('name')} {g.get('version', '')}".strip() for g in active.get("claim_generator_info", []))
    src = ""
    for a in active.get("assertions", []):
        for act in a.get("data", {}).get("actions", []) if a.get("label", "").startswith("c2pa.actions") else []:
            src = act.get("digitalSourceType", src) or src
    trusted = state == "Trusted"
    if state in ("Valid", "Trusted"):
        untrusted = [f for f in failures if f != "signingCredential.untrusted"]
        if not untrusted:
            return Manifest("valid", trusted, gen, src)
    return Manifest("invalid", False, gen, src, detail=", ".join(failures) or state)
