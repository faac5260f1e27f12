"""Per-pupil data keys: envelope encryption of everything the hub stores about a pupil.

Each pupil has an AES-256 data key (AES-GCM, from `cryptography`). It is stored only
wrapped by the master key, which a `KeyProvider` holds (a file for a local deployment;
a KMS implements the same two methods). Whatever the hub stores about a pupil (history
events, transfers' copies of histories and packets) is sealed with that data key, with
the pupil and the place it is stored bound in as associated data, so a sealed value
moved to another pupil or another row no longer opens.

Erasure (UK GDPR Article 17) destroys the wrapped key: every sealed copy, wherever it
is, becomes unreadable at once (crypto-shredding), while the hashes kept beside the
ciphertext still let the audit chain be verified. An erased pupil's key is never made
again: reading raises `PupilErased`, and so does writing.
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Protocol
from uuid import UUID, uuid5

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from psycopg import Connection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from services.shared.settings import LOCAL_DIR, HubSettings

SEALED_PREFIX = b"SH1:"
"""What every sealed value starts with: the format's version (1), so a plain value
stored before encryption existed is told apart and a later format can follow."""
_NONCE_BYTES = 12


class KeyProvider(Protocol):
    """Wraps and unwraps data keys with a master key the hub's database never sees."""

    @property
    def key_id(self) -> str:
        """Names the master key a wrapped key needs (kept beside it, for rotation)."""

    def wrap(self, data_key: bytes, pupil_ref: str) -> bytes: ...

    def unwrap(self, wrapped: bytes, pupil_ref: str) -> bytes: ...


class MasterKeyError(RuntimeError):
    """The master key is missing, malformed, or not the one the data keys were wrapped by."""


class FileKeyProvider:
    """A master key in a file (32 random bytes, base64), readable by the hub's user only.

    The local deployment's default file is made on first use; a file named in settings
    must exist, since a new master key would leave every pupil's data unreadable.
    """

    def __init__(self, path: Path, *, create: bool = False) -> None:
        self.path = path
        if create and not path.exists():
            _make_master_key(path)
        try:
            master = base64.b64decode(path.read_text().strip(), validate=True)
        except FileNotFoundError:
            raise MasterKeyError(f"the master key file {path} does not exist: restore it "
                                 "(SENDHUB_MASTER_KEY_FILE names it); without it no pupil's "
                                 "data can be read") from None
        except ValueError:
            raise MasterKeyError(f"the master key file {path} is not base64") from None
        if len(master) != 32:
            raise MasterKeyError(f"the master key in {path} has {len(master)} bytes, not 32")
        self._aead = AESGCM(master)
        self._key_id = "file:" + hashlib.sha256(master).hexdigest()[:16]

    @property
    def key_id(self) -> str:
        return self._key_id

    def wrap(self, data_key: bytes, pupil_ref: str) -> bytes:
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data_key, pupil_ref.encode())

    def unwrap(self, wrapped: bytes, pupil_ref: str) -> bytes:
        try:
            return self._aead.decrypt(wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:],
                                      pupil_ref.encode())
        except InvalidTag:
            raise MasterKeyError(f"pupil {pupil_ref}'s data key does not open with the master "
                                 f"key {self.key_id} ({self.path}): the wrong master key, or "
                                 "a tampered key row") from None


def _make_master_key(path: Path) -> None:
    """Written whole to a temporary file, flushed to disk, then linked into place: a
    process starting at the same moment sees no file or the whole key, never half, and
    the first link wins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(base64.b64encode(AESGCM.generate_key(bit_length=256)).decode())
            out.flush()
            os.fsync(out.fileno())
        try:
            os.link(temporary, path)  # fails if another process linked its key first
        except FileExistsError:
            pass
    finally:
        temporary.unlink(missing_ok=True)


@dataclass(frozen=True)
class Erasure:
    """When a pupil's key was destroyed, by whose authority, and why."""

    pupil_ref: str
    erased_at: datetime
    authorised_by: str
    reason: str

    def describe(self) -> str:
        return (f"erased on {self.erased_at.date().isoformat()} by {self.authorised_by} "
                f"because {self.reason}")

    def describe_for_receivers(self) -> str:
        """What receivers and lists are told: the date only. Who authorised it and why
        (a court order, a parent's objection) stay with the hub's operator and auditors."""
        return f"erased on {self.erased_at.date().isoformat()}"


class PupilErased(Exception):
    """The pupil's data key was destroyed: what was sealed with it cannot be read."""

    def __init__(self, erasure: Erasure) -> None:
        super().__init__(f"pupil {erasure.pupil_ref}'s data was {erasure.describe()}")
        self.erasure = erasure


class SealedValueBroken(ValueError):
    """A sealed value does not open with its pupil's key: altered, or moved elsewhere."""


def pupil_ref(pupil_id: UUID | str) -> str:
    """The key's name: the pupil's stream id (uuid5 of the UPN), never the UPN itself."""
    return str(pupil_id)


_PUPIL_NAMESPACE = UUID("6f0f6c3e-2b7a-4c54-9a4f-5d1c0e9b1a10")
"""Records' namespace for pupils' stream ids (`services.records.domain.pupil_id_for`):
the same value, since services never import each other."""
ERASED_UPN_PREFIX = "erased:"
"""An erased pupil's UPN in the hub's tables becomes `erased:<stream id>` (migration 0007)."""


def pupil_ref_for_upn(upn: str) -> str:
    """The key's name of the pupil with this UPN (records' stream id, uuid5 of the UPN);
    for a UPN already replaced by the erasure's pseudonym, the stream id it names."""
    if upn.startswith(ERASED_UPN_PREFIX):
        return upn[len(ERASED_UPN_PREFIX):]
    return pupil_ref(uuid5(_PUPIL_NAMESPACE, upn))


class PupilKeys(ABC):
    """Each pupil's data key: made on first write, destroyed on erasure, cached briefly.

    Writes always ask the store (so a key destroyed by another process is never used
    again for new data); reads may use a key fetched within `cache_seconds`.
    """

    def __init__(self, cache_seconds: float = 60.0) -> None:
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, AESGCM]] = {}
        self._lock = threading.Lock()

    @abstractmethod
    def _fetch(self, refs: list[str], *, create: bool) -> dict[str, bytes | Erasure]:
        """The data keys (unwrapped) or erasures of `refs`; missing ones made if `create`."""

    @abstractmethod
    def _destroy(self, ref: str, authorised_by: str, reason: str) -> Erasure | None:
        """Destroy the key; None when the pupil had none (nothing was ever stored)."""

    @abstractmethod
    def erasure_of(self, ref: str) -> Erasure | None:
        """The pupil's erasure, if their key was destroyed."""

    @abstractmethod
    def erasures(self) -> list[Erasure]:
        """Every erasure, oldest first."""

    def prepare_for_writing(self, refs: Iterable[str]) -> dict[str, Erasure]:
        """Fetch (making where missing) the keys of a batch in one round trip; returns
        the erasures of the pupils among them that were erased (no key is made for them)."""
        wanted = sorted(set(refs))
        if not wanted:
            return {}
        found = self._fetch(wanted, create=True)
        now = time.monotonic()
        erased = {}
        with self._lock:
            for ref in wanted:
                value = found[ref]
                if isinstance(value, Erasure):
                    self._cache.pop(ref, None)
                    erased[ref] = value
                else:
                    self._cache[ref] = (now, AESGCM(value))
        return erased

    def prepare_for_reading(self, refs: Iterable[str]) -> None:
        """Fetch in one round trip the keys of many pupils about to be read (an inbox, a
        list of packets) that are not cached; an erased or unknown pupil is left for
        `open` to report."""
        now = time.monotonic()
        with self._lock:
            wanted = sorted({ref for ref in refs if ref not in self._cache
                             or now - self._cache[ref][0] >= self.cache_seconds})
        if not wanted:
            return
        found = self._fetch(wanted, create=False)
        now = time.monotonic()
        with self._lock:
            for ref, value in found.items():
                if isinstance(value, bytes):
                    self._cache[ref] = (now, AESGCM(value))

    def _key(self, ref: str, *, create: bool, fresh: bool) -> AESGCM:
        with self._lock:
            cached = self._cache.get(ref)
        if cached and time.monotonic() - cached[0] < (1.0 if fresh else self.cache_seconds):
            return cached[1]
        value = self._fetch([ref], create=create).get(ref)
        if value is None:
            raise KeyError(ref)
        if isinstance(value, Erasure):
            with self._lock:
                self._cache.pop(ref, None)
            raise PupilErased(value)
        aead = AESGCM(value)
        with self._lock:
            self._cache[ref] = (time.monotonic(), aead)
        return aead

    def seal(self, ref: str, plain: bytes, context: str) -> bytes:
        """`plain` sealed with the pupil's key; `context` (where it is stored) must be
        given again to open it. A key fetched over a second ago is asked for again."""
        nonce = os.urandom(_NONCE_BYTES)
        aead = self._key(ref, create=True, fresh=True)
        return SEALED_PREFIX + nonce + aead.encrypt(nonce, plain, f"{ref}|{context}".encode())

    def open(self, ref: str, sealed: bytes, context: str) -> bytes:
        if not is_sealed(sealed):
            raise SealedValueBroken("the value is not sealed")
        body = sealed[len(SEALED_PREFIX):]
        try:
            aead = self._key(ref, create=False, fresh=False)
        except KeyError:
            raise SealedValueBroken(f"pupil {ref} has no data key: the value was sealed for "
                                    "another pupil or the key row is gone") from None
        try:
            return aead.decrypt(body[:_NONCE_BYTES], body[_NONCE_BYTES:],
                                f"{ref}|{context}".encode())
        except InvalidTag:
            raise SealedValueBroken(f"the sealed value does not open with pupil {ref}'s key "
                                    f"for {context}: altered, or moved from elsewhere") from None

    def erase(self, ref: str, authorised_by: str, reason: str) -> Erasure | None:
        """Destroy the pupil's key (idempotent: a second erasure returns the first)."""
        with self._lock:
            self._cache.pop(ref, None)
        return self._destroy(ref, authorised_by, reason) or self.erasure_of(ref)


def is_sealed(value: bytes) -> bool:
    return value.startswith(SEALED_PREFIX)


class InMemoryPupilKeys(PupilKeys):
    """The same rules over a dict (unit tests and the in-memory stores)."""

    def __init__(self, cache_seconds: float = 60.0) -> None:
        super().__init__(cache_seconds)
        self._keys: dict[str, bytes | Erasure] = {}

    def _fetch(self, refs: list[str], *, create: bool) -> dict[str, bytes | Erasure]:
        for ref in refs:
            if create and ref not in self._keys:
                self._keys[ref] = AESGCM.generate_key(bit_length=256)
        return {ref: self._keys[ref] for ref in refs if ref in self._keys}

    def _destroy(self, ref: str, authorised_by: str, reason: str) -> Erasure | None:
        if not isinstance(self._keys.get(ref), bytes):
            return None
        from datetime import UTC
        erasure = Erasure(ref, datetime.now(UTC), authorised_by, reason)
        self._keys[ref] = erasure
        return erasure

    def erasure_of(self, ref: str) -> Erasure | None:
        value = self._keys.get(ref)
        return value if isinstance(value, Erasure) else None

    def erasures(self) -> list[Erasure]:
        return sorted((v for v in self._keys.values() if isinstance(v, Erasure)),
                      key=lambda e: e.erased_at)


class PostgresPupilKeys(PupilKeys):
    """Keys in `pupil_keys` (migration 0007): a trigger lets a row change only by erasure."""

    def __init__(self, conninfo: str, provider: KeyProvider, cache_seconds: float = 60.0
                 ) -> None:
        super().__init__(cache_seconds)
        self.provider = provider
        self.pool: ConnectionPool[Connection[DictRow]] = ConnectionPool(
            conninfo, min_size=0, max_size=2, open=True,
            kwargs={"row_factory": dict_row, "autocommit": True}, name="sendhub-pupil-keys")

    def close(self) -> None:
        self.pool.close()

    def _fetch(self, refs: list[str], *, create: bool) -> dict[str, bytes | Erasure]:
        with self.pool.connection() as conn:
            if create:
                fresh = [(ref, self.provider.wrap(AESGCM.generate_key(bit_length=256), ref))
                         for ref in refs]
                with conn.cursor() as curs:
                    curs.executemany(
                        "INSERT INTO pupil_keys (pupil_ref, wrapped_key, master_key_id) "
                        "VALUES (%s, %s, %s) ON CONFLICT (pupil_ref) DO NOTHING",
                        [(ref, wrapped, self.provider.key_id) for ref, wrapped in fresh])
            rows = conn.execute(
                "SELECT pupil_ref, wrapped_key, master_key_id, erased_at, erased_by, "
                "erasure_reason FROM pupil_keys WHERE pupil_ref = ANY(%s)", (refs,)).fetchall()
        found: dict[str, bytes | Erasure] = {}
        for row in rows:
            ref = str(row["pupil_ref"])
            if row["wrapped_key"] is None:
                found[ref] = _erasure(row)
                continue
            if row["master_key_id"] != self.provider.key_id:
                raise MasterKeyError(
                    f"pupil {ref}'s data key was wrapped by master key {row['master_key_id']}, "
                    f"but this process has {self.provider.key_id}: SENDHUB_MASTER_KEY_FILE "
                    "names another key than the one this database's keys were made with")
            found[ref] = self.provider.unwrap(bytes(row["wrapped_key"]), ref)
        return found

    def _destroy(self, ref: str, authorised_by: str, reason: str) -> Erasure | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                "UPDATE pupil_keys SET wrapped_key = NULL, master_key_id = NULL, "
                "erased_at = now(), erased_by = %s, erasure_reason = %s "
                "WHERE pupil_ref = %s AND wrapped_key IS NOT NULL "
                "RETURNING pupil_ref, erased_at, erased_by, erasure_reason",
                (authorised_by, reason, ref)).fetchone()
        return _erasure(row) if row else None

    def erasure_of(self, ref: str) -> Erasure | None:
        with self.pool.connection() as conn:
            row = conn.execute(
                "SELECT pupil_ref, erased_at, erased_by, erasure_reason FROM pupil_keys "
                "WHERE pupil_ref = %s AND wrapped_key IS NULL", (ref,)).fetchone()
        return _erasure(row) if row else None

    def erasures(self) -> list[Erasure]:
        with self.pool.connection() as conn:
            rows = conn.execute(
                "SELECT pupil_ref, erased_at, erased_by, erasure_reason FROM pupil_keys "
                "WHERE wrapped_key IS NULL ORDER BY erased_at").fetchall()
        return [_erasure(row) for row in rows]


def _erasure(row: DictRow) -> Erasure:
    return Erasure(str(row["pupil_ref"]), row["erased_at"], str(row["erased_by"]),
                   str(row["erasure_reason"]))


def file_key_provider(path: Path) -> FileKeyProvider:
    """The master key in `path`: made on first use only at the local deployment's
    default place (a file named in settings must exist)."""
    return FileKeyProvider(path, create=path == LOCAL_DIR / "master.key")


def key_provider(settings: HubSettings) -> KeyProvider:
    """The master key's provider: a file (a KMS would be another `KeyProvider`)."""
    return file_key_provider(settings.master_key_file)


def pupil_keys_for(settings: HubSettings) -> PostgresPupilKeys:
    return PostgresPupilKeys(settings.database_conninfo, key_provider(settings),
                             settings.key_cache_seconds)
