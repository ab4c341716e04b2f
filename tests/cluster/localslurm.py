"""A real SLURM cluster on localhost, for tests: munged, slurmctld and slurmd, with fake GPUs.

Everything lives in one directory: the munge key and socket, slurm.conf and gres.conf, the
controller's state, the daemons' logs and pid files, and the character devices that stand
in for GPUs. The daemons run in the foreground as children of this process, on free ports,
so that they are stopped by their pid (and reaped) and never touch a system SLURM or
munge. Clients (sbatch, squeue, scontrol) reach this cluster through ``SLURM_CONF`` in
:attr:`LocalSlurm.env`.

Facts this relies on (Debian 12's slurm-wlm 22.05, munge 0.5): no systemd, so the daemons
are started directly; munged runs as the munge user and wants its socket directory
executable by all; a node's CPUs and memory must not exceed what ``slurmd -C`` reports;
``DefMemPerCPU`` keeps a job without ``--mem`` from taking the whole node; GPUs for
scheduling need ``GresTypes=gpu``, ``Gres=gpu:N`` on the node and a gres.conf whose
``File=`` are character devices; without an accounting database finished jobs are kept
``MinJobAge`` seconds (squeue and scontrol still see them).
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

DAEMONS = ("munged", "slurmctld", "slurmd")


def missing_tools() -> list[str]:
    """The binaries (Debian packages slurm-wlm, munge) this needs and that are absent."""
    tools = (*DAEMONS, "mungekey", "sbatch", "squeue", "scontrol", "sinfo")
    return [t for t in tools if shutil.which(t) is None]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _node_hardware() -> dict[str, int]:
    out = subprocess.run(["slurmd", "-C"], capture_output=True, text=True, check=True).stdout
    fields = dict(re.findall(r"(\w+)=(\S+)", out.splitlines()[0]))
    keys = ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore")
    hw = {k: int(fields[k]) for k in keys}
    hw["RealMemory"] = int(fields["RealMemory"])
    return hw


class LocalSlurm:
    """Start (``with LocalSlurm(directory, n_gpus=1) as cluster:``) and stop a cluster.

    Parameters
    ----------
    n_gpus : int
        Fake GPUs on the node (character devices; jobs that ask for one get
        ``CUDA_VISIBLE_DEVICES``, and at most ``n_gpus`` such jobs run at once).
    memory_mb : int
        Memory the node offers to jobs (at most what the machine has).
    """

    def __init__(self, *, n_gpus: int = 1, memory_mb: int = 16000) -> None:
        # Its own directory under /tmp, readable by the munge user (pytest's are 0700),
        # removed by stop().
        self.dir = Path(tempfile.mkdtemp(prefix="neuroseq-slurm-"))
        self.n_gpus = n_gpus
        self.memory_mb = memory_mb
        self.procs: dict[str, subprocess.Popen] = {}
        self.conf = self.dir / "etc" / "slurm.conf"
        self.env = {
            **os.environ,
            "SLURM_CONF": str(self.conf),
            "PATH": f"{self.dir / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        }

    # ------------------------------------------------------------ set-up
    def _munge(self) -> None:
        munge = pwd.getpwnam("munge")
        mdir = self.dir / "munge"
        mdir.mkdir()
        os.chown(mdir, munge.pw_uid, munge.pw_gid)
        mdir.chmod(0o711)  # munged: the socket's directory must be executable by all
        as_munge = {"user": munge.pw_uid, "group": munge.pw_gid, "extra_groups": []}
        subprocess.run(
            ["mungekey", "--create", f"--keyfile={mdir / 'munge.key'}"], check=True, **as_munge
        )
        self.munge_socket = mdir / "munge.sock"
        self._start(
            "munged",
            [
                "munged",
                "--foreground",
                f"--key-file={mdir / 'munge.key'}",
                f"--socket={self.munge_socket}",
                f"--pid-file={mdir / 'munged.pid'}",
                f"--log-file={mdir / 'munged.log'}",
                f"--seed-file={mdir / 'munged.seed'}",
            ],
            **as_munge,
        )
        self._wait(lambda: self.munge_socket.exists(), "munged socket", 10)

    def _write_config(self) -> None:
        etc, dev = self.dir / "etc", self.dir / "dev"
        for sub in ("etc", "state", "spool", "log", "dev", "bin"):
            (self.dir / sub).mkdir()
        # Snakemake's jobstep plugin runs each job's command through srun with every
        # SLURM_* variable but the job's ids removed, SLURM_CONF included; a real cluster
        # keeps its config where srun looks by default (/etc/slurm), which this one must
        # leave alone. So jobs find an srun first on PATH that puts SLURM_CONF back.
        shim = self.dir / "bin" / "srun"
        real = shutil.which("srun")
        shim.write_text(f'#!/bin/sh\nSLURM_CONF="{self.conf}" exec "{real}" "$@"\n')
        shim.chmod(0o755)
        gres_lines = []
        for i in range(self.n_gpus):
            path = dev / f"gpu{i}"
            os.mknod(path, 0o666 | 0o020000, os.makedev(1, 3))  # a char device, as /dev/null
            gres_lines.append(f"NodeName=localhost Name=gpu File={path}")
        (etc / "gres.conf").write_text("\n".join(gres_lines) + "\n")
        hw = _node_hardware()
        node = " ".join(
            f"{k}={hw[k]}"
            for k in ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore")
        )
        memory = min(self.memory_mb, hw["RealMemory"])
        gres = f" Gres=gpu:{self.n_gpus}" if self.n_gpus else ""
        d = self.dir
        self.conf.write_text(
            f"""ClusterName=neuroseqtest
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
SlurmUser=root
SlurmdUser=root
StateSaveLocation={d / "state"}
SlurmdSpoolDir={d / "spool"}
SlurmctldPidFile={d / "slurmctld.pid"}
SlurmdPidFile={d / "slurmd.pid"}
SlurmctldLogFile={d / "log" / "slurmctld.log"}
SlurmdLogFile={d / "log" / "slurmd.log"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
MpiDefault=none
ReturnToService=2
# No accounting database: finished jobs stay visible to squeue/scontrol this long.
MinJobAge=900
DefMemPerCPU=1000
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 {node} RealMemory={memory}{gres} State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
"""
        )

    def _start(self, name: str, argv: list[str], **popen) -> None:
        with open(self.dir / f"{name}.stdout", "wb") as log:
            self.procs[name] = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
                **popen,
            )

    def _wait(self, ready, what: str, timeout: float) -> None:
        t0 = time.monotonic()
        while not ready():
            for name, p in self.procs.items():
                if p.poll() is not None:
                    raise RuntimeError(f"{name} exited ({p.returncode}); see {self.dir}")
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(f"{what} not ready after {timeout} s; see {self.dir}")
            time.sleep(0.2)

    def _node_idle(self) -> bool:
        out = subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, env=self.env
        )
        return out.returncode == 0 and out.stdout.strip() == "idle"

    def start(self) -> LocalSlurm:
        self.dir.chmod(0o755)
        try:
            self._munge()
            self._write_config()
            self._start("slurmctld", ["slurmctld", "-D", "-f", str(self.conf)])
            self._start("slurmd", ["slurmd", "-D", "-N", "localhost", "-f", str(self.conf)])
            self._wait(self._node_idle, "the node", 60)
        except BaseException:
            self.stop()
            raise
        return self

    # ------------------------------------------------------------ use, tear-down
    def jobs(self) -> list[dict[str, str]]:
        """Every job slurmctld still holds (finished ones for MinJobAge), as key=value."""
        out = subprocess.run(
            ["scontrol", "show", "job", "-o"],
            capture_output=True,
            text=True,
            env=self.env,
            check=True,
        ).stdout
        jobs = []
        for line in out.splitlines():
            if not line.strip() or line.startswith("No jobs"):
                continue
            # Values never hold spaces here except Command/Comment-like free text, which
            # we take up to the next " Key=".
            fields = dict(re.findall(r"(\w[\w:/]*)=(.*?)(?= \w[\w:/]*=|$)", line))
            jobs.append(fields)
        return jobs

    def stop(self, keep_files: bool = False) -> None:
        """Stop the daemons this object started, by pid, newest first, and reap them;
        then remove the cluster's directory (unless ``keep_files``)."""
        for name in reversed(list(self.procs)):
            p = self.procs[name]
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=10)
        self.procs.clear()
        if not keep_files:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> LocalSlurm:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
