"""The adapter registry: a catalog of verified adapter directories, by name and version.

```
ROOT/registry.sqlite3     one row per NAME@VERSION: sha256, size, task, labels, base-model
                          fingerprint, metrics, tags, lineage (parent NAME@V, data sha256),
                          created-at (ISO 8601, UTC)
ROOT/blobs/<sha256>/      a verified copy of the adapter directory (adapter_config.json,
                          adapter.safetensors, manifest.json), addressed by the sha256 of its
                          manifest.json: the manifest holds the sha256 of the other two files,
                          so identical pushes share one blob
```

ROOT is `Registry(root)`, else `$SPADAPT_REGISTRY`, else `~/.local/share/spadapt/registry`.
SQLite is embedded (no server); the database runs in WAL mode, and every write is a
`BEGIN IMMEDIATE` transaction, so pushes from many processes queue for the write lock (waiting
up to `timeout` seconds) and each one reads the last version and writes the next under that lock:
a version is never lost, duplicated or reused, even after `remove`. Keep ROOT on a local disk
(SQLite's locks are unreliable on network file systems).

A push verifies the adapter directory first (checksums, layout: `storage.read_adapter_dir`),
copies it into a temporary folder under blobs/, verifies that copy and renames it into place,
and only then records the row. A crash leaves at most an unreferenced blob, never a row without
its blob. `remove` deletes the row, then the blob once no other row refers to it.

Metrics: `push(metrics=...)` takes a dict or a JSON file (a PoC `results.json`, whose method
entry for this adapter is used, or a flat object of numbers). Without it, an adapter inside a
PoC run (RUN/METHOD/adapter, with RUN/results.json) gets its method's metrics automatically;
`metrics={}` records none.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import atomic, names
from .errors import SpadaptError
from .names import check_adapter_name

DB_FILE = "registry.sqlite3"
BLOBS = "blobs"
SCHEMA_VERSION = 1
METRIC_KEYS = ("accuracy", "macro_f1", "eval_loss", "perplexity", "exact_match",
               "nonzero_params", "trainable_params", "adapter_bytes", "train_seconds")
_FINGERPRINT_KEYS = ("model_type", "config_sha256", "structure_sha256", "weights_sha256")
_SCHEMA = [
    """CREATE TABLE adapters (
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        sha256 TEXT NOT NULL,              -- sha256 of manifest.json = the blob's folder name
        size_bytes INTEGER NOT NULL,
        task TEXT NOT NULL,
        labels TEXT NOT NULL,              -- JSON list
        base_model_type TEXT,
        base_fingerprint TEXT NOT NULL,    -- JSON: the manifest's base_model
        metrics TEXT NOT NULL,             -- JSON object of numbers
        tags TEXT NOT NULL,                -- JSON list
        parent TEXT,                       -- "NAME@V" or NULL
        data_sha256 TEXT,
        created_at TEXT NOT NULL,          -- ISO 8601, UTC
        UNIQUE (name, version))""",
    "CREATE INDEX adapters_sha256 ON adapters (sha256)",
    "CREATE INDEX adapters_parent ON adapters (parent)",
    # the last version ever given to a name: versions are not reused after a remove
    "CREATE TABLE names (name TEXT PRIMARY KEY, last_version INTEGER NOT NULL)",
]


class RegistryError(SpadaptError):
    """A bad name or reference, an unknown adapter, or an adapter the registry refuses."""


def default_root() -> Path:
    """$SPADAPT_REGISTRY, else $XDG_DATA_HOME/spadapt/registry (~/.local/share/...)."""
    if os.environ.get("SPADAPT_REGISTRY"):
        return Path(os.environ["SPADAPT_REGISTRY"]).expanduser()
    data_home = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(data_home) / "spadapt" / "registry"


def validate_name(name: str) -> str:
    """Return `name` if it can name an adapter (spadapt.names), else raise RegistryError."""
    return check_adapter_name(name, RegistryError)


def parse_ref(ref: str) -> tuple[str, int | None]:
    """"NAME" → (NAME, None) (the latest version); "NAME@3" → (NAME, 3); else RegistryError."""
    return names.parse_ref(ref, RegistryError)


@dataclass(frozen=True)
class Entry:
    """One registered version of an adapter (a row of the registry)."""

    name: str
    version: int
    sha256: str  # sha256 of manifest.json; the blob's folder name
    size_bytes: int  # the three files of the adapter directory together
    task: str  # the task its directory records (classification, causal_lm, adapter) or push's
    labels: list[str]
    base_model_type: str | None
    base_fingerprint: dict  # the manifest's base_model: fingerprint hashes, parameters, name
    metrics: dict[str, float]
    tags: list[str]
    parent: str | None  # "NAME@V" this adapter was derived from
    data_sha256: str | None  # sha256 of the training data file
    created_at: str  # ISO 8601, UTC
    unchanged: bool = field(default=False, compare=False)  # push(if_changed=True) skipped

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        out = {"ref": self.ref, **asdict(self)}
        out.pop("unchanged")
        return out


@dataclass(frozen=True)
class _Blob:
    sha256: str
    size_bytes: int
    task: str  # the task the adapter directory records (storage.AdapterTask.task)
    labels: list[str]
    fingerprint: dict


def _adapter_files() -> tuple[str, ...]:
    from .storage import CONFIG_FILE, MANIFEST_FILE, WEIGHTS_FILE

    return CONFIG_FILE, WEIGHTS_FILE, MANIFEST_FILE


def _inspect(directory: Path) -> _Blob:
    """Verify an adapter directory (storage.read_adapter_dir) and describe it."""
    # torch: only when an adapter is read
    from .storage import MANIFEST_FILE, read_adapter_dir

    stored = read_adapter_dir(directory)
    task = stored.task
    size = sum((directory / name).stat().st_size for name in _adapter_files())
    sha = hashlib.sha256((directory / MANIFEST_FILE).read_bytes()).hexdigest()
    return _Blob(sha, size, task.task, list(task.labels),
                 dict(stored.manifest.get("base_model") or {}))


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
    except (FileNotFoundError, IsADirectoryError):
        raise RegistryError(f"data file {path} does not exist (or is not a file)") from None
    return digest.hexdigest()


def _numbers(values: dict, where: str) -> dict[str, float]:
    out = {}
    for key, value in values.items():
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[str(key)] = value
    if not out and values:
        raise RegistryError(f"{where} holds no numeric metrics")
    return out


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_bytes())
    except FileNotFoundError:
        raise RegistryError(f"metrics file {path} does not exist") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise RegistryError(f"metrics file {path} is not valid JSON ({error}); pass another "
                            "with --metrics, or --no-metrics") from None


def _metrics(directory: Path, metrics: dict | str | Path | None) -> dict[str, float]:
    """The metrics to record for the adapter at `directory` (see the module docstring)."""
    if isinstance(metrics, dict):
        return _numbers(metrics, "the metrics given")
    explicit = metrics is not None
    path = Path(metrics) if explicit else directory.parent.parent / "results.json"
    if not explicit and not path.is_file():
        return {}
    data = _read_json(path)
    if not isinstance(data, dict):
        raise RegistryError(f"metrics file {path} must hold a JSON object")
    if not isinstance(data.get("methods"), list):  # a flat object of numbers
        return _numbers(data, f"metrics file {path}") if explicit else {}
    here = directory.resolve()
    for method in data["methods"]:
        if (isinstance(method, dict) and isinstance(method.get("adapter_dir"), str)
                and (path.parent / method["adapter_dir"]).resolve() == here):
            return {k: method[k] for k in METRIC_KEYS
                    if isinstance(method.get(k), int | float) and not isinstance(method[k], bool)}
    if explicit:
        dirs = [m.get("adapter_dir") for m in data["methods"] if isinstance(m, dict)]
        raise RegistryError(f"{path} has no method whose adapter_dir is {directory} "
                            f"(it lists {dirs})")
    return {}


def _clean_tags(tags: Iterable[str]) -> list[str]:
    out: list[str] = []
    for tag in tags:
        tag = str(tag).strip()
        if not tag:
            raise RegistryError("a tag is empty")
        if tag not in out:
            out.append(tag)
    return out


def _same_base(a: dict, b: dict) -> bool:
    return all(a.get(key) == b.get(key) for key in _FINGERPRINT_KEYS)


def _entry(row: sqlite3.Row) -> Entry:
    return Entry(
        name=row["name"], version=row["version"], sha256=row["sha256"],
        size_bytes=row["size_bytes"], task=row["task"], labels=json.loads(row["labels"]),
        base_model_type=row["base_model_type"],
        base_fingerprint=json.loads(row["base_fingerprint"]), metrics=json.loads(row["metrics"]),
        tags=json.loads(row["tags"]), parent=row["parent"], data_sha256=row["data_sha256"],
        created_at=row["created_at"])


class Registry:
    """A registry at `root` (created on first use); see the module docstring."""

    def __init__(self, root: str | Path | None = None, timeout: float = 60.0):
        self.root = Path(root).expanduser() if root is not None else default_root()
        self.timeout = timeout  # seconds a write waits for another process's transaction
        self._ready = False

    @property
    def blobs(self) -> Path:
        return self.root / BLOBS

    # Database ----------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        self.blobs.mkdir(parents=True, exist_ok=True)
        try:
            db = sqlite3.connect(self.root / DB_FILE, timeout=self.timeout,
                                 isolation_level=None)  # transactions are explicit below
        except sqlite3.Error as error:
            raise RegistryError(f"cannot open the registry {self.root / DB_FILE} ({error})"
                                ) from None
        db.row_factory = sqlite3.Row
        db.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        if not self._ready:
            self._prepare(db)
        return db

    def _prepare(self, db: sqlite3.Connection) -> None:
        try:
            self._use_write_ahead_log(db)
            db.execute("BEGIN IMMEDIATE")
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                for statement in _SCHEMA:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except sqlite3.DatabaseError as error:
            db.close()
            raise RegistryError(f"{self.root / DB_FILE} is not a usable registry database "
                                f"({error})") from None
        if version > SCHEMA_VERSION:
            db.close()
            raise RegistryError(f"{self.root / DB_FILE} has schema version {version}, newer "
                                f"than this spadapt's ({SCHEMA_VERSION}); upgrade spadapt")
        self._ready = True

    def _use_write_ahead_log(self, db: sqlite3.Connection) -> None:
        """Switch the database to WAL mode (readers never block the writer), once.

        SQLite answers "database is locked" at once, without its busy handler, while another
        connection holds the file during the switch: several processes opening a new registry
        together all race here, so the switch is retried until `timeout` runs out.
        """
        deadline = time.monotonic() + self.timeout
        pause = 0.005
        while True:
            try:
                if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                    db.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) and "busy" not in str(error):
                    raise
                if time.monotonic() > deadline:
                    raise
                time.sleep(pause)
                pause = min(pause * 2, 0.1)

    @contextlib.contextmanager
    def _transaction(self, write: bool) -> Iterator[sqlite3.Connection]:
        """A transaction; `write` takes the write lock at once (BEGIN IMMEDIATE)."""
        db = self._connect()
        try:
            db.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            yield db
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()

    def _versions(self, db: sqlite3.Connection, name: str) -> list[int]:
        rows = db.execute("SELECT version FROM adapters WHERE name = ? ORDER BY version", (name,))
        return [row[0] for row in rows]

    def _get(self, db: sqlite3.Connection, ref: str) -> Entry:
        name, version = parse_ref(ref)
        versions = self._versions(db, name)
        if not versions:
            names = [row[0] for row in db.execute(
                "SELECT DISTINCT name FROM adapters ORDER BY name LIMIT 21")]
            removed = db.execute("SELECT 1 FROM names WHERE name = ?", (name,)).fetchone()
            known = ("it is empty" if not names else "it has: " + ", ".join(names[:20])
                     + (", ..." if len(names) > 20 else ""))
            why = " (all its versions were removed)" if removed else ""
            raise RegistryError(f"no adapter named {name!r} in the registry {self.root}{why}; "
                                f"{known}")
        if version is None:
            version = versions[-1]
        elif version not in versions:
            raise RegistryError(f"{name} has no version {version}; its versions are "
                                f"{', '.join(map(str, versions))}")
        row = db.execute("SELECT * FROM adapters WHERE name = ? AND version = ?",
                         (name, version)).fetchone()
        return _entry(row)

    # Blobs -------------------------------------------------------------------------------------
    def _blob_ok(self, path: Path, sha: str) -> bool:
        from .storage import AdapterFileError

        try:
            return _inspect(path).sha256 == sha
        except (AdapterFileError, OSError):
            return False

    def _store(self, directory: Path) -> _Blob:
        """Copy `directory` into blobs/<sha256>/ (verified, atomic); a no-op if present."""
        staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=self.blobs))
        try:
            staging.chmod(0o755)
            try:
                for name in _adapter_files():
                    atomic.write_file(staging / name, (directory / name).read_bytes())
                blob = _inspect(staging)
            except (SpadaptError, OSError) as error:
                raise RegistryError(f"refusing to push {directory}: it changed while it was "
                                    f"being copied ({error})") from None
            target = self.blobs / blob.sha256
            if target.exists() and not self._blob_ok(target, blob.sha256):
                self._discard(target)  # a damaged copy: replace it with this verified one
            with contextlib.suppress(OSError):  # OSError: another push put the blob in first
                os.rename(staging, target)
            if not self._blob_ok(target, blob.sha256):
                raise RegistryError(f"could not store the blob {target}")
            return blob
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _discard(self, path: Path) -> None:
        trash = self.blobs / f".trash-{uuid.uuid4().hex}"
        with contextlib.suppress(FileNotFoundError):
            os.rename(path, trash)
        shutil.rmtree(trash, ignore_errors=True)

    # Public API --------------------------------------------------------------------------------
    def push(self, directory: str | Path, name: str, tags: Iterable[str] = (),
             parent: str | None = None, data_file: str | Path | None = None,
             metrics: dict | str | Path | None = None, task: str | None = None,
             if_changed: bool = False, new_base: bool = False) -> Entry:
        """Store the adapter directory as the next version of `name` and return its entry.

        parent: "NAME@V" (or "NAME": its latest version) this adapter was derived from.
        data_file: the training data; its sha256 is recorded. metrics: see the module docstring.
        task: default: the task the adapter directory records ("classification",
            "causal_lm" or "adapter"; see spadapt.storage.AdapterTask).
        Pushing the same content again makes a new version, unless `if_changed` (then the
        latest entry comes back with `unchanged=True` when its sha256 is this content's).
        A new version must be for the same base model as the latest one, unless `new_base`.
        """
        from .storage import AdapterFileError

        validate_name(name)
        tags = _clean_tags(tags)
        if task is not None and not str(task).strip():
            raise RegistryError("the task is empty")
        if parent is not None:
            parse_ref(parent)
        directory = Path(directory)
        try:
            _inspect(directory)
        except AdapterFileError as error:
            raise RegistryError(f"refusing to push {directory}: {error}") from None
        recorded_metrics = _metrics(directory, metrics)
        data_sha = _file_sha256(Path(data_file)) if data_file is not None else None
        self._connect().close()  # the registry exists before the first blob is stored
        for _ in range(5):
            blob = self._store(directory)
            with self._transaction(write=True) as db:
                if not (self.blobs / blob.sha256).is_dir():
                    continue  # a concurrent remove took the blob away: store it again
                parent_ref = self._get(db, parent).ref if parent is not None else None
                versions = self._versions(db, name)
                if versions:
                    latest = self._get(db, f"{name}@{versions[-1]}")
                    if if_changed and latest.sha256 == blob.sha256:
                        return replace(latest, unchanged=True)
                    if not new_base and not _same_base(latest.base_fingerprint,
                                                       blob.fingerprint):
                        raise RegistryError(
                            f"refusing to push {directory} as {name}: it is for another base "
                            f"model than {latest.ref} (base fingerprints differ); push it under "
                            "a new name, or pass --new-base if the base model really changed")
                row = db.execute("SELECT last_version FROM names WHERE name = ?",
                                 (name,)).fetchone()
                version = (row[0] if row else 0) + 1
                db.execute("INSERT OR REPLACE INTO names (name, last_version) VALUES (?, ?)",
                           (name, version))
                entry = Entry(
                    name=name, version=version, sha256=blob.sha256, size_bytes=blob.size_bytes,
                    task=task or blob.task,
                    labels=blob.labels, base_model_type=blob.fingerprint.get("model_type"),
                    base_fingerprint=blob.fingerprint, metrics=recorded_metrics, tags=tags,
                    parent=parent_ref, data_sha256=data_sha,
                    created_at=datetime.now(UTC).isoformat(timespec="seconds"))
                db.execute(
                    "INSERT INTO adapters (name, version, sha256, size_bytes, task, labels, "
                    "base_model_type, base_fingerprint, metrics, tags, parent, data_sha256, "
                    "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (entry.name, entry.version, entry.sha256, entry.size_bytes, entry.task,
                     json.dumps(entry.labels), entry.base_model_type,
                     json.dumps(entry.base_fingerprint), json.dumps(entry.metrics),
                     json.dumps(entry.tags), entry.parent, entry.data_sha256, entry.created_at))
                return entry
        raise RegistryError(f"could not push {directory}: its blob kept being removed by "
                            "concurrent `rm`s; try again")

    def list(self, name: str | None = None) -> list[Entry]:
        """Every entry (or every version of `name`), by name and version."""
        with self._transaction(write=False) as db:
            if name is None:
                rows = db.execute("SELECT * FROM adapters ORDER BY name, version")
                return [_entry(row) for row in rows]
            self._get(db, validate_name(name))  # unknown name: a helpful error
            rows = db.execute("SELECT * FROM adapters WHERE name = ? ORDER BY version", (name,))
            return [_entry(row) for row in rows]

    def show(self, ref: str) -> Entry:
        """The entry of "NAME@V", or of the latest version of "NAME"."""
        with self._transaction(write=False) as db:
            return self._get(db, ref)

    def resolve(self, ref: str) -> Path:
        """The verified blob directory of `ref` (read only: never write into it)."""
        entry = self.show(ref)
        path = self.blobs / entry.sha256
        if not self._blob_ok(path, entry.sha256):
            raise RegistryError(f"the stored copy of {entry.ref} ({path}) is missing or "
                                "corrupted; push the adapter again")
        return path

    def pull(self, ref: str, target: str | Path) -> Path:
        """Copy the adapter `ref` to the directory `target` (atomically, verified)."""
        from .storage import MANIFEST_FILE

        target = Path(target)
        if target.exists() and not (target.is_dir() and (
                (target / MANIFEST_FILE).is_file() or not any(target.iterdir()))):
            raise RegistryError(f"{target} exists and is not an adapter directory; refusing "
                                "to overwrite it")
        entry = self.show(ref)
        source = self.resolve(entry.ref)
        with atomic.directory(target) as staging:
            for name in _adapter_files():
                atomic.write_file(staging / name, (source / name).read_bytes())
            if not self._blob_ok(staging, entry.sha256):
                raise RegistryError(f"the copy of {entry.ref} in {target} does not verify")
        return target

    def remove(self, ref: str, force: bool = False) -> Entry:
        """Remove "NAME@V" (an exact version); refused for a parent of others unless `force`."""
        name, version = parse_ref(ref)
        with self._transaction(write=True) as db:
            if version is None:
                versions = self._versions(db, name)
                raise RegistryError(f"remove needs an exact version, NAME@VERSION (versions of "
                                    f"{name}: {', '.join(map(str, versions)) or 'none'})")
            entry = self._get(db, ref)
            children = [f"{r[0]}@{r[1]}" for r in db.execute(
                "SELECT name, version FROM adapters WHERE parent = ? ORDER BY name, version",
                (entry.ref,))]
            if children and not force:
                raise RegistryError(f"{entry.ref} is the parent of {', '.join(children)}; "
                                    "remove those first, or force it (--force: their parent "
                                    "then names a removed version)")
            db.execute("DELETE FROM adapters WHERE name = ? AND version = ?", (name, version))
        # a second transaction: pushes that found the blob present recorded their rows under
        # the lock, so a blob no row refers to now is safe to delete
        with self._transaction(write=True) as db:
            used = db.execute("SELECT 1 FROM adapters WHERE sha256 = ? LIMIT 1",
                              (entry.sha256,)).fetchone()
            trash = self.blobs / f".trash-{uuid.uuid4().hex}"
            if not used:
                with contextlib.suppress(FileNotFoundError):
                    os.rename(self.blobs / entry.sha256, trash)
        shutil.rmtree(trash, ignore_errors=True)
        return entry
