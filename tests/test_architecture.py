"""The house rules of the code base, checked: one direction of data flow, defaults in one place,
short functions, a clean lint."""

import ast
import copy
import inspect
from pathlib import Path

import pytest
import yaml

from matgen.config import validate_config
from matgen.errors import InputError

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "matgen"
SCHEMA = ROOT / "config/schema.yaml"


def _functions(path: Path):
    tree = ast.parse(path.read_text())
    return [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]


def _imported_modules(path: Path) -> set[str]:
    """Absolute names of the matgen modules ``path`` imports (relative imports resolved)."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names.add(".".join(base + ([node.module] if node.module else [])))
            elif node.module:
                names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    return {n for n in names if n.startswith("matgen")}


def test_no_function_is_longer_than_120_lines():
    long = [
        f"{p.relative_to(ROOT)}:{f.name} ({f.end_lineno - f.lineno + 1} lines)"
        for p in PACKAGE.rglob("*.py")
        for f in _functions(p)
        if f.end_lineno - f.lineno + 1 > 120
    ]
    assert long == []


def test_training_code_defines_no_inference():
    """Loading a trained model and applying it lives in matgen.inference, not matgen.train."""
    applying = ("load_", "generate", "translate", "segment", "judge", "detect", "latents_from")
    found = [
        f"{p.name}:{f.name}"
        for p in (PACKAGE / "train").glob("*.py")
        for f in ast.parse(p.read_text()).body  # module-level functions, not methods
        if isinstance(f, ast.FunctionDef) and f.name.startswith(applying)
    ]
    assert found == []
    # stages call trainers; nothing else (figures, metrics, the command line) needs them
    importers = {
        str(p.relative_to(PACKAGE))
        for p in PACKAGE.rglob("*.py")
        if "train" not in p.parts
        and any(m.startswith("matgen.train") for m in _imported_modules(p))
    }
    assert importers <= {"pipeline/segmentation.py"}


def test_figures_read_files_and_compute_nothing():
    """A figure reads the tables and arrays its stages wrote, and draws: it imports no stage,
    model, training, metric or segmentation code, only readers."""
    computing = (
        "matgen.pipeline",
        "matgen.train",
        "matgen.inference",
        "matgen.models",
        "matgen.metrics",
        "matgen.synth",
        "matgen.data.threshold",
        "matgen.data.ada",
    )
    for path in (PACKAGE / "figures").glob("*.py"):
        bad = {m for m in _imported_modules(path) if m.startswith(computing)}
        assert not bad, f"{path.name} imports {bad}"


def test_schema_fills_every_default_and_the_embedded_config_validates():
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    filled = validate_config(copy.deepcopy(config), SCHEMA)
    assert filled["porous"]["stylegan2"]["gpus"] == 0
    assert filled["porous"]["stylegan2"]["ada_target"] == 0.6
    assert filled["porous"]["compare"]["seed"] == 0
    assert filled["stem"]["tile"]["paired"] == ""
    # a key the user set is kept; an absent one gets the schema's default, nested too
    del config["porous"]["translate"]
    config["porous"]["cyclegan"]["lr"] = 1e-3
    del config["porous"]["cyclegan"]["pool_size"]
    filled = validate_config(config, SCHEMA)
    assert filled["porous"]["translate"] == {
        "domain": "",
        "batch_size": 64,
        "real_only_ablation": False,
    }
    assert filled["porous"]["cyclegan"]["lr"] == 1e-3
    assert filled["porous"]["cyclegan"]["pool_size"] == 50


def test_schema_defaults_agree_with_the_functions_signatures():
    """Library functions keep keyword defaults for notebook users; they must be the schema's,
    for every config section that feeds a function."""
    from matgen.data.ingest import ingest_domain
    from matgen.pipeline import polysilicon, porous, segmentation, stem
    from matgen.synth.polysilicon import simulate_polysilicon
    from matgen.synth.segmentation import simulate_segmentation
    from matgen.synth.stem import simulate_stem
    from matgen.train.conditional import train_cgan, train_evaluator, train_vae
    from matgen.train.cyclegan import train_cyclegan
    from matgen.train.detector import train_vacancy_detector
    from matgen.train.segmentation import train_pixelcnn, train_segmenter, train_vqvae
    from matgen.train.stylegan2 import train_stylegan2

    sections = {
        ("porous", "stylegan2"): [train_stylegan2], ("porous", "sample"): [porous.sample_stylegan2],
        ("porous", "translate"): [porous.translate_microct],
        ("porous", "cyclegan"): [train_cyclegan],
        ("porous", "compare"): [porous.compare_morphology],
        ("polysilicon", "ingest"): [ingest_domain],
        ("polysilicon", "simulate"): [simulate_polysilicon],
        ("polysilicon", "vae"): [train_vae], ("polysilicon", "gan"): [train_cgan],
        ("polysilicon", "evaluator"): [train_evaluator],
        ("polysilicon", "traversal"): [polysilicon.latent_traversal],
        ("stem", "simulate"): [simulate_stem], ("stem", "cyclegan"): [train_cyclegan],
        ("stem", "translate"): [stem.translate_simulation],
        ("stem", "detector"): [train_vacancy_detector], ("stem", "detect"): [stem.detect_in_stack],
        ("stem", "score"): [stem.score_detections],
        ("segmentation", "simulate"): [simulate_segmentation],
        ("segmentation", "vqvae"): [segmentation.fit_vqvae, train_vqvae],
        ("segmentation", "pixelcnn"): [segmentation.fit_pixelcnn, train_pixelcnn],
        ("segmentation", "sample"): [segmentation.sample_pairs],
        ("segmentation", "unet"): [segmentation.train_mix, train_segmenter],
    }  # fmt: skip
    schema = yaml.safe_load(SCHEMA.read_text())["properties"]
    checked, differ = 0, []
    for (study, section), functions in sections.items():
        props = schema[study]["properties"][section]["properties"]
        defaults = {}
        for function in reversed(functions):  # the stage's own default wins
            defaults.update({k: v.default for k, v in inspect.signature(function).parameters.items()
                             if v.default is not inspect.Parameter.empty})  # fmt: skip
        for key, sub in props.items():
            if "default" in sub and key in defaults and defaults[key] is not None:
                checked += 1
                wanted = defaults[key]
                wanted = list(wanted) if isinstance(wanted, tuple) else wanted
                if sub["default"] != wanted:
                    differ.append(f"{study}.{section}.{key}: schema {sub['default']!r}, "
                                  f"function {wanted!r}")  # fmt: skip
    assert differ == [] and checked > 100


def test_translating_a_domain_needs_the_cyclegan_settings():
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    del config["porous"]["cyclegan"]
    with pytest.raises(InputError, match="cyclegan"):
        validate_config(config, SCHEMA)
    config["porous"]["translate"]["domain"] = ""
    validate_config(config, SCHEMA)


def test_public_metrics_document_parameters_and_returns():
    """scikit-image style: every public metric says what goes in and comes out (shapes, units)."""
    missing = []
    for path in (PACKAGE / "metrics").glob("*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                doc = ast.get_docstring(node) or ""
                if "Parameters\n----------" not in doc or "Returns\n-------" not in doc:
                    missing.append(f"{path.name}:{node.name}")
    assert missing == []
