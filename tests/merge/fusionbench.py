"""Runs FusionBench's own merge code (tanganke/fusion_bench, from a checkout the caller names) on
the task vectors the TypeScript cross-check wrote, so that its results can be compared with ours.

Nothing of FusionBench is copied here: its modules are imported from the checkout. FusionBench
imports Lightning, Hydra, omegaconf and transformers at module level, none of which Debian
packages; so this file installs an import hook that
- loads FusionBench's computing modules (the merge functions and algorithms, state_dict
  arithmetic) from the checkout as they are;
- replaces its plumbing (base classes, mixins, model pools, model wrappers, package __init__
  files with their lazy importers) and third-party packages that are not installed by
  stand-ins: classes that accept any arguments, plus a few with behaviour the algorithms use
  (tqdm passes its iterable through; auto_register_config sets constructor arguments as
  attributes; SimpleProfilerMixin.profile is a no-op context; BaseModelPool is the small model
  pool below; a Lightning fabric on the CPU).
A package's names are resolved from its __init__.py (its `from .x import y` lines and lazy
`_import_structure`) to the real submodules; what cannot be imported becomes a stand-in.

main_all(specs) runs each spec: {"method", "params", "base", "experts": [checkpoint files],
"out"}; it builds θ0 and the experts as torch modules, runs FusionBench, and writes
θ_merged − θ0 (or, for per-task methods, "t{t}::name" for every task).
"""
import ast
import contextlib
import copy
import importlib.abc
import importlib.machinery
import importlib.util
import inspect
import os
import re
import sys
import types
from types import SimpleNamespace

import torch
from torch import nn

import st

ROOT = None  # the checkout (the folder holding the fusion_bench package)

# FusionBench modules that compute, loaded as they are although their package is plumbing
# (models.utils: the leaf-module walk and module averaging DOP uses).
COMPUTING = ("fusion_bench.models.utils",)

# FusionBench modules that are plumbing, replaced by stand-ins (prefixes of module names).
PLUMBING = (
    "fusion_bench.method.base_algorithm",
    "fusion_bench.mixins",
    "fusion_bench.modelpool",
    "fusion_bench.models",
    "fusion_bench.compat",
    "fusion_bench.dataset",
    "fusion_bench.taskpool",
    "fusion_bench.programs",
    "fusion_bench.utils.lazy_state_dict",
    "fusion_bench.utils.instantiate_utils",
    "fusion_bench.utils.devices",
    "fusion_bench.utils.hydra_utils",
)


# ---- stand-ins --------------------------------------------------------------------------------
class _Anything:
    """Callable, context manager, attribute source: what plumbing calls return."""

    def __call__(self, *a, **k):
        return self

    def __getattr__(self, name):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False


def _stand_in_class(name):
    return type(name, (), {
        "__init__": lambda self, *a, **k: None,
        "__class_getitem__": classmethod(lambda cls, item: cls),
        "__getattr__": lambda self, attr: _Anything(),
    })


def _tqdm(iterable=None, *a, **k):
    return iterable if iterable is not None else _Anything()


_tqdm.write = lambda *a, **k: None


class _Config(dict):
    """FusionBench's algorithm config: a mapping whose keys are also attributes."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError as err:
            raise AttributeError(name) from err


def auto_register_config(cls):
    """Sets every constructor argument (given or default) as an attribute, then runs __init__."""
    original = cls.__init__
    sig = inspect.signature(original)

    def __init__(self, *args, **kwargs):
        bound = sig.bind(self, *args, **kwargs)
        bound.apply_defaults()
        for name, p in sig.parameters.items():
            if name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            setattr(self, name, bound.arguments[name])
        original(self, *args, **kwargs)

    cls.__init__ = __init__
    return cls


class BaseAlgorithm:
    _config_mapping = {}

    def __init__(self, *args, **kwargs):
        pass

    @property
    def config(self):
        return _Config({k: v for k, v in vars(self).items() if not k.startswith("_")})


class SimpleProfilerMixin:
    def profile(self, *a, **k):
        return contextlib.nullcontext()

    def print_profile_summary(self, *a, **k):
        pass


class LightningFabricMixin:
    fabric = SimpleNamespace(device=torch.device("cpu"), backward=lambda loss: loss.backward())


class BaseModelPool:
    """The model pool FusionBench's algorithms read: names, and fresh copies of the models."""

    def __init__(self, models):
        if isinstance(models, BaseModelPool):
            models = models._models
        self._models = dict(models)

    @property
    def all_model_names(self):
        return list(self._models)

    @property
    def model_names(self):
        return [n for n in self._models if not (n.startswith("_") and n.endswith("_"))]

    @property
    def has_pretrained(self):
        return "_pretrained_" in self._models

    @property
    def has_merged(self):
        return "_merged_" in self._models


    def __len__(self):
        return len(self.model_names)

    def load_model(self, name, *a, **k):
        return copy.deepcopy(self._models[name])

    def load_pretrained_model(self, *a, **k):
        return self.load_model("_pretrained_")

    def add_model(self, name, model):
        self._models[name] = model

    def named_models(self):
        for name in self.model_names:
            yield name, self.load_model(name)


SPECIAL = {
    "tqdm": _tqdm,
    "timeit_context": lambda *a, **k: contextlib.nullcontext(),
    "auto_register_config": auto_register_config,
    "BaseAlgorithm": BaseAlgorithm,
    "SimpleProfilerMixin": SimpleProfilerMixin,
    "LightningFabricMixin": LightningFabricMixin,
    "BaseModelPool": BaseModelPool,
    "to_modelpool": lambda pool: pool if isinstance(pool, BaseModelPool) else BaseModelPool(pool),
}


# ---- import hook --------------------------------------------------------------------------------
def _package_names(init_file):
    """name -> submodule (relative, dotted) from a package __init__.py, without running it."""
    names = {}
    try:
        tree = ast.parse(open(init_file).read())
    except (OSError, SyntaxError):
        return names
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            for alias in node.names:
                # from .sub import name -> (sub, name); from . import sub -> (sub, None)
                names[alias.asname or alias.name] = (
                    (node.module, alias.name) if node.module else (alias.name, None))
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "_import_structure" for t in node.targets):
            try:
                structure = ast.literal_eval(node.value)
            except ValueError:
                continue
            for module, attrs in structure.items():
                for attr in attrs:
                    names.setdefault(attr, (module, attr))
    return names


def _stand_in_module(name, package_dir=None):
    module = types.ModuleType(name)
    module.__path__ = [package_dir] if package_dir else []
    known = _package_names(os.path.join(package_dir, "__init__.py")) if package_dir else {}
    cache = {}

    def __getattr__(attr):
        if attr.startswith("__"):
            raise AttributeError(attr)
        if attr in SPECIAL:
            return SPECIAL[attr]
        if attr in cache:
            return cache[attr]
        value = None
        if attr in known:
            sub, inner = known[attr]
            try:
                mod = importlib.import_module(name + "." + sub)
                value = getattr(mod, inner) if inner else mod
            except Exception:
                value = None
        elif package_dir and (os.path.isfile(os.path.join(package_dir, attr + ".py"))
                              or os.path.isdir(os.path.join(package_dir, attr))):
            value = importlib.import_module(name + "." + attr)
        if value is None:
            value = _stand_in_class(attr)
        cache[attr] = value
        return value

    module.__getattr__ = __getattr__
    return module


class _StandInLoader(importlib.abc.Loader):
    def __init__(self, package_dir=None):
        self.package_dir = package_dir

    def create_module(self, spec):
        return _stand_in_module(spec.name, self.package_dir)

    def exec_module(self, module):
        pass


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        top = name.split(".")[0]
        if top == "fusion_bench":
            parts = name.split(".")
            base = os.path.join(ROOT, *parts)
            if os.path.isdir(base):
                return importlib.machinery.ModuleSpec(name, _StandInLoader(base), is_package=True)
            if os.path.isfile(base + ".py") and (name in COMPUTING or not name.startswith(PLUMBING)):
                return importlib.util.spec_from_file_location(name, base + ".py")
            return importlib.machinery.ModuleSpec(name, _StandInLoader(), is_package=True)
        if top in ("tqdm", "omegaconf", "lightning", "transformers", "hydra", "bidict", "rich",
                   "peft", "accelerate", "datasets", "safetensors", "huggingface_hub",
                   "lightning_utilities", "scipy", "wandb", "open_clip"):
            if importlib.machinery.PathFinder.find_spec(top) is None:
                return importlib.machinery.ModuleSpec(name, _StandInLoader(), is_package=True)
        return None


def load(root):
    """Installs the hook for the checkout `root`."""
    global ROOT
    if ROOT is None:
        ROOT = os.path.abspath(root)
        sys.meta_path.insert(0, _Finder())
        # DOGE-TA reports CUDA memory, which a CPU build of torch cannot.
        torch.cuda.memory_allocated = lambda *a, **k: 0
        # FusionBench's module averaging (models.utils) passes load_state_dict(assign=False),
        # an argument torch 1.13 lacks; False (copy into the module's tensors) is 1.13's only way.
        plain_load = nn.Module.load_state_dict
        if "assign" not in inspect.signature(plain_load).parameters:
            def load_state_dict(self, state_dict, strict=True, assign=False):
                if assign:
                    raise NotImplementedError("load_state_dict(assign=True) needs torch >= 2.1")
                return plain_load(self, state_dict, strict=strict)

            nn.Module.load_state_dict = load_state_dict


def fb(module):
    return importlib.import_module("fusion_bench." + module)


# ---- models -------------------------------------------------------------------------------------
def module_from(state, buffers=False):
    """An nn.Module whose state_dict() has exactly these names and values (parameters, or
    buffers)."""
    root = nn.Module()
    for name, value in state.items():
        *path, leaf = name.split(".")
        m = root
        for part in path:
            if not hasattr(m, part):
                m.add_module(part, nn.Module())
            m = getattr(m, part)
        if buffers:
            m.register_buffer(leaf, value.clone())
        else:
            m.register_parameter(leaf, nn.Parameter(value.clone()))
    return root


# The linear layers of a HF CLIP vision tower (with projection): what isinstance(m, nn.Linear)
# selects in FusionBench's DOP.
LINEAR_LAYER = re.compile(r"(self_attn\.(q|k|v|out)_proj|mlp\.fc[12]|^visual_projection)$")


def module_with_linears(state):
    """module_from(state), with every HF CLIP linear layer a real nn.Linear (DOP selects them by
    type): weight [out, in], and the bias when the state has one."""
    root = module_from({n: v for n, v in state.items()
                        if not LINEAR_LAYER.search(n.rsplit(".", 1)[0])})
    for name, value in state.items():
        path = name.rsplit(".", 1)[0]
        if not name.endswith(".weight") or not LINEAR_LAYER.search(path):
            continue
        layer = nn.Linear(value.shape[1], value.shape[0], bias=f"{path}.bias" in state)
        with torch.no_grad():
            layer.weight.copy_(value)
            if layer.bias is not None:
                layer.bias.copy_(state[f"{path}.bias"])
        *parents, leaf = path.split(".")
        m = root
        for part in parents:
            if not hasattr(m, part):
                m.add_module(part, nn.Module())
            m = getattr(m, part)
        m.add_module(leaf, layer)
    return root


def run_dop(spec, base, experts):
    """FusionBench's DOP: ContinualDOPForCLIP (dop.py, dop.yaml's target) or, for "dop_general",
    DOPMerging (dop_general.py), in the given task order, on a CPU fabric."""
    P = spec["params"]
    pool = BaseModelPool({"_pretrained_": module_with_linears(base),
                          **{f"task{t}": module_with_linears(e) for t, e in enumerate(experts)}})
    cls = (fb("method.dop.dop").ContinualDOPForCLIP if spec["method"] == "dop"
           else fb("method.dop.dop_general").DOPMerging)
    alg = cls(seed=0, shuffle_order=False, save_on_every_step=False,
              evaluate_on_every_step=False, lr=P["lr"], num_steps=P["iterations"],
              mgda=P["mgda"], ema=P["ema"], ema_beta=P["ema_beta"], alpha=P["alpha"],
              svd_epsilon=P["svd_epsilon"], svd_proj_space=P["svd_proj_space"])
    alg.fabric = SimpleNamespace(device=torch.device("cpu"), world_size=1,
                                 to_device=lambda x: x)
    alg.log_dir = None
    with contextlib.redirect_stdout(sys.stderr):  # its progress lines
        merged = alg.run(pool)
    return diff(state_of(merged), base)


def state_of(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def diff(theta, base):
    return {n: theta[n] - base[n] for n in base}


# ---- one run per method -------------------------------------------------------------------------
def run(spec):
    P = spec["params"]
    base = st.load(spec["base"])[0]
    experts = [st.load(p)[0] for p in spec["experts"]]
    names = list(base)
    taus = [{n: e[n] - base[n] for n in names} for e in experts]  # as FusionBench forms them
    pool = lambda buffers=False: BaseModelPool({
        "_pretrained_": module_from(base, buffers),
        **{f"task{t}": module_from(e, buffers) for t, e in enumerate(experts)}})
    method = spec["method"]
    if method == "magmax":
        out = fb("method.magmax.magmax").MagMaxAlgorithm(scaling_factor=P["scaling"]).run(pool())
        return diff(state_of(out), base)
    if method == "model_stock":
        out = fb("method.model_stock.model_stock").ModelStock(ignore_keys=[]).run(pool())
        return diff(state_of(out), base)
    if method == "weighted_average":
        weights = P["weights"] or [1.0] * len(taus)
        alg = fb("method.weighted_average.weighted_average").WeightedAverageAlgorithm(
            normalize=P["normalize"], weights=weights, verbose=False)
        return diff(state_of(alg.run(pool())), base)
    if method in ("ties_max", "ties"):
        u = fb("method.ties_merging.ties_merging_utils")
        flat = torch.vstack([u.state_dict_to_vector(tau) for tau in taus])
        merged = u.ties_merging(flat, reset_thresh=P["k"], merge_func=P.get("merge", "max"))
        merged = u.vector_to_state_dict(merged, taus[0])
        return {n: P["scaling"] * merged[n] for n in names}
    if method == "dare_average":
        torch.manual_seed(spec.get("seed", 0))
        alg = fb("method.dare.simple_average").DareSimpleAverage(
            sparsity_ratio=P["p"], only_on_linear_weights=P["linear_only"], rescale=P["rescale"])
        return diff(state_of(alg.run(pool())), base)
    if method == "slerp":
        two = BaseModelPool({f"task{t}": module_from(e) for t, e in enumerate(experts)})
        alg = fb("method.slerp.slerp").SlerpMergeAlgorithm(
            t=P["t"], DOT_THRESHOLD=P["dot_threshold"], epsilon=P["epsilon"])
        return diff(state_of(alg.run(two)), base)
    if method == "emr":
        unified, masks, rescalers = fb("method.emr_merging.utils").emr_merge(taus)
        # EMRTaskModulator.apply: θ_t = θ0 + τ_uni ⊙ mask_t · rescaler_t
        return [{n: unified[n] * masks[n][t] * rescalers[t] for n in names}
                for t in range(len(taus))]
    if method == "tsv_c":
        svd = fb("method.task_singular_vector.utils.TSVC_utils").compress_tv(
            {t: SimpleNamespace(vector=tau) for t, tau in enumerate(taus)}, 1 / len(taus))
        # as the official eval.py rebuilds each task: u @ diag(s) @ v, or the kept tensor
        return [{n: d[n]["u"] @ torch.diag_embed(d[n]["s"]) @ d[n]["v"] if "u" in d[n]
                 else d[n]["dim1"] for n in names} for d in (svd[t] for t in range(len(taus)))]
    if method == "tall_mask":
        u = fb("method.tall_mask.utils")
        vec = fb("method.ties_merging.ties_merging_utils")
        flat_tv = torch.vstack([vec.state_dict_to_vector(tau) for tau in taus])
        flat_ft = torch.vstack([vec.state_dict_to_vector(e) for e in experts])
        flat_ptm = vec.state_dict_to_vector(base)
        mtl = flat_tv.sum(0)
        masks = u.generate_task_masks(flat_tv, flat_ft, flat_ptm, tv=mtl,
                                      tall_mask_lambda=P["lambda"])
        return [vec.vector_to_state_dict(mtl * m, taus[0]) for m in masks]
    if method.startswith("svc_"):
        merged = base_merge(method[4:], P, pool())
        calibrate = fb("method.singular_value_calibration.svc").SingularValueCalibration
        models = pool()
        models.add_model("_merged_", merged)
        # torch 1.13 has no torch.mps, which the default device lookup probes: name the CPU.
        alg = calibrate(alpha=P["alpha"], accelerator=torch.device("cpu"))
        return diff(state_of(alg.run(models)), base)
    if method == "trust_region":
        alg = fb("method.trust_region.clip_task_arithmetic").TaskArithmeticWithTrustRegionForCLIP(
            scaling_factor=P["scaling"], threshold_quantile=P["quantile"], max_samples=0,
            batch_size=0, zero_shot=True)
        return diff(state_of(alg.run(pool())), base)
    if method == "doge_ta":  # its 400 Adam steps are fixed in the code
        alg = fb("method.doge_ta.doge_ta").DOGE_TA_Algorithm(
            subspace=P["subspace"], K=P["k"], lamda=P["lambda"])
        return diff(state_of(alg.run(pool())), base)
    if method == "knots":
        return run_knots(spec, os.environ["KNOTS"])
    if method in ("dop", "dop_general"):
        return run_dop(spec, base, experts)
    if method == "tall_mask_algorithm":  # FusionBench's TallMaskTaskArithmeticAlgorithm.run
        # At 54c9e8c its run() mixes nn.Parameters (θ0's state dict, keep_vars=True) with the
        # plain tensors of its task vectors, which state_dict_sub refuses ("Tensor type
        # mismatch"); with the weights held as buffers it runs.
        alg = fb("method.tall_mask.task_arithmetic").TallMaskTaskArithmeticAlgorithm(
            tall_mask_lambda=P["lambda"])
        models = alg.run(pool(buffers=True))["models"]
        return [diff(state_of(models[f"task{t}"]), base) for t in range(len(taus))]
    raise ValueError(f"no FusionBench run for {method}")


def base_merge(method, P, pool):
    """FusionBench's merged model for an SVC base, with its α_base."""
    a = P["base_scaling"]
    if method == "task_arithmetic":
        return fb("method.task_arithmetic.task_arithmetic").TaskArithmeticAlgorithm(
            scaling_factor=a).run(pool)
    if method == "ties":
        return fb("method.ties_merging.ties_merging").TiesMergingAlgorithm(
            scaling_factor=a, threshold=P["k"], remove_keys=[], merge_func=P["merge"]).run(pool)
    if method == "average":
        # SimpleAverageAlgorithm.run loads with load_state_dict(assign=...), which torch 1.13
        # lacks; its averaging itself is state_dict_avg.
        avg = fb("utils.state_dict_arithmetic").state_dict_avg(
            [pool.load_model(n).state_dict() for n in pool.model_names])
        model = pool.load_pretrained_model()
        model.load_state_dict(avg)
        return model
    if method == "tsv_m":
        return fb("method.task_singular_vector.TSVM").TaskSingularVectorMerging(
            alpha=a, exclude_keys=None, return_single_task_models=False).run(pool)
    if method == "wudi":
        return fb("method.wudi.wudi").WUDIMerging(
            iter_num=P["iterations"], exclude_keys=None).run(pool)
    raise ValueError(f"no FusionBench base merge {method}")


def main_all(specs):
    for spec in specs:
        merged = run(spec)
        if isinstance(merged, list):
            st.save(spec["out"], {f"t{t}::{n}": m[n].float().contiguous()
                                  for t, m in enumerate(merged) for n in m})
        else:
            st.save(spec["out"], {n: v.float().contiguous() for n, v in merged.items()})


# ---- KnOTS's own SVDMerger (gstoica27/KnOTS, a checkout named by KNOTS) ----------------------
def run_knots(spec, root):
    """KnOTS-TIES by the official SVDMerger.transform + merge, on full-model task vectors.

    task_merger.py imports `utils` (CLIP, PEFT, sklearn) only for get_merging_fn/get_mask_fn,
    which look a function up by name in merging_functions.py / masking_ops.py: a stand-in
    `utils` module does that lookup; everything else is KnOTS's own code."""
    if root not in sys.path:
        sys.path.insert(0, root)
    if "utils" not in sys.modules or not hasattr(sys.modules["utils"], "get_mask_fn"):
        shim = types.ModuleType("utils")
        shim.get_merging_fn = lambda name: getattr(
            importlib.import_module("merging_functions"), name + "_merging")
        shim.get_mask_fn = lambda name: getattr(
            importlib.import_module("masking_ops"), name + "_masking")
        sys.modules["utils"] = shim
    task_merger = importlib.import_module("task_merger")
    P = spec["params"]
    base = st.load(spec["base"])[0]
    experts = [st.load(p)[0] for p in spec["experts"]]

    class Handler:  # full fine-tuning: every parameter is fine-tuned
        def __init__(self, model):
            self.model = model

        def get_ft_parameters(self):
            return {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    config = {"merge_method": "ties", "topK": P["k"], "merging_type": P["merge"],
              "sign_resolve_mode": "sum_of_values", "concat_across_output": True,
              "dare": False, "representation": "svd-vector"}
    merger = task_merger.SVDMerger([module_from(e) for e in experts], module_from(base),
                                   Handler, device="cpu", merge_config=config)
    merger.set_scaling_coeffs(P["scaling"])
    merger.transform(config)
    merged = merger.merge(config)
    return diff(state_of(merged), base)
