"""The pylxd contender of scripts/bench/run: runs one workload ITERATIONS times in this process,
timing each, and prints {"times": [seconds...]}.

python pylxd_bench.py WORKLOAD ITERATIONS [ARGS...]   (pylxd finds the daemon through $LXD_DIR)
"""

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pylxd


def lifecycle(client, name, with_exec):
    source = {"type": "image", "alias": "busybox"}
    instance = client.instances.create({"name": name, "source": source}, wait=True)
    instance.start(wait=True)
    if with_exec:
        instance.execute(["true"])
    instance.stop(force=True, wait=True)
    instance.delete(wait=True)


def one(client, instance, workload, n, arg):
    if workload == "get":
        client.instances.get(arg[0])
    elif workload == "all":
        # What lxd-script's all() returns: loaded objects (pylxd's default lists names only,
        # and each object then costs a GET when read).
        client.instances.all(recursion=1)
    elif workload == "all-state":
        client.instances.all(recursion=2)
    elif workload == "lifecycle":
        lifecycle(client, f"{arg[0]}-{n}", False)
    elif workload == "exec":
        result = instance.execute(["true"])
        if result.exit_code != 0:
            raise RuntimeError("exec true failed")
    elif workload in ("exec-stdout", "exec-stdout-callback"):
        result = instance.execute(["head", "-c", arg[1], "/dev/zero"])
        if len(result.stdout) != int(arg[1]):
            raise RuntimeError(f"got {len(result.stdout)} bytes of stdout")
    elif workload == "exec-stdin":
        with open(arg[1], "rb") as f:
            payload = f.read()
        result = instance.execute(["wc", "-c"], stdin_payload=payload)
        if result.stdout.strip() != str(len(payload)):
            raise RuntimeError(f"wc saw {result.stdout.strip()!r} of {len(payload)} bytes")
    elif workload == "push":
        with open(arg[1], "rb") as f:
            instance.files.put(arg[2], f)
    elif workload == "pull":
        data = instance.files.get(arg[1])
        with open(arg[2], "wb") as f:
            f.write(data)
    elif workload == "recursive-push":
        instance.files.recursive_put(arg[1], arg[2])
    elif workload == "recursive-pull":
        instance.files.recursive_get(arg[1], arg[2])
    elif workload == "snapshot":
        snapshot = instance.snapshots.create(f"bench{n}", wait=True)
        snapshot.delete(wait=True)
    elif workload == "fleet":
        names = [f"{arg[0]}-{n}-{k}" for k in range(int(arg[1]))]
        width = int(arg[2])
        if width <= 1:
            for name in names:
                lifecycle(client, name, True)
        else:
            with ThreadPoolExecutor(max_workers=width) as pool:
                list(pool.map(lambda name: lifecycle(client, name, True), names))
    else:
        raise ValueError(f"unknown workload {workload}")


def main():
    workload, iterations, arg = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    listing = workload in ("all", "all-state")
    # The listings take an optional project (the 200-instance listing has its own).
    client = pylxd.Client(project=arg[0]) if listing and arg else pylxd.Client()
    # Workloads on one instance fetch it once, outside the timing: they time the call itself.
    on_instance = workload not in ("get", "all", "all-state", "lifecycle", "fleet")
    instance = client.instances.get(arg[0]) if on_instance else None
    times = []
    for n in range(iterations):
        started = time.perf_counter()
        one(client, instance, workload, n, arg)
        times.append(time.perf_counter() - started)
    print(json.dumps({"times": times}))


if __name__ == "__main__":
    main()
