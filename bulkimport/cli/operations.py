"""Running the system: `bulkimport up`, `worker`, `reap`, `doctor`."""

from __future__ import annotations

import os

from bulkimport.config import settings


def cmd_up(args) -> int:
    from bulkimport.launcher import up

    return up(args.processes, args.threads, args.port)


def cmd_worker(args) -> int:
    from bulkimport.launcher import worker_command

    command = worker_command(args.processes or settings().worker_processes, args.threads or settings().worker_threads)
    os.execv(command[0], command)  # become the dramatiq worker: signals reach it directly


def cmd_reap(args) -> int:
    from bulkimport import healing

    report = healing.reap(waiting_after_s=args.waiting_after)
    print(f"re-sent: {', '.join(report.resent) or 'none'}")
    print(f"failed (dead-lettered): {', '.join(report.failed) or 'none'}")
    print(f"abandoned uploads removed: {', '.join(report.swept) or 'none'}")
    return 0


def cmd_doctor(args) -> int:
    from bulkimport import doctor

    checks = doctor.run()
    for check in checks:
        print(f"{'ok  ' if check.ok else 'FAIL'} {check.name:18} {check.detail}")
        if check.hint and not check.ok:
            print(f"     {'':18} -> {check.hint}")
    return 0 if all(c.ok for c in checks) else 1
