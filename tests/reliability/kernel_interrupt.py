"""Interrupts a busy cell of the deno Jupyter kernel, for notebook_interrupt_test.ts.

Usage: /usr/bin/python3 kernel_interrupt.py CELL_FILE STATE_PATH --cwd DIR [--min-step N]

Starts the `deno` kernel found on JUPYTER_PATH (working directory DIR), runs the code of
CELL_FILE, waits until the training state file STATE_PATH holds step >= N, sends the kernel
manager's interrupt (the kernelspec's interrupt_mode decides how), and records what the
kernel sent for that cell until it was idle again. Then checks that the kernel still runs
code, and runs CELL_FILE a second time to its end. Prints one JSON object:
{"first": {...}, "alive": bool, "answer": ..., "second": {...}, "state_step_after_interrupt": N}
where each run holds its status ("ok"/"error"), error name and value, and stream text.
"""
import argparse
import json
import queue
import struct
import sys
import time

from jupyter_client.manager import start_new_kernel


def state_step(path):
    """The `step` in a safetensors state file's metadata, or 0 when there is none yet."""
    try:
        with open(path, "rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(size))
        return int(header.get("__metadata__", {}).get("step", 0))
    except FileNotFoundError:
        return 0


def collect(kc, msg_id, timeout, grace=0.5):
    """Everything the kernel publishes for one request until it is idle (or timeout).

    Deno's kernel can report idle before the cell's last outputs (see
    tests/notebooks/execute.py), so listening goes on until it has been quiet for `grace`
    seconds after idle.
    """
    out = {"status": None, "ename": None, "evalue": None, "stream": "", "idle": False}
    end = time.time() + timeout
    while time.time() < end:
        try:
            msg = kc.get_iopub_msg(timeout=grace if out["idle"] else 0.5)
        except queue.Empty:
            if out["idle"]:
                break
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "stream":
            out["stream"] += content["text"]
        elif kind == "error":
            out["ename"], out["evalue"] = content["ename"], content["evalue"]
        elif kind == "execute_result":
            out["result"] = content["data"].get("text/plain")
        elif kind == "status" and content["execution_state"] == "idle":
            out["idle"] = True
    out["status"] = "error" if out["ename"] else ("ok" if out["idle"] else "timeout")
    return out


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("cell")
    parser.add_argument("state")
    parser.add_argument("--cwd", required=True)
    parser.add_argument("--min-step", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=120)
    args = parser.parse_args()
    code = open(args.cell).read()
    km, kc = start_new_kernel(kernel_name="deno", cwd=args.cwd, startup_timeout=120)
    report = {"interrupt_mode": km.kernel_spec.interrupt_mode}
    try:
        first = kc.execute(code)
        end = time.time() + args.timeout
        while state_step(args.state) < args.min_step and time.time() < end:
            time.sleep(0.05)
        km.interrupt_kernel()
        sent = time.time()
        report["first"] = collect(kc, first, 30)
        report["first"]["seconds_to_idle"] = round(time.time() - sent, 2)
        report["state_step_after_interrupt"] = state_step(args.state)
        report["alive"] = km.is_alive()
        answer = collect(kc, kc.execute("6 * 7"), 30)
        report["answer"] = answer.get("result")
        report["second"] = collect(kc, kc.execute(code), args.timeout)
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    print(json.dumps(report))


if __name__ == "__main__":
    sys.exit(main())
