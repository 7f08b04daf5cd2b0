"""Which of a notebook's variables are fitted models, and what data they were fitted on.

Nothing here imports a machine-learning library: a flavor is recognised from the
names of the classes in an object's MRO (``sklearn.base.BaseEstimator``,
``torch.nn.modules.module.Module``…), and only when that library is already in
``sys.modules`` (an object of a library the kernel never imported cannot exist).
scikit-learn's own ``check_is_fitted`` decides whether an estimator is fitted; it
is only called on an estimator, so scikit-learn is imported already.

Flavors, checked in this order (XGBoost's and LightGBM's scikit-learn classes are
estimators too, a Keras 3 model on the torch backend is a torch module): xgboost,
lightgbm, sklearn, keras, pytorch.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: Rows of the training data kept as the model's input example.
EXAMPLE_ROWS = 5

# flavor -> (library module, ((module prefix, class name), ...)) of the classes that make it
_FLAVORS: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = (
    ("xgboost", "xgboost", (("xgboost", "XGBModel"), ("xgboost", "Booster"))),
    ("lightgbm", "lightgbm", (("lightgbm", "LGBMModel"), ("lightgbm", "Booster"))),
    ("sklearn", "sklearn", (("sklearn", "BaseEstimator"),)),
    # Before PyTorch: a Keras 3 model on the torch backend is a torch Module too.
    ("keras", "keras", (("keras", "Model"),)),
    ("keras", "tensorflow", (("tensorflow", "Model"), ("keras", "Model"))),
    ("keras", "tf_keras", (("tf_keras", "Model"),)),
    ("pytorch", "torch", (("torch.nn.modules.module", "Module"),)),
)
_flavor_cache: dict[type, str | None] = {}


@dataclass
class Candidate:
    """A fitted model found under a top-level name."""

    name: str
    obj: Any
    flavor: str


def flavor_of(obj: Any) -> str | None:
    """The MLflow flavor an object is a model of (``sklearn``, ``pytorch``…), else None."""
    cls = type(obj)
    if cls in _flavor_cache:
        return _flavor_cache[cls]
    found = None
    mro = [((c.__module__ or ""), c.__name__) for c in getattr(cls, "__mro__", ())]
    for flavor, library, classes in _FLAVORS:
        if library not in sys.modules:
            continue
        if any(module.startswith(prefix) and name == wanted
               for module, name in mro for prefix, wanted in classes):
            found = flavor
            break
    if found == "pytorch" and any(module.startswith("keras") for module, _ in mro):
        found = None  # a Keras layer on the torch backend: part of a Keras model, not one
    if len(_flavor_cache) < 10000:  # classes made in a loop must not grow it forever
        _flavor_cache[cls] = found
    return found


def is_fitted(obj: Any, flavor: str) -> bool:
    """Has the model learnt anything? An estimator before ``fit``, a network without weights: no."""
    if flavor == "pytorch":
        return next(iter(obj.parameters()), None) is not None
    if flavor == "keras":
        return bool(getattr(obj, "built", False))
    if flavor in ("xgboost", "lightgbm") and type(obj).__name__ == "Booster":
        return True
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    try:
        check_is_fitted(obj)
    except NotFittedError:
        return False
    except Exception:  # noqa: BLE001 - an estimator check_is_fitted cannot judge: its own attributes say
        return any(k.endswith("_") and not k.startswith("__") for k in vars(obj))
    return True


def predicts(obj: Any, flavor: str) -> bool:
    """Can it serve predictions? (A fitted scaler is an estimator, not a model to log.)"""
    if flavor in ("sklearn", "xgboost", "lightgbm"):
        try:
            return callable(getattr(obj, "predict", None))
        except Exception:  # noqa: BLE001 - available_if raises for a search fitted without refit
            return False
    return True


def find_models(namespace: Mapping[str, Any], skip: Iterable[str] = ()) -> list[Candidate]:
    """The fitted models bound to top-level names: each object once (under its first name),
    none that is part of another one found (a pipeline's step, a network's layer)."""
    skipped = set(skip)
    found: list[Candidate] = []
    seen: set[int] = set()
    for name, obj in list(namespace.items()):
        if name.startswith("_") or name in skipped or id(obj) in seen or isinstance(obj, type):
            continue
        flavor = flavor_of(obj)
        if flavor is None:
            continue
        seen.add(id(obj))
        try:
            if is_fitted(obj, flavor) and predicts(obj, flavor):
                found.append(Candidate(name, obj, flavor))
        except Exception:  # noqa: BLE001 - an odd object is not a model, never an error
            continue
    inside = {part for c in found for part in _parts(c.obj, c.flavor)}
    return [c for c in found if id(c.obj) not in inside]


def _parts(obj: Any, flavor: str) -> set[int]:
    """Ids of the models nested in ``obj`` (not ``obj`` itself)."""
    try:
        if flavor == "pytorch":
            return {id(m) for m in obj.modules() if m is not obj}
        if flavor == "sklearn":
            return {id(v) for v in obj.get_params(deep=True).values() if v is not obj}
    except Exception:  # noqa: BLE001
        pass
    return set()


def input_example(model: Any, namespace: Mapping[str, Any]) -> Any:
    """A few rows of the data ``model`` was fitted on, found among the top-level variables.

    The columns it was fitted on (``feature_names_in_``) pick a DataFrame with exactly
    those columns; else its number of features (``n_features_in_``) picks a 2-D array
    that wide (or a DataFrame that wide, as an array: the model saw no column names).
    A name with ``train`` in it wins, then the most rows. None when nothing matches:
    the model is then logged without a signature.
    """
    names = getattr(model, "feature_names_in_", None)
    width = getattr(model, "n_features_in_", None)
    if names is None and not isinstance(width, int):
        return None
    wanted = None if names is None else [str(n) for n in names]
    pandas, numpy = sys.modules.get("pandas"), sys.modules.get("numpy")
    best: tuple[tuple[bool, bool, int], Any] | None = None
    for name, value in namespace.items():
        if name.startswith("_"):
            continue
        if pandas is not None and isinstance(value, pandas.DataFrame):
            columns = [str(c) for c in value.columns]
            matches = columns == wanted if wanted is not None else len(columns) == width
        elif numpy is not None and wanted is None and isinstance(value, numpy.ndarray):
            matches = value.ndim == 2 and value.shape[1] == width
        else:
            continue
        if not matches or len(value) == 0:
            continue
        rank = (wanted is not None or not hasattr(value, "columns"), "train" in name.lower(), len(value))
        if best is None or rank > best[0]:
            best = (rank, value)
    if best is None:
        return None
    value = best[1]
    if not hasattr(value, "columns"):
        return value[:EXAMPLE_ROWS].copy()
    rows = value.head(EXAMPLE_ROWS)
    return rows.copy() if wanted is not None else rows.to_numpy(copy=True)
