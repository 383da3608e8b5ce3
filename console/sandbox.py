"""Confines the warehouse worker with Landlock, so that SQL running inside chDB cannot read Shoal's
own secrets even if a check in front of it has a gap.

chDB runs as clickhouse-local inside the worker process and ignores `user_files_path`: its scalar
`file('/any/path')` reads whatever the process may read, on a readonly=1 connection too. So the
barrier has to be the operating system. The launcher

    python -m console.sandbox -- celery -A console worker -Q warehouse …

(what `make run` and the tests start) computes an allow-list from the settings, sets
PR_SET_NO_NEW_PRIVS, applies a Landlock ruleset to itself and execs the worker, which inherits the
ruleset with every thread it starts (chDB's included). Before that it moves the secrets the worker
needs to reach its own services (URLs that may carry passwords) out of the environment and into a
pipe read once by console.env, drops every other secret-looking variable, and tells the settings
to withhold SECRET_KEY: /proc/self/environ is readable by the engine, the memory of the process
is not (file() cannot seek).

Landlock is an allow-list of paths (and TCP ports): what is not named here cannot be opened.
How it is applied is in console/landlock.py. See docs/security.md, "Defence in depth in the
warehouse".
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings as django_settings

from console.landlock import Policy, SandboxError, abi_version, apply

log = logging.getLogger("shoal.sandbox")


# --- What the warehouse worker may touch --------------------------------------------------------


SYSTEM_READ = ["/usr", "/lib", "/lib32", "/lib64", "/libx32", "/bin", "/sbin", "/sys"]
# Not /etc as a whole: deployments keep secrets there (a systemd EnvironmentFile, say). What the
# dynamic loader, name resolution, time zones and TLS read:
ETC_READ = [
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/resolv.conf",
    "/etc/gai.conf",
    "/etc/services",
    "/etc/protocols",
    "/etc/mime.types",
    "/etc/os-release",
    "/etc/ssl/certs",
    "/etc/ssl/openssl.cnf",
    "/etc/ca-certificates",
    "/etc/pki/tls/certs",
    "/etc/pki/ca-trust",
    "/etc/crypto-policies",
]
# Not /proc as a whole: on Linux 6.18 a Landlocked process can still read /proc/<pid>/environ of
# the other processes of its user (the web process's SECRET_KEY, say), though not their memory.
# The process's own /proc/<pid> is added by the launcher (its pid survives exec); of the rest,
# what the engine and Python read.
PROC_READ = [
    "/proc/sys",
    "/proc/meminfo",
    "/proc/cpuinfo",
    "/proc/stat",
    "/proc/loadavg",
    "/proc/uptime",
    "/proc/pressure",
    "/proc/filesystems",
]
# Not /dev as a whole either (a root process could read disks there).
# Not /tmp or /var/tmp: they are shared with the machine (a checkout or data folder there would be
# readable). The worker gets a private temporary folder and working directory instead.
SYSTEM_WRITE = ["/dev/shm", "/dev/null", "/dev/zero", "/dev/full"]
PRIVATE_TMP = "tmp"  # under the data folder: the worker's TMPDIR and working directory
DEVICES_READ = ["/dev/urandom", "/dev/random"]


def _url_port(url: str, default: int) -> int | None:
    parts = urlsplit(url)
    if parts.scheme in {"unix", "sqlite", ""}:
        return None
    try:
        return parts.port or default
    except ValueError:
        return None


def warehouse_policy(settings) -> Policy:
    """The allow-list of the warehouse worker, from Django's settings."""
    data_dir = Path(settings.DATA_DIR).resolve()
    base_dir = Path(settings.BASE_DIR).resolve()
    policy = Policy()
    policy.read += [Path(p) for p in SYSTEM_READ + ETC_READ + PROC_READ + DEVICES_READ]
    policy.read += [Path(p) for p in settings.WAREHOUSE_SANDBOX_READ]
    policy.write += [Path(p) for p in SYSTEM_WRITE]

    # Python: the virtualenv (which may be a symlink), the interpreter it was made from, sys.path
    # (but not the repository, which sys.path names as '' or by its path: see below).
    python = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix, *sys.path}
    for entry in python:
        for path in {Path(entry).absolute(), Path(entry).resolve()}:
            if not (_is_within(data_dir, path) or _is_within(base_dir, path)):
                policy.read.append(path)

    # The code: every top-level folder of the repository but the one holding the data folder and
    # hidden ones (.git; a .env file is no folder either). The repository itself may only be
    # listed, which imports need.
    policy.list_only.append(base_dir)
    for entry in sorted(base_dir.iterdir()):
        if entry.name.startswith(".") or not entry.is_dir() or _is_within(data_dir, entry.resolve()):
            continue
        policy.read.append(entry)

    # The engine's folders: the warehouse, and what the loader hands to file().
    warehouse = settings.WAREHOUSE
    if warehouse.backend == "chdb":
        policy.write.append(Path(warehouse.path))
    policy.write += [data_dir / "landing", data_dir / "spool", private_tmp(settings)]

    # Django's database: SQLite needs its folder (WAL and -shm files come and go beside it).
    db = settings.DATABASES["default"]
    if db["ENGINE"].endswith("sqlite3"):
        policy.write.append(Path(db["NAME"]).resolve().parent)
        test_name = (db.get("TEST") or {}).get("NAME")
        if test_name:
            policy.write.append(Path(test_name).resolve().parent)
    else:
        policy.connect_ports.append(int(db.get("PORT") or 5432))

    for port in (
        _url_port(settings.REDIS_URL, 6379),
        warehouse.port if warehouse.backend == "clickhouse" else None,
    ):
        if port:
            policy.connect_ports.append(port)
    policy.connect_ports = sorted(set(policy.connect_ports))
    return policy


def private_tmp(settings) -> Path:
    """The warehouse worker's own temporary folder and working directory."""
    return Path(settings.DATA_DIR).resolve() / PRIVATE_TMP


def protected_files(settings, environ: Mapping[str, str] = os.environ) -> list[Path]:
    """Files that must stay unreadable: the generated SECRET_KEY, any secret named by a
    <NAME>_FILE variable, the AWS shared credentials."""
    found = [Path(settings.DATA_DIR) / "secret_key"]
    found += [Path(v) for k, v in environ.items() if k.endswith("_FILE") and _is_secret_name(k[:-5]) and v]
    found.append(Path(environ.get("AWS_SHARED_CREDENTIALS_FILE") or Path.home() / ".aws" / "credentials"))
    return found


def exposed(policy: Policy, files: Iterable[Path]) -> list[Path]:
    """Which of `files` the policy would let the engine read (a misconfiguration to report)."""
    granted = [p.resolve() for p in policy.granted()]
    return [f for f in files if any(_is_within(f.resolve(), g) for g in granted)]


def _is_within(path: Path, parent: Path) -> bool:
    return path == parent or parent in path.parents


# --- The environment the worker gets ------------------------------------------------------------

# Variables the worker needs, which may carry a password: handed over through a pipe.
SEALED = ("DATABASE_URL", "REDIS_URL", "WAREHOUSE_URL")
_SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|PRIVATE|(^|_)KEY(_ID)?$", re.I)
_URL_WITH_PASSWORD = re.compile(r"://[^/@\s]*:[^/@\s]*@")
SEALED_FD_VARIABLE = "SHOAL_SEALED_ENV_FD"
WITHHELD_VARIABLE = "SHOAL_SECRETS_WITHHELD"


def _is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def _is_public(name: str, value: str) -> bool:
    base = name[:-5] if name.endswith("_FILE") else name
    return not (
        base in SEALED
        or _is_secret_name(base)
        or _URL_WITH_PASSWORD.search(value)
        or name in (SEALED_FD_VARIABLE, WITHHELD_VARIABLE)
    )


def split_environment(environ: Mapping[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """(the worker's environment, the values to hand over through the pipe).

    Secret-looking variables (SECRET_KEY, AWS_*_KEY, *_PASSWORD, *_TOKEN, any URL with a password
    …) leave the environment; of them only SEALED travel on, read from their _FILE if set.
    """
    sealed = {}
    for name in SEALED:
        if environ.get(f"{name}_FILE"):
            sealed[name] = Path(environ[f"{name}_FILE"]).read_text().strip()
        elif environ.get(name):
            sealed[name] = environ[name]
    public = {k: v for k, v in environ.items() if _is_public(k, v)}
    public[WITHHELD_VARIABLE] = "1"
    return public, sealed


def seal(values: dict[str, str]) -> int:
    """A pipe holding `values` as JSON, its read end inheritable; returns that end's number."""
    data = json.dumps(values).encode()
    read_end, write_end = os.pipe()
    try:
        if len(data) > 60_000:  # a pipe's buffer: the launcher writes all before it execs
            raise SandboxError("the sealed environment is too large for a pipe")
        os.write(write_end, data)
    finally:
        os.close(write_end)
    os.set_inheritable(read_end, True)
    return read_end


# --- Starting the worker in it ------------------------------------------------------------------


def launch(command: list[str], settings, environ: Mapping[str, str] = os.environ) -> None:
    """Set up the sandbox and exec `command` in it (never returns)."""
    mode = settings.WAREHOUSE_SANDBOX
    public, sealed = split_environment(environ)
    if mode == "landlock":
        _confine(settings, environ)
    else:
        log.warning("WAREHOUSE_SANDBOX=off: the warehouse worker runs without Landlock")
    public[SEALED_FD_VARIABLE] = str(seal(sealed))
    if mode == "landlock":
        _move_into_private_tmp(settings, public)
    os.execvpe(command[0], command, public)


def _move_into_private_tmp(settings, environ: dict[str, str]) -> None:
    """Temporary files (TMPDIR, for Python, Celery and the engine) and relative paths (the working
    directory, against which clickhouse-local resolves a relative file()) go to the worker's own
    folder. The code is found through PYTHONPATH, since the working directory no longer holds it."""
    folder = private_tmp(settings)
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    for name in ("TMPDIR", "TMP", "TEMP"):
        environ[name] = str(folder)
    # A relative SHOAL_DATA_DIR would now resolve elsewhere: hand over the folder the launcher used.
    environ["SHOAL_DATA_DIR"] = str(Path(settings.DATA_DIR).resolve())
    code = str(Path(settings.BASE_DIR).resolve())
    environ["PYTHONPATH"] = os.pathsep.join(p for p in (code, environ.get("PYTHONPATH", "")) if p)
    os.chdir(folder)


def _confine(settings, environ: Mapping[str, str]) -> None:
    abi = abi_version()
    if abi < 1:
        log.warning(
            "WAREHOUSE_SANDBOX=landlock cannot be applied: this kernel (%s) has no Landlock or it is "
            "disabled (needs Linux >= 5.13 with lsm=landlock); the warehouse worker runs unconfined",
            os.uname().release,
        )
        return
    policy = warehouse_policy(settings)
    for path in [
        Path(settings.DATA_DIR) / "landing",
        Path(settings.DATA_DIR) / "spool",
        private_tmp(settings),
    ]:
        path.mkdir(parents=True, exist_ok=True)  # must exist to be named in a rule
    if settings.WAREHOUSE.backend == "chdb":
        Path(settings.WAREHOUSE.path).mkdir(parents=True, exist_ok=True)
    leaks = exposed(policy, protected_files(settings, environ))
    if leaks:
        log.warning(
            "WAREHOUSE_SANDBOX: %s lie under a folder the warehouse worker must use (move them out "
            "of it, see docs/security.md); the sandbox cannot hide them",
            ", ".join(str(p) for p in leaks),
        )
    # The process's own /proc/<pid> (threads reach it as /proc/thread-self). procfs makes a new
    # inode whenever that entry is looked up afresh, and a Landlock rule holds to an inode: an
    # inherited descriptor keeps the entry, and so the rule, alive for the worker's lifetime.
    own_proc = os.open(f"/proc/{os.getpid()}", os.O_PATH | os.O_DIRECTORY)
    os.set_inheritable(own_proc, True)
    policy.read.append(Path(f"/proc/{os.getpid()}"))
    apply(policy, abi)
    network = f", TCP connect only to ports {policy.connect_ports}" if abi >= 4 else ""
    log.info(
        "warehouse worker sandboxed: Landlock ABI %d, files outside the allow-list denied%s", abi, network
    )


def command(argv: list[str], python: str = sys.executable, mode: str | None = None) -> list[str]:
    """The command line that starts `argv` (a warehouse worker) in the sandbox, unless
    WAREHOUSE_SANDBOX=off."""
    if mode is None:
        mode = django_settings.WAREHOUSE_SANDBOX
    return list(argv) if mode == "off" else [python, "-m", "console.sandbox", "--", *argv]


def main(argv: list[str]) -> None:
    if "--" not in argv or argv.index("--") == len(argv) - 1:
        sys.exit("usage: python -m console.sandbox -- <command> [args…]")
    worker = argv[argv.index("--") + 1 :]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "console.settings")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        launch(worker, django_settings)
    except SandboxError as exc:
        # Refuse to start rather than run a worker that was meant to be confined and is not.
        sys.exit(f"WAREHOUSE_SANDBOX=landlock: {exc}")


if __name__ == "__main__":
    main(sys.argv[1:])
