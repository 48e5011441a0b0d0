"""Runs FusionBench's own code for the data-using merge methods on the problem the TypeScript
test writes (same spec and outputs as data_reference.py), from a checkout of
tanganke/fusion_bench named by the environment variable FUSION_BENCH_DIR (the directory that
holds `fusion_bench/`). Nothing of FusionBench is copied here: its files are executed from the
checkout, with its heavy dependencies (Lightning, Hydra/OmegaConf, transformers, tqdm) replaced
by the small stand-ins below, and torch 1.13's `torch.nn.utils.stateless.functional_call` under
the name `torch.func.functional_call` (torch ≥ 2.0) that the wrappers import.

What runs from FusionBench:
- AdaMerging: TaskWiseMergedModel / LayerWiseMergedModel (models/wrappers), entropy_loss, and the
  algorithms' own `test_time_adaptation` loops (task_wise_adamerging.py, layer_wise_adamerging.py)
  with CLIPTaskWiseAdaMergingAlgorithm.compute_logits;
- RegMean: RegMeanAlgorithmForCLIP.get_regmean_weights (its forward hooks) and
  merging_with_regmean_weights;
- RegMean++: RegMeanAlgorithmForCLIPPlusPlus.run, its whole layer-by-layer merge;
- Fisher merging: FisherMergingForCLIPVisionModel.get_fisher_weights and
  merging_with_fisher_weights;
- Frank-Wolfe merging (hard): FrankWolfeHardAlgorithm.run, its whole loop (initial Task
  Arithmetic, gradients, frank_wolfe_selection, the steps through its task_arithmetic_merge and
  utils/state_dict_arithmetic.py), with CLIPTaskWiseAdaMergingAlgorithm.compute_logits and
  `.cuda()` the identity on this CPU-only torch;
- Frank-Wolfe merging (soft): FrankWolfeSoftAlgorithm.run, its oracle and its rounds of
  run_adamerging on LayerWiseMergedModel;
- Concrete Task Arithmetic: ConcreteTaskArithmeticAlgorithmForCLIP.run (clip_concrete_task_
  arithmetic.py: its setup_models, train_mask and final sample), with MaskModel (models/masks)
  and TaskWiseMergedModel; compute_logits is CLIPTaskWiseAdaMergingAlgorithm's (the same
  formula as CLIPClassificationMixin's, whose module needs transformers). The uniform noise
  that torch.rand (RelaxedBernoulli.rsample) and torch.bernoulli (Bernoulli.sample) would draw
  is the test's, injected in MaskModel's parameter order;
- Ada-SVD: AdaSVDMergingForCLIPVisionModel.run as it is (SMILE upscaling with SmileMoELinear and
  SmileGate, simple_average of the leaf modules, the block-by-block pass with its routing hooks,
  the reduction by WeightedAverageAlgorithm and state_dict arithmetic), on a stand-in of
  CLIPVisionModel (no visual projection, blocks returning tuples); only prepare_data (the
  test's images in the test's order, for its seeded random_split) and Lightning's
  seed_everything are replaced;
- Concrete AdaMerging: ConcreteTaskWiseAdaMergingForCLIP.run and
  ConcreteLayerWiseAdaMergingForCLIP.run (clip_concrete_adamerging.py: the meta-learned mask,
  the final sample and run_adamerging), with the same stand-ins and noise.
The data loaders are replaced by ones that yield the test's batches in the test's order.
"""
import contextlib
import importlib.util
import inspect
import os
import sys
import types
from typing import TypeVar

import torch
from torch import nn

import st

ROOT = os.environ.get("FUSION_BENCH_DIR", "")


# ---- loading FusionBench files without its package __init__ files or dependencies ----------------
def package(name):
    m = sys.modules.get(name) or types.ModuleType(name)
    m.__path__ = [os.path.join(ROOT, *name.split("."))]
    sys.modules[name] = m
    return m


def load_package(name):
    """A FusionBench package's own __init__.py (for packages whose __init__ computes)."""
    path = os.path.join(ROOT, *name.split("."), "__init__.py")
    spec = importlib.util.spec_from_file_location(name, path,
                                                  submodule_search_locations=[os.path.dirname(path)])
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def stub(name, **attrs):
    m = sys.modules.get(name) or types.ModuleType(name)
    m.__dict__.update(attrs)
    sys.modules[name] = m
    return m


def load(name):
    path = os.path.join(ROOT, *name.split(".")) + ".py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


class Config(dict):
    """OmegaConf's DictConfig as FusionBench reads it: keys as attributes, .get()."""

    def __getattr__(self, k):
        try:
            return self[k]
        except KeyError as e:
            raise AttributeError(k) from e


class Fabric:
    """Lightning Fabric on one CPU process: setup is the identity, backward is autograd's."""

    def setup(self, *objs):
        return objs if len(objs) > 1 else objs[0]

    def setup_dataloaders(self, loader):
        return loader

    def backward(self, loss, **kwargs):
        loss.backward(**kwargs)

    def log_dict(self, *args, **kwargs):
        pass

    def to_device(self, x):
        return x


class Profiler:
    @contextlib.contextmanager
    def profile(self, *args):
        yield

    def print_profile_summary(self, *args):
        pass


class passthrough:  # noqa: N801 - stands in for tqdm
    def __init__(self, it=None, *args, **kwargs):
        self.it = it if it is not None else range(0)

    def __iter__(self):
        return iter(self.it)

    def set_postfix(self, *args, **kwargs):
        pass


def setup():
    if not ROOT or not os.path.isdir(os.path.join(ROOT, "fusion_bench")):
        raise SystemExit(f"FUSION_BENCH_DIR={ROOT!r} holds no fusion_bench/ checkout")

    def functional_call(module, params, args=(), kwargs=None, tie_weights=True, strict=False):
        return torch.nn.utils.stateless.functional_call(module, params, args, kwargs or {})

    if not hasattr(torch, "func"):
        torch.func = stub("torch.func", functional_call=functional_call)
    stub("tqdm", tqdm=passthrough)
    stub("tqdm.autonotebook", tqdm=passthrough)
    stub("tqdm.auto", tqdm=passthrough)
    stub("omegaconf", DictConfig=Config)
    stub("lightning", Fabric=Fabric)
    stub("lightning.fabric")
    stub("lightning.fabric.utilities")
    stub("lightning.fabric.utilities.rank_zero", rank_zero_only=lambda f: f)
    stub("transformers", CLIPModel=object, CLIPProcessor=object)
    for name in ["fusion_bench", "fusion_bench.models", "fusion_bench.models.wrappers",
                 "fusion_bench.method", "fusion_bench.method.adamerging",
                 "fusion_bench.method.regmean", "fusion_bench.method.fisher_merging",
                 "fusion_bench.method.regmean_plusplus", "fusion_bench.method.fw_merging",
                 "fusion_bench.utils", "fusion_bench.mixins", "fusion_bench.compat",
                 "fusion_bench.dataset"]:
        package(name)
    identity = lambda cls=None, **kw: cls if cls is not None else (lambda c: c)  # noqa: E731

    def base(name):  # a distinct empty class per stand-in, so classes may list several
        return type(name, (), {"_config_mapping": {}})

    algorithm, fabric_mixin, clip_mixin = base("BaseAlgorithm"), base("Fabric"), base("CLIP")
    stub("fusion_bench", auto_register_config=identity, BaseAlgorithm=algorithm)
    stub("fusion_bench.utils", timeit_context=contextlib.nullcontext, instantiate=None)
    stub("fusion_bench.utils.type", StateDictType=dict, BoolStateDictType=dict,
         TorchModelType=TypeVar("TorchModelType"))
    stub("fusion_bench.utils.dict", dict_merge=lambda *a, **k: {})
    stub("fusion_bench.utils.data", load_tensor_from_file=torch.load, InfiniteDataLoader=iter)
    stub("fusion_bench.compat.method", ModelFusionAlgorithm=base("ModelFusionAlgorithm"))
    stub("fusion_bench.compat.modelpool", ModelPool=object, HuggingFaceClipVisionPool=object)
    stub("fusion_bench.modelpool", BaseModelPool=object, CLIPVisionModelPool=object)
    stub("fusion_bench.dataset", CLIPDataset=lambda dataset, processor=None: dataset)
    stub("fusion_bench.dataset.clip_dataset", CLIPDataset=lambda dataset, processor=None: dataset)
    stub("fusion_bench.models.hf_clip", HFCLIPClassifier=object)
    stub("fusion_bench.tasks.clip_classification", get_classnames_and_templates=None)
    stub("fusion_bench.method", BaseAlgorithm=algorithm)
    stub("fusion_bench.mixins", SimpleProfilerMixin=Profiler, auto_register_config=identity,
         CLIPClassificationMixin=clip_mixin, LightningFabricMixin=fabric_mixin)
    stub("fusion_bench.mixins.lightning_fabric", LightningFabricMixin=fabric_mixin)
    stub("fusion_bench.mixins.simple_profiler", SimpleProfilerMixin=Profiler)
    stub("fusion_bench.mixins.clip_classification", VISION_MODEL_PREFIX="vision_model.",
         vision_backbone=lambda model: model.vision_model)
    load("fusion_bench.models.utils")
    mods = {}
    for name in ["fusion_bench.models.wrappers.task_wise_fusion",
                 "fusion_bench.models.wrappers.layer_wise_fusion",
                 "fusion_bench.method.adamerging.entropy_loss",
                 "fusion_bench.method.adamerging.utils",
                 "fusion_bench.method.adamerging.task_wise_adamerging",
                 "fusion_bench.method.adamerging.layer_wise_adamerging",
                 "fusion_bench.method.adamerging.clip_task_wise_adamerging",
                 "fusion_bench.method.regmean.utils",
                 "fusion_bench.method.regmean.regmean",
                 "fusion_bench.method.regmean.clip_regmean",
                 "fusion_bench.method.regmean_plusplus.regmean_plusplus",
                 "fusion_bench.method.regmean_plusplus.clip_regmean_plusplus",
                 "fusion_bench.method.fisher_merging.fisher_merging",
                 "fusion_bench.method.fisher_merging.clip_fisher_merging",
                 "fusion_bench.utils.state_dict_arithmetic",
                 "fusion_bench.method.fw_merging.utils",
                 "fusion_bench.method.fw_merging.fw_hard",
                 "fusion_bench.method.fw_merging.fw_soft"]:
        mods[name.split(".")[-1]] = mods[".".join(name.split(".")[-2:])] = load(name)
    return mods


# ---- the test's CLIP vision tower as an nn.Module with Hugging Face's names -----------------------
class Attention(nn.Module):
    def __init__(self, d, heads):
        super().__init__()
        self.heads = heads
        self.q_proj, self.k_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.v_proj, self.out_proj = nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, x):
        b, t, d = x.shape
        hd = d // self.heads

        def split(y):
            return y.view(b, t, self.heads, hd).transpose(1, 2)

        q, k, v = split(self.q_proj(x) * hd ** -0.5), split(self.k_proj(x)), split(self.v_proj(x))
        o = (torch.softmax(q @ k.transpose(-1, -2), dim=-1) @ v).transpose(1, 2).reshape(b, t, d)
        return self.out_proj(o)


class Mlp(nn.Module):
    def __init__(self, d, hidden):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(d, hidden), nn.Linear(hidden, d)

    def forward(self, x):
        h = self.fc1(x)
        return self.fc2(h * torch.sigmoid(1.702 * h))


class Layer(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, eps = cfg["width"], cfg["layerNormEps"]
        self.self_attn = Attention(d, cfg["heads"])
        self.layer_norm1 = nn.LayerNorm(d, eps=eps)
        self.mlp = Mlp(d, cfg["mlpDim"])
        self.layer_norm2 = nn.LayerNorm(d, eps=eps)

    def forward(self, x, **kwargs):  # RegMean++ passes attention masks (None)
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class Embeddings(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, p = cfg["width"], cfg["patchSize"]
        self.class_embedding = nn.Parameter(torch.zeros(d))
        self.patch_embedding = nn.Conv2d(cfg["channels"], d, p, stride=p, bias=False)
        self.position_embedding = nn.Embedding((cfg["imageSize"] // p) ** 2 + 1, d)

    def forward(self, x):
        tokens = self.patch_embedding(x).flatten(2).transpose(1, 2)
        cls = self.class_embedding.expand(x.shape[0], 1, -1)
        return torch.cat([cls, tokens], dim=1) + self.position_embedding.weight


class Encoder(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        self.layers = nn.ModuleList([Layer(cfg) for _ in range(cfg["layers"])])


class VisionModel(nn.Module):
    def __init__(self, cfg):
        super().__init__()
        d, eps = cfg["width"], cfg["layerNormEps"]
        self.embeddings = Embeddings(cfg)
        self.pre_layrnorm = nn.LayerNorm(d, eps=eps)
        self.encoder = Encoder(cfg)
        self.post_layernorm = nn.LayerNorm(d, eps=eps)


class Tower(nn.Module):
    """Returns (None, image features) like CLIPVisionModel's (last_hidden_state, pooled), with
    the projection inside, so that FusionBench's compute_logits (module(images)[1], then its
    visual_projection, here the identity) sees the merged projection."""

    def __init__(self, cfg, params):
        super().__init__()
        self.vision_model = VisionModel(cfg)
        self.visual_projection = nn.Linear(cfg["width"], cfg["projectionDim"], bias=False)
        missing = self.load_state_dict({k: v.float() for k, v in params.items()}, strict=True)
        assert not missing.missing_keys and not missing.unexpected_keys, missing

    @property
    def device(self):
        return next(self.parameters()).device

    def forward(self, x):
        v = self.vision_model
        h = v.pre_layrnorm(v.embeddings(x))
        for layer in v.encoder.layers:
            h = layer(h)
        return None, self.visual_projection(v.post_layernorm(h[:, 0, :]))


# ---- the methods -----------------------------------------------------------------------------------
def pixels(images, task, idx, norm):
    x = images[f"images{task}"][list(idx)]
    return (x - norm["mean"]) / norm["std"]


class Loader:
    """Stands in for torch's DataLoader: the test's batches, in the test's order."""

    def __init__(self, batches):
        self.batches, self.batch_size = batches, len(batches[0][0]) if batches else 1

    def __iter__(self):
        return iter(self.batches)


def clip_setup(algo, heads, task_names):
    algo.zeroshot_weights = {n: torch.nn.functional.normalize(heads[f"head{t}"], dim=-1)
                             for t, n in enumerate(task_names)}
    algo.visual_projection = nn.Identity()
    scales = {float(heads[f"scale{t}"]) for t in range(len(task_names))}
    assert len(scales) == 1, "FusionBench uses one logit scale for every head"
    algo.logit_scale_exp = torch.tensor(scales.pop())


def adamerging(mods, spec, cfg, base, taus, images, heads, norm):
    P, T = spec["params"], len(taus)
    names = [f"task{t}" for t in range(T)]
    pretrained = Tower(cfg, base)
    finetuned = [Tower(cfg, {k: base[k] + tau[k] for k in base}) for tau in taus]
    # FusionBench's columns follow named_parameters() (Hugging Face's module order); the test's
    # follow spec["names"].
    order = [[n for n, _ in pretrained.named_parameters()].index(n) for n in spec["names"]]
    config = Config(optimizer="adam", lr=P["lr"], max_steps=P["steps"], init_values=P["init"],
                    clamp_weights=P["clamp"], tie_weights=True, strict=False, fast_dev_run=False)
    iters = {n: iter([(pixels(images, t, spec["batches"][s][t], norm), None)
                      for s in range(P["steps"])]) for t, n in enumerate(names)}
    task_wise = not spec["layer_wise"]
    if task_wise:
        tw = mods["task_wise_fusion"]
        module = tw.TaskWiseMergedModel(
            task_wise_weight=tw.get_task_wise_weights(T, P["init"]), pretrained_model=pretrained,
            finetuned_models=finetuned, clamp_weights=P["clamp"], tie_weights=True, strict=False)
        algo_cls = mods["clip_task_wise_adamerging"].CLIPTaskWiseAdaMergingAlgorithm
    else:
        lw = mods["layer_wise_fusion"]
        layers = len([p for p in pretrained.parameters() if p.requires_grad])
        module = lw.LayerWiseMergedModel(
            layer_wise_weight=lw.get_layer_wise_weights(T, layers, P["init"]),
            pretrained_model=pretrained, finetuned_models=finetuned, clamp_weights=P["clamp"],
            tie_weights=True, strict=False)
        algo_cls = mods["layer_wise_adamerging"].LayerWiseAdaMergingAlgorithm
    trajectory, merge_weights = [], module.merge_weights

    def recording_merge_weights(*a, **k):  # called once before the loop and after every step
        trajectory.append(module.merge_weight.detach().clone())
        return merge_weights(*a, **k)

    module.merge_weights = recording_merge_weights
    tasks_compute_logits = mods["clip_task_wise_adamerging"].CLIPTaskWiseAdaMergingAlgorithm.compute_logits

    class Algo(algo_cls):
        def __init__(self):  # FusionBench's __init__ builds Lightning; set what the loop reads
            self.config, self._fabric, self.fabric = config, Fabric(), Fabric()
            self.modelpool = types.SimpleNamespace(model_names=names)
            self.is_debug_mode = False
            clip_setup(self, heads, names)

        def get_shuffled_test_loader_iter(self, task):
            return iters[task]

        def compute_logits(self, module, batch, task):
            images = batch[0] if isinstance(batch, tuple) else batch
            return tasks_compute_logits(self, module, (images, None), task)

        def on_test_time_adaptation_start(self):
            pass

        def profile(self, *a):
            return contextlib.nullcontext()

        def print_profile_summary(self, *a):
            pass

    Algo().test_time_adaptation(module)
    steps = torch.stack(trajectory[1:])  # λ after each step
    steps = steps.reshape(P["steps"], T, 1) if task_wise else steps[:, :, order]
    used = module.merge_weight.detach()
    used = used.clamp(0, 1) if P["clamp"] else used
    merged = module.merge_and_unload()
    out = {k: v.detach().double() - base[k] for k, v in merged.state_dict().items()}
    return out, {"trajectory": steps}


def regmean(mods, spec, cfg, base, taus, images, norm):
    P, T = spec["params"], len(taus)
    names = [f"task{t}" for t in range(T)]
    cr, rm, ru = mods["clip_regmean"], mods["regmean.regmean"], mods["regmean.utils"]
    algo = cr.RegMeanAlgorithmForCLIP.__new__(cr.RegMeanAlgorithmForCLIP)
    algo.fabric, algo.num_regmean_examples = Fabric(), 10 ** 9  # the test's batches decide
    algo.dataloader_kwargs, algo.clip_processor = {}, None
    clip_setup(algo, {f"head{t}": torch.eye(cfg["projectionDim"]) for t in range(T)} |
               {f"scale{t}": torch.tensor(1.0) for t in range(T)}, names)
    params, grams = {}, []
    for t, tau in enumerate(taus):
        model = Tower(cfg, {k: base[k] + tau[k] for k in base})
        for k, v in model.state_dict().items():
            params.setdefault(k, []).append(v)
        batches = [(pixels(images, t, idx, norm).float(), None) for idx in spec["batches"][t]]
        cr.DataLoader = lambda dataset, shuffle=False, **kw: Loader(batches)  # noqa: B023
        linear = ru.get_modules_to_merge(model, [nn.Linear])
        with torch.no_grad():
            grams.append(algo.get_regmean_weights(names[t], model, None, linear))
    merged = rm.merging_with_regmean_weights(params, grams, P["alpha"], weight_transpose=True)
    return {k: v.double() - base[k] for k, v in merged.items()}, {}


def regmean_plusplus(mods, spec, cfg, base, taus, images, norm):
    P, T = spec["params"], len(taus)
    if P["tail"] != "pretrained":
        raise ValueError("FusionBench's RegMean++ leaves the tail at θ0: run it with tail=pretrained")
    crp = mods["clip_regmean_plusplus"]
    algo = crp.RegMeanAlgorithmForCLIPPlusPlus.__new__(crp.RegMeanAlgorithmForCLIPPlusPlus)
    algo.num_regmean_examples = 10 ** 9  # the test's batches decide
    algo.exclude_param_names_regex, algo.reduce_non_diagonal_ratio = [], P["alpha"]
    algo.weight_transpose, algo.fabric, algo.dataloader_kwargs = True, Fabric(), {}
    algo.clip_processor = None
    algo.config = Config(exclude_param_names_regex=[], weight_transpose=True)
    algo.on_regmean_start = lambda: None  # builds zero-shot heads, unused by the merge
    batches = {f"task{t}": [(pixels(images, t, idx, norm).float(), None)
                            for idx in spec["batches"][t]] for t in range(T)}
    crp.DataLoader = lambda dataset, shuffle=False, **kw: Loader(dataset)
    pool = types.SimpleNamespace(
        named_models=lambda: [(f"task{t}", Tower(cfg, {k: base[k] + tau[k] for k in base}))
                              for t, tau in enumerate(taus)],
        load_pretrained_model=lambda: Tower(cfg, base),
        load_train_dataset=lambda name: batches[name])
    merged = algo.run(pool)
    return {k: v.detach().double() - base[k] for k, v in merged.state_dict().items()}, {}


def fisher(mods, spec, cfg, base, taus, images, heads, norm):
    P, T = spec["params"], len(taus)
    names = [f"task{t}" for t in range(T)]
    cf, fm = mods["clip_fisher_merging"], mods["fisher_merging"]
    algo = cf.FisherMergingForCLIPVisionModel.__new__(cf.FisherMergingForCLIPVisionModel)
    algo.fabric, algo.dataloader_kwargs, algo.clip_processor = None, {}, None
    algo.config = Config(num_fisher_examples=10 ** 9)  # the test's batches decide
    clip_setup(algo, heads, names)
    params, fishers = {}, []
    for t, tau in enumerate(taus):
        model = Tower(cfg, {k: base[k] + tau[k] for k in base})
        for k, v in model.state_dict().items():
            params.setdefault(k, []).append(v.detach())
        batches = [(pixels(images, t, idx, norm).float(), None) for idx in spec["batches"][t]]
        cf.DataLoader = lambda dataset, **kw: Loader(batches)  # noqa: B023
        fishers.append(algo.get_fisher_weights(names[t], model, None, list(params.keys())))
    merged = fm.merging_with_fisher_weights(
        params, fishers, torch.ones(T) / T, normalize_fisher_weight=P["normalize"],
        minimal_fisher_weight=P["epsilon"])
    return {k: v.double() - base[k] for k, v in merged.items()}, {}


def fw_hard(mods, spec, cfg, base, taus, images, heads, norm):
    P, T = spec["params"], len(taus)
    names = [f"task{t}" for t in range(T)]
    compute = mods["clip_task_wise_adamerging"].CLIPTaskWiseAdaMergingAlgorithm.compute_logits
    labels = spec["labels"] if P["loss"] == "cross_entropy" else None
    # One image at a time, iteration after iteration: FusionBench's cached shuffled loader.
    streams = {n: iter([(pixels(images, t, [i], norm),
                         torch.tensor([labels[t][i] if labels else 0]))
                        for batches in spec["batches"] for i in batches[t]])
               for t, n in enumerate(names)}
    chosen, scores = [], []

    class Algo(mods["fw_hard"].FrankWolfeHardAlgorithm):
        def __init__(self):
            super().__init__(merge_fn="task_arithmetic", step_size=P["step_size"],
                             max_iters=P["steps"], dataset_size=P["examples"],
                             granularity=P["granularity"], loss_fn=P["loss"],
                             init_weight="base" if P["init"] == "base" else "",
                             scaling_factor=P["init_scaling"])
            self.config, self.is_debug_mode = Config(), False

        def log_hyperparams(self, *a):
            pass

        def setup_zero_shot_classification_head(self):
            clip_setup(self, heads, names)

        def get_shuffled_loader_iter(self, task):
            return streams[task]

        def compute_logits(self, module, images, task):
            return compute(self, module, (images, None), task)

        def frank_wolfe_selection(self, gradients, checkpoints, **kw):
            out = super().frank_wolfe_selection(gradients, checkpoints, **kw)
            order = list(checkpoints.keys())  # the experts, then "initial"
            pick = out[1] if isinstance(out[1], dict) else {k: out[1] for k in spec["names"]}
            chosen.append([order.index(pick[k]) for k in spec["names"]])
            return out

    pool = types.SimpleNamespace(
        model_names=names, has_pretrained=True,
        load_model=lambda n: Tower(cfg, base if n == "_pretrained_" else
                                   {k: base[k] + taus[names.index(n)][k] for k in base}))
    # At 54c9e8c fw_hard's task_arithmetic_merge adds a task vector (Tensor) to a model's
    # state_dict(keep_vars=True) (Parameters), which state_dict_add's type check, added on
    # 2025-09-07 (d783816) after FW-Merging, rejects with a TypeError: FusionBench's own add and
    # sub run here without that check (strict=False), their arithmetic unchanged.
    fw, sda = mods["fw_hard"], mods["state_dict_arithmetic"]
    fw.state_dict_add = lambda a, b, **k: sda.state_dict_add(a, b, strict=False, **k)
    fw.state_dict_sub = lambda a, b, **k: sda.state_dict_sub(a, b, strict=False, **k)
    cuda = nn.Module.cuda
    nn.Module.cuda = lambda self, *a, **k: self  # CPU-only torch
    try:
        merged = Algo().run(pool)
    finally:
        nn.Module.cuda = cuda
    choices = torch.tensor(chosen, dtype=torch.float64)
    if P["granularity"] == "task":
        choices = choices[:, :1]
    out = {k: v.detach().double() - base[k] for k, v in merged.state_dict().items()}
    return out, {"choices": choices}


def fw_soft(mods, spec, cfg, base, taus, images, heads, norm):
    P, T = spec["params"], len(taus)
    names = [f"task{t}" for t in range(T)]
    compute = mods["clip_task_wise_adamerging"].CLIPTaskWiseAdaMergingAlgorithm.compute_logits
    tests = {n: iter([(pixels(images, t, idx, norm), None) for rnd in spec["batches"]
                      for idx in (step[t] for step in rnd)]) for t, n in enumerate(names)}
    # The oracle's cross-entropy batches: any labelled images do (with every task in the pool a
    # round picks every expert, and the order cannot change the merge, which the test checks);
    # the first test images with label 0, two per task and round (dataset_size 2).
    oracle = {n: iter([(pixels(images, t, [0], norm), torch.tensor([0]))] * (2 * P["steps"]))
              for t, n in enumerate(names)}
    trajectory, picks = [], []

    class Algo(mods["fw_soft"].FrankWolfeSoftAlgorithm):
        def __init__(self):
            # tasks=[]: fw_soft.yaml's `tasks:` is null, which run_adamerging iterates over
            # (`self.tasks == []` is False for None) and fails; [] is the constructor's default.
            super().__init__(max_iters=P["steps"], dataset_size=2, ada_iters=P["ada_steps"],
                             ada_coeff=P["ada_coeff"], merge_fn="adamerging",
                             granularity="task", tasks=[], init_weight="")
            self.config, self.is_debug_mode = Config(), False
            self.fabric = Fabric()
            self.fabric.is_global_zero = True

        def log_hyperparams(self, *a):
            pass

        def setup_zero_shot_classification_head(self):
            clip_setup(self, heads, names)

        def get_shuffled_train_loader_iter(self, task, batch_size=1):
            return oracle[task]

        def get_shuffled_test_loader_iter(self, task, batch_size=1):
            assert batch_size == P["batch"], "the test's batches are of the configured size"
            return tests[task]

        def compute_logits(self, module, images, task):
            return compute(self, module, (images, None), task)

        def frank_wolfe_selection(self, gradients, checkpoints, model_to_merge_names=(),
                                  type="task"):
            out = super().frank_wolfe_selection(gradients, checkpoints, model_to_merge_names,
                                                type=type)
            picks.append(names.index(out[1]))  # the round's slot order of the experts
            return out

        def run_adamerging(self, module):
            weights, record = module.merge_weights, []

            def recording(*a, **k):  # before every step, and once more in merge_and_unload
                record.append(module.merge_weight.detach().clone())
                return weights(*a, **k)

            module.merge_weights = recording
            out = super().run_adamerging(module)
            merge_and_unload = out.merge_and_unload

            def unload(*a, **k):
                result = merge_and_unload(*a, **k)
                trajectory.extend(record[1:])  # λ after each step
                return result

            out.merge_and_unload = unload
            return out

    assert P["lr"] == 1e-3 and P["init"] == 0.3, "FusionBench's fw_soft fixes lr and init"
    pool = types.SimpleNamespace(
        model_names=names, has_pretrained=True,
        load_model=lambda n: Tower(cfg, base if n == "_pretrained_" else
                                   {k: base[k] + taus[names.index(n)][k] for k in base}))
    cuda = nn.Module.cuda
    nn.Module.cuda = lambda self, *a, **k: self  # CPU-only torch
    try:
        merged = Algo().run(pool)
    finally:
        nn.Module.cuda = cuda
    order = [[n for n, _ in Tower(cfg, base).named_parameters()].index(n) for n in spec["names"]]
    rows = [picks[(s // P["ada_steps"]) * T:(s // P["ada_steps"] + 1) * T]
            for s in range(len(trajectory))]
    steps = torch.stack([lam[[r.index(t) for t in range(T)]] for lam, r in zip(trajectory, rows)])
    steps = steps[:, :, order]
    out = {k: v.detach().double() - base[k] for k, v in merged.state_dict().items()}
    return out, {"trajectory": steps}
class Pool:
    """FusionBench's BaseModelPool as WeightedAverageAlgorithm reads it: names and models."""

    def __init__(self, models):
        self.models_ = dict(models)

    @property
    def model_names(self):
        return list(self.models_)

    def load_model(self, name):
        return self.models_[name]


def setup_ada_svd():
    """The modules Ada-SVD runs, loaded from the checkout after setup()'s stand-ins."""
    if "assign" not in inspect.signature(nn.Module.load_state_dict).parameters:
        # simple_average loads with load_state_dict(..., assign=False) (torch ≥ 2.1); torch
        # 1.13's load_state_dict always copies into the existing tensors, which is assign=False.
        original = nn.Module.load_state_dict

        def load_state_dict(self, state_dict, strict=True, assign=False):
            assert not assign, "assign=True needs torch >= 2.1"
            return original(self, state_dict, strict=strict)

        nn.Module.load_state_dict = load_state_dict
    stub("lightning", Fabric=Fabric, seed_everything=lambda seed=None, **kw: seed)
    stub("tqdm.auto", tqdm=passthrough)
    stub("transformers", CLIPModel=object, CLIPProcessor=object, CLIPVisionModel=object)
    for name in ["transformers.models", "transformers.models.clip"]:
        stub(name)
    stub("transformers.models.clip.modeling_clip", CLIPEncoderLayer=object,
         CLIPVisionTransformer=object)
    stub("fusion_bench.utils.type", StateDictType=dict, BoolStateDictType=dict,
         TorchModelType=TypeVar("TorchModelType"))
    stub("fusion_bench.utils", timeit_context=contextlib.nullcontext, LazyStateDict=type(
        "LazyStateDict", (), {}))
    stub("fusion_bench.utils.devices", get_device=lambda obj: torch.device("cpu"))
    stub("fusion_bench.modelpool", BaseModelPool=Pool, CLIPVisionModelPool=object)
    algorithm = sys.modules["fusion_bench"].BaseAlgorithm
    stub("fusion_bench", BaseModelPool=Pool)
    stub("fusion_bench.method.base_algorithm", BaseAlgorithm=algorithm)
    for name in ["fusion_bench.method.weighted_average", "fusion_bench.method.ada_svd",
                 "fusion_bench.models.smile_moe"]:
        package(name)
    load("fusion_bench.utils.state_dict_arithmetic")
    load("fusion_bench.models.smile_moe.utils.svd_utils")
    load_package("fusion_bench.models.smile_moe.utils")
    load("fusion_bench.models.smile_moe.linear_from_module")
    wa = load("fusion_bench.method.weighted_average.weighted_average")
    sa = load("fusion_bench.method.simple_average")
    stub("fusion_bench.method", WeightedAverageAlgorithm=wa.WeightedAverageAlgorithm,
         simple_average=sa)
    return load("fusion_bench.method.ada_svd.clip_vision")


class TupleLayer(Layer):
    """Hugging Face's CLIPEncoderLayer returns a tuple (hidden_states,)."""

    def forward(self, x, **kwargs):
        return (super().forward(x),)


class VisionOnly(nn.Module):
    """CLIPVisionModel's layout: the vision tower without the visual projection."""

    def __init__(self, cfg, params):
        super().__init__()
        self.vision_model = VisionModel(cfg)
        self.vision_model.encoder.layers = nn.ModuleList([TupleLayer(cfg)
                                                          for _ in range(cfg["layers"])])
        own = {k: v.float() for k, v in params.items() if k.startswith("vision_model.")}
        missing = self.load_state_dict(own, strict=True)
        assert not missing.missing_keys and not missing.unexpected_keys, missing


def ada_svd(spec, cfg, base, taus, images, norm):
    P, T = spec["params"], len(taus)
    if P["projection"] != "pretrained":
        raise ValueError("FusionBench's CLIPVisionModel has no projection: run projection=pretrained")
    cv = setup_ada_svd()
    samples = [(pixels(images, t, [i], norm)[0].float(), None)
               for t in range(T) for idx in spec["batches"][t] for i in idx]
    algo = cv.AdaSVDMergingForCLIPVisionModel(
        scaling_factor=None, num_samples=len(samples), gate_k=P["gate_k"],
        average_experts=P["average_experts"], device="cpu", upscaling_accelerator=None, seed=None)
    algo.prepare_data = lambda modelpool: samples
    pool = types.SimpleNamespace(
        model_names=[f"task{t}" for t in range(T)],
        load_pretrained_model=lambda: VisionOnly(cfg, base),
        models=lambda: [VisionOnly(cfg, {k: base[k] + tau[k] for k in base}) for tau in taus])
    with torch.no_grad():
        merged = algo.run(pool).state_dict()
    out = {k: merged[k].double() - base[k] if k in merged else torch.zeros_like(base[k])
           for k in base}
    assert set(merged) <= set(base), set(merged) - set(base)
    return out, {}


def setup_concrete(mods):
    if not hasattr(nn, "Buffer"):  # torch ≥ 2.5's nn.Buffer, named by ParameterDictModel
        nn.Buffer = type("Buffer", (), {})
    stub("fusion_bench.utils.parameters", print_parameters=lambda *a, **k: None)
    stub("fusion_bench.utils.dtype", parse_dtype=lambda d: None if d is None else getattr(torch, d))
    stub("fusion_bench.compat.modelpool", ModelPool=object, to_modelpool=lambda pool: pool)
    stub("fusion_bench.compat.modelpool.huggingface_clip_vision", HuggingFaceClipVisionPool=object)
    package("fusion_bench.models.masks")
    package("fusion_bench.method.concrete_subspace")
    pd = load("fusion_bench.models.parameter_dict")
    sys.modules["fusion_bench.models"].ParameterDictModel = pd.ParameterDictModel
    mm = load("fusion_bench.models.masks.mask_model")
    stub("fusion_bench.models.masks", MaskModel=mm.MaskModel, mask_sparsity=mm.mask_sparsity)
    mods["clip_concrete_task_arithmetic"] = load(
        "fusion_bench.method.concrete_subspace.clip_concrete_task_arithmetic")
    mods["clip_concrete_adamerging"] = load(
        "fusion_bench.method.concrete_subspace.clip_concrete_adamerging")
    return mods


class ConcreteFabric(Fabric):
    """Fabric for the concrete loop: rank zero, and modules it sets up report their device."""
    is_global_zero = True

    def setup(self, *objs):
        for o in objs:
            if isinstance(o, nn.Module) and not hasattr(o, "device"):
                o.device = torch.device("cpu")
        return super().setup(*objs)


def concrete_ta(mods, spec, cfg, base, taus, images, heads, norm):
    P, T, names = spec["params"], len(taus), spec["names"]
    tasks = [f"task{t}" for t in range(T)]
    noise = {k: v.float() for k, v in st.load(spec["noise"])[0].items()}
    pretrained = Tower(cfg, base)
    finetuned = {n: Tower(cfg, {k: base[k] + tau[k] for k in base}) for n, tau in zip(tasks, taus)}
    pool = types.SimpleNamespace(
        model_names=tasks,
        load_model=lambda name: pretrained if name == "_pretrained_" else finetuned[name])
    config = Config(batch_size=P["batch"], merge_dtype=None, optimizer="adam", lr=P["lr"],
                    scaling_factor=P["scaling"], max_steps=P["steps"], save_interval=10 ** 9,
                    initial_logits=P["init"], temperature=P["temperature"],
                    eval_mask_type=P["eval_mask"], mask_checkpoint=None, clamp_weights=False,
                    tie_weights=True, strict=False, skip_training=False)
    iters = {n: iter([(pixels(images, t, spec["batches"][s][t], norm), None)
                      for s in range(P["steps"])]) for t, n in enumerate(tasks)}
    compute_logits = mods["clip_task_wise_adamerging"].CLIPTaskWiseAdaMergingAlgorithm.compute_logits
    algo_cls = mods["clip_concrete_task_arithmetic"].ConcreteTaskArithmeticAlgorithmForCLIP
    state = {"draws": 0, "order": None, "model": None}
    trajectory = []

    def next_noise(shape):
        """The test's uniforms for the next mask tensor FusionBench samples (its parameter
        order, one pass per step); records the logits each step starts from."""
        order, i = state["order"], state["draws"]
        step, k = divmod(i, len(order))
        if k == 0 and step > 0:
            params = dict(state["model"].named_parameters())
            trajectory.append(torch.cat([params[n].detach().flatten() for n in names]))
        state["draws"] += 1
        u = noise[f"u{step + 1}/{order[k]}"]
        assert tuple(u.shape) == tuple(shape), (order[k], u.shape, shape)
        return u

    def rand(*shape, dtype=None, device=None, **kw):
        shape = tuple(shape[0]) if len(shape) == 1 and not isinstance(shape[0], int) else shape
        return next_noise(shape).to(dtype or torch.float32)

    def bernoulli(p, *a, **k):
        return (next_noise(tuple(p.shape)) < p).to(p.dtype)

    class Algo(algo_cls):
        def __init__(self):
            self.config, self.fabric = config, ConcreteFabric()
            self.is_debug_mode = False
            clip_setup(self, heads, tasks)

        def setup_models(self):
            module, mask_model = super().setup_models()
            state["model"] = mask_model
            state["order"] = [n for n, _ in mask_model.named_parameters()]
            assert sorted(state["order"]) == sorted(names), "mask tensors ≠ the test's tensors"
            return module, mask_model

        def log_hyperparams(self, *a, **k):
            pass

        def setup_zero_shot_classification_head(self):
            pass  # clip_setup set the heads

        def get_shuffled_test_loader_iter(self, task):
            return iters[task]

        def compute_logits(self, module, images, task):
            return compute_logits(self, module, (images, None), task)

        def profile(self, *a):
            return contextlib.nullcontext()

    saved = torch.rand, torch.bernoulli
    torch.rand, torch.bernoulli = rand, bernoulli
    try:
        merged = Algo().run(pool)
    finally:
        torch.rand, torch.bernoulli = saved
    assert state["draws"] == (P["steps"] + 1) * len(names), state["draws"]
    out = {k: v.detach().double() - base[k] for k, v in merged.state_dict().items()}
    return out, {"trajectory": torch.stack(trajectory)}


def concrete_adamerging(mods, spec, cfg, base, taus, images, heads, norm):
    P, T, names = spec["params"], len(taus), spec["names"]
    tasks = [f"task{t}" for t in range(T)]
    layer_wise = spec["layer_wise"]
    noise = {k: v.float() for k, v in st.load(spec["noise"])[0].items()}
    pretrained = Tower(cfg, base)
    order_hf = [n for n, _ in pretrained.named_parameters()]
    columns = [order_hf.index(n) for n in names]
    finetuned = {n: Tower(cfg, {k: base[k] + tau[k] for k in base}) for n, tau in zip(tasks, taus)}
    pool = types.SimpleNamespace(
        model_names=tasks,
        load_model=lambda name: pretrained if name == "_pretrained_" else finetuned[name])
    config = Config(batch_size=P["batch"], merge_dtype=None, optimizer="adam", lr=P["lr"],
                    base_lr=P["base_lr"], adamerging_lr=P["ada_lr"],
                    scaling_factor=P["lambda_init"], max_steps=P["steps"],
                    max_adamerging_steps=P["ada_steps"], save_interval=10 ** 9,
                    initial_logits=P["init"], temperature=P["temperature"],
                    eval_mask_type=P["eval_mask"], mask_checkpoint=None, clamp_weights=False,
                    tie_weights=True, strict=False)
    total = 2 * P["steps"] + P["ada_steps"]
    iters = {n: iter([(pixels(images, t, spec["batches"][s][t], norm), None)
                      for s in range(total)]) for t, n in enumerate(tasks)}
    compute_logits = mods["clip_task_wise_adamerging"].CLIPTaskWiseAdaMergingAlgorithm.compute_logits
    cam = mods["clip_concrete_adamerging"]
    algo_cls = cam.ConcreteLayerWiseAdaMergingForCLIP if layer_wise else \
        cam.ConcreteTaskWiseAdaMergingForCLIP
    state = {"draws": 0, "order": None, "model": None, "module": None}
    trajectory, inner, ada = [], [], []

    def lam():
        w = state["module"].merge_weight.detach().clone()
        return w[:, columns] if layer_wise else w.reshape(T, 1)

    def next_noise(shape):
        order, i = state["order"], state["draws"]
        step, k = divmod(i, len(order))
        if k == 0 and step > 0:  # z and λ as mask step `step` left them
            params = dict(state["model"].named_parameters())
            trajectory.append(torch.cat([params[n].detach().flatten() for n in names]))
            inner.append(lam())
        state["draws"] += 1
        u = noise[f"u{step + 1}/{order[k]}"]
        assert tuple(u.shape) == tuple(shape), (order[k], u.shape, shape)
        return u

    def rand(*shape, dtype=None, device=None, **kw):
        shape = tuple(shape[0]) if len(shape) == 1 and not isinstance(shape[0], int) else shape
        return next_noise(shape).to(dtype or torch.float32)

    def bernoulli(p, *a, **k):
        return (next_noise(tuple(p.shape)) < p).to(p.dtype)

    class Algo(algo_cls):
        def __init__(self):
            self.config, self.fabric = config, ConcreteFabric()
            self.is_debug_mode = False
            clip_setup(self, heads, tasks)

        def setup_models(self):
            module, mask_model = super().setup_models()
            state["model"], state["module"] = mask_model, module
            state["order"] = [n for n, _ in mask_model.named_parameters()]
            assert sorted(state["order"]) == sorted(names), "mask tensors ≠ the test's tensors"
            merge_weights = module.merge_weights

            def recording(*a, **k):  # in the AdaMerging phase: before every step, then the unload
                if state["draws"] == (P["steps"] + 1) * len(names):
                    ada.append(lam())
                return merge_weights(*a, **k)

            module.merge_weights = recording
            return module, mask_model

        def to_device(self, x):
            return x

        def log_hyperparams(self, *a, **k):
            pass

        def setup_zero_shot_classification_head(self):
            pass  # clip_setup set the heads

        def get_shuffled_test_loader_iter(self, task):
            return iters[task]

        def compute_logits(self, module, images, task):
            return compute_logits(self, module, (images, None), task)

        def profile(self, *a):
            return contextlib.nullcontext()

    saved = torch.rand, torch.bernoulli
    torch.rand, torch.bernoulli = rand, bernoulli
    try:
        merged = Algo().run(pool)
    finally:
        torch.rand, torch.bernoulli = saved
    assert state["draws"] == (P["steps"] + 1) * len(names), state["draws"]
    assert len(ada) == P["ada_steps"] + 1, len(ada)
    out = {k: v.detach().double() - base[k] for k, v in merged.state_dict().items()}
    return out, {"trajectory": torch.stack(trajectory), "inner_lambda": torch.stack(inner),
                 "ada_lambda": torch.stack(ada[1:])}


def main(spec):
    mods = setup()
    cfg, norm = spec["config"], spec["norm"]
    base = {k: v.double() for k, v in st.load(spec["base"])[0].items()}
    taus = [{k: v.double() for k, v in st.load(p)[0].items()} for p in spec["tasks"]]
    images = {k: v.float() for k, v in st.load(spec["images"])[0].items()}
    heads = {k: v.float() for k, v in st.load(spec["heads"])[0].items()}
    torch.set_default_dtype(torch.float32)
    method = spec["method"]
    if method in ("adamerging", "adamerging_task"):
        merged, extra = adamerging(mods, spec, cfg, base, taus, images, heads, norm)
    elif method == "regmean":
        merged, extra = regmean(mods, spec, cfg, base, taus, images, norm)
    elif method == "regmean_plusplus":
        merged, extra = regmean_plusplus(mods, spec, cfg, base, taus, images, norm)
    elif method == "fisher":
        merged, extra = fisher(mods, spec, cfg, base, taus, images, heads, norm)
    elif method == "fw_hard":
        merged, extra = fw_hard(mods, spec, cfg, base, taus, images, heads, norm)
    elif method == "fw_soft":
        merged, extra = fw_soft(mods, spec, cfg, base, taus, images, heads, norm)
    elif method == "concrete_ta":
        merged, extra = concrete_ta(setup_concrete(mods), spec, cfg, base, taus, images, heads,
                                    norm)
    elif method == "ada_svd":
        merged, extra = ada_svd(spec, cfg, base, taus, images, norm)
    elif method in ("concrete_adamerging", "concrete_adamerging_task"):
        merged, extra = concrete_adamerging(setup_concrete(mods), spec, cfg, base, taus, images,
                                            heads, norm)
    else:
        raise ValueError(f"no FusionBench run for {method}")
    out = {f"M.{k}": v.float().contiguous() for k, v in merged.items()}
    out.update({k: v.float().contiguous() for k, v in extra.items()})
    st.save(spec["out"], out)
