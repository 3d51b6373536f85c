"""Recipes: a named sequence of operations with their parameters, checked before any work.

A recipe is a TOML or JSON file:

```toml
name = "shop white"

[output]              # optional: how batch writes results
format = "jpeg"       # png | tiff | jpeg | webp | same (the input's own format; default)
quality = 90          # JPEG/WebP quality (default 95)
suffix = ""           # appended to each output's file stem
background = "#ffffff"  # what transparency is flattened onto for JPEG

[[steps]]
op = "color-match"
white_balance = "grey-world"   # parameters inline ...

[[steps]]
op = "standardize"
[steps.params]                 # ... or in a params table
canvas_width = 2000
canvas_height = 2000
```

JSON: `{"name": ..., "output": {...}, "steps": [{"op": ..., "params": {...}}]}`.

Validation, before the first pixel is touched (`load_recipe`, `parse_recipe`, then
`check_recipe`): an unknown operation, an unknown or bad parameter (each
operation's ParamSchema), and each operation's own early check (Operation.check,
with the model manager: a model that is not installed, a reference file that does
not exist, parameters that contradict each other). Errors name the step.

File parameters (those an operation module lists in `PATH_PARAMS`, such as
color-match's `reference`) are resolved against the recipe file's folder. The
value "@reference" stands for a reference image given at run time: the
`reference` part of POST /v1/recipes/run, or `retouch-bridge batch --reference`.
"""

from bridge.recipes.recipe import (
    REFERENCE_PLACEHOLDER,
    OutputSpec,
    Recipe,
    Step,
    check_recipe,
    load_recipe,
    parse_recipe,
    recipe_from_dict,
)
from bridge.recipes.runner import flatten_result, run_recipe

__all__ = [
    "REFERENCE_PLACEHOLDER", "OutputSpec", "Recipe", "Step", "check_recipe", "flatten_result",
    "load_recipe", "parse_recipe", "recipe_from_dict", "run_recipe",
]
