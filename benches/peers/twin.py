"""PyTorch eager twin of a longtail training step (the peer of `crates/train/src/bench/twin.rs`).

    python benches/peers/twin.py --dir DIR [--style eager|lean]

DIR holds what longtail wrote (`write_twin_inputs`): spec.json (model, effective params, feature
map, shapes, lr, Adam settings, threads, device, the RNG seed of the reference steps),
init.safetensors (every variable, before any step), batches.safetensors (`b{i}.{field}`) and
reference.json. The twin builds the model of spec.json (benches/peers/twin_models.py), loads the
initial parameters into it by name (the names and shapes must match longtail's exactly), and
then serves one request per stdin line with one JSON line on stdout:

    reference   -> {"losses": [[total, {term: value}], ...]}  the first reference_steps steps
                   from the initial state (global generator seeded with rng_seed first); the
                   initial state and a fresh Adam are restored afterwards
    steps N     -> {"ms_per_step": x, "loss": y}  N steps cycling through the batches as longtail
                   does, timed with time.perf_counter around the steps and the one loss.item()
                   at the end (which waits for queued device work)
    quit        -> exits

After loading it prints {"ready": true, ...}. A failed request answers {"error": "..."} and the
twin goes on; a failure while loading exits with status 1 and the reason on stderr.

The step is the plain PyTorch loop: optimizer.zero_grad(), the model's loss terms, their sum,
loss.backward(), optimizer.step() with torch.optim.Adam (spec's lr, betas, eps). Dropout is not
used: longtail refuses to write a spec with a non-zero dropout.

--style eager (default) writes the model's equations out; --style lean (twotower only) is the
twin a PyTorch user tuning the step writes (fused attention, eq. 4 in the product's layout;
twin_models.build). Both must give longtail's first losses to 1e-6.
"""

import argparse
import json
import math
import os
import sys
import time
from types import SimpleNamespace

import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import twin_models  # noqa: E402

FORMAT = 1
SESSION_FIELDS = ("pos_items", "pos_counts", "neg_items", "neg_counts")


def load_batches(path, spec, device):
    tensors = load_file(path, device=device)
    batches = []
    for i, rows in enumerate(spec["batches"]):
        fields = {}
        for field in spec["batch_fields"]:
            key = f"b{i}.{field}"
            if key not in tensors:
                raise ValueError(f"{path}: missing tensor '{key}'")
            fields[field] = tensors[key]
        sessions = None
        if "sessions.pos_items" in fields:
            sessions = SimpleNamespace(**{f: fields.pop(f"sessions.{f}") for f in SESSION_FIELDS})
        batches.append(
            SimpleNamespace(size=rows["size"], valid=rows["valid"], sessions=sessions, **fields)
        )
    return batches


def check_names(model, init, spec):
    """The twin's parameters and buffers must be exactly longtail's variables (names, shapes,
    dtypes); trainable longtail variables must be parameters."""
    ours = dict(model.named_parameters())
    buffers = dict(model.named_buffers())
    problems = []
    theirs = {v["name"]: v for v in spec["variables"]}
    for name in sorted(set(theirs) - set(ours) - set(buffers)):
        problems.append(f"longtail variable '{name}' {theirs[name]['shape']} has no twin tensor")
    for name in sorted((set(ours) | set(buffers)) - set(theirs)):
        problems.append(f"twin tensor '{name}' is not a longtail variable")
    for name, v in theirs.items():
        t = ours.get(name, buffers.get(name))
        if t is None:
            continue
        if list(t.shape) != v["shape"]:
            problems.append(f"'{name}': longtail shape {v['shape']}, twin {list(t.shape)}")
        if name in buffers and v["trainable"]:
            problems.append(f"'{name}' is trainable in longtail but a buffer in the twin")
        if init[name].dtype != t.dtype:
            problems.append(f"'{name}': longtail dtype {init[name].dtype}, twin {t.dtype}")
    if problems:
        raise ValueError(
            f"the twin of '{spec['model']}' does not match longtail's variables:\n  "
            + "\n  ".join(problems)
        )


class Twin:
    def __init__(self, folder, style="eager"):
        with open(os.path.join(folder, "spec.json")) as f:
            spec = json.load(f)
        if spec.get("format") != FORMAT:
            raise ValueError(f"spec.json format {spec.get('format')}, this twin reads {FORMAT}")
        self.spec = spec
        torch.set_num_threads(spec["threads"])
        self.device = torch.device(spec["device"])
        files = spec["files"]
        self.init = load_file(os.path.join(folder, files["init"]), device=spec["device"])
        self.batches = load_batches(os.path.join(folder, files["batches"]), spec, spec["device"])
        self.model = twin_models.build(spec["model"], spec["params"], spec["feature_map"], style)
        self.model.to(self.device)
        check_names(self.model, self.init, spec)
        # Variables longtail does not train (frozen at writing time) get no gradient here either.
        for v in spec["variables"]:
            params = dict(self.model.named_parameters())
            if v["name"] in params and not v["trainable"]:
                params[v["name"]].requires_grad_(False)
        self.model.train()
        self.restore()

    def restore(self):
        """The initial parameters and a fresh Adam; the batch cycle restarts."""
        with torch.no_grad():
            state = dict(self.model.named_parameters())
            state.update(self.model.named_buffers())
            for name, t in state.items():
                t.copy_(self.init[name])
        if hasattr(self.model, "loaded"):
            self.model.loaded()
        adam = self.spec["adam"]
        self.optimizer = torch.optim.Adam(
            self.model.parameters(),
            lr=self.spec["lr"],
            betas=tuple(adam["betas"]),
            eps=adam["eps"],
            weight_decay=adam["weight_decay"],
            amsgrad=adam["amsgrad"],
        )
        self.next = 0

    def step(self):
        """One training step on the next batch; returns the loss terms (the total is their sum)."""
        batch = self.batches[self.next % len(self.batches)]
        self.next += 1
        self.optimizer.zero_grad()
        terms = self.model(batch)
        loss = sum(terms.values())
        loss.backward()
        self.optimizer.step()
        return loss, terms

    def reference(self):
        self.restore()
        torch.manual_seed(self.spec["rng_seed"])
        losses = []
        for _ in range(self.spec["reference_steps"]):
            loss, terms = self.step()
            losses.append([loss.item(), {k: v.item() for k, v in terms.items()}])
        self.restore()
        return {"losses": losses}

    def steps(self, n):
        start = time.perf_counter()
        for _ in range(n):
            loss, _ = self.step()
        value = loss.item()
        ms = (time.perf_counter() - start) * 1e3 / n
        return {"ms_per_step": ms, "loss": value if math.isfinite(value) else None}


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dir", required=True, help="the folder longtail wrote the inputs to")
    ap.add_argument("--style", choices=["eager", "lean"], default="eager", help="see above")
    args = ap.parse_args()
    try:
        twin = Twin(args.dir, args.style)
    except Exception as e:  # a loading failure ends the twin with its reason
        print(f"twin.py: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    n_params = sum(p.numel() for p in twin.model.parameters())
    reply({"ready": True, "model": twin.spec["model"], "parameters": n_params})
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        try:
            if words[0] == "quit":
                break
            if words[0] == "reference":
                reply(twin.reference())
            elif words[0] == "steps" and len(words) == 2 and int(words[1]) >= 1:
                reply(twin.steps(int(words[1])))
            else:
                reply({"error": f"unknown request {line.strip()!r}"})
        except Exception as e:  # the request fails, the twin goes on
            reply({"error": f"{type(e).__name__}: {e}"})


if __name__ == "__main__":
    main()
