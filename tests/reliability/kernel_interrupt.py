"""Runs cells in the deno Jupyter kernel and interrupts some, for notebook_interrupt_test.ts.

Usage: /usr/bin/python3 kernel_interrupt.py SCENARIO_JSON

SCENARIO_JSON holds {"cwd": DIR, "cells": [CELL, ...]}; each CELL is {"code": TEXT} plus,
for a cell to interrupt, either "state": PATH and "min_step": N (interrupt once the training
state file PATH holds step >= N) or "exists": PATH (once that file exists). The kernel is
the `deno` one found on JUPYTER_PATH, started in DIR; the kernel manager's interrupt follows
the kernelspec's interrupt_mode. Prints one JSON object:
{"interrupt_mode": ..., "runs": [RUN, ...]} where each RUN holds the cell's status
("ok"/"error"/"timeout"), error name and value, stream text and
result, and for an interrupted cell the seconds from interrupt to idle, the state file's step
then, and whether the kernel process was alive.
"""
import argparse
import json
import os
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
    tasks/notebook_execute.py), so listening goes on until it has been quiet for `grace`
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


def run_cell(km, kc, cell):
    """Runs one cell, interrupting it when the cell asks for it."""
    msg_id = kc.execute(cell["code"])
    timeout = cell.get("timeout", 120)
    if not {"state", "exists"} & cell.keys():
        return collect(kc, msg_id, timeout)
    end = time.time() + timeout
    if "state" in cell:
        while state_step(cell["state"]) < cell.get("min_step", 1) and time.time() < end:
            time.sleep(0.05)
    else:
        while not os.path.exists(cell["exists"]) and time.time() < end:
            time.sleep(0.05)
    km.interrupt_kernel()
    sent = time.time()
    run = collect(kc, msg_id, 30)
    run["seconds_to_idle"] = round(time.time() - sent, 2)
    if "state" in cell:
        run["state_step_after_interrupt"] = state_step(cell["state"])
    run["alive"] = km.is_alive()
    return run


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("scenario")
    args = parser.parse_args()
    scenario = json.load(open(args.scenario))
    km, kc = start_new_kernel(kernel_name="deno", cwd=scenario["cwd"], startup_timeout=120)
    report = {"interrupt_mode": km.kernel_spec.interrupt_mode, "runs": []}
    try:
        for cell in scenario["cells"]:
            report["runs"].append(run_cell(km, kc, cell))
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    print(json.dumps(report))


if __name__ == "__main__":
    sys.exit(main())
