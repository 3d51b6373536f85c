"""A Hugging Face repository (or a mirror of the Hub's HTTP API): its files, and which of
them a diffusers inpainting pipeline needs.

Three Hub endpoints are used, all plain HTTPS GETs through `download.py`:
  /api/models/{repo}/revision/{revision}         -> {"sha": commit} (a branch to a commit)
  /api/models/{repo}/tree/{commit}?recursive=true -> the files, pages linked by `Link: rel=next`;
      each {"type": "file", "path", "size", "oid": git blob id, "lfs": {"oid": sha256, ...}}
  /{repo}/resolve/{commit}/{path}                 -> the file's bytes (Range honoured)

Files are chosen from `model_index.json` (`select_files`): each component it names
(`unet`, `vae`, `text_encoder`, tokenizers, scheduler, ...) except the safety checker,
which the bridge never runs; in each, its configs and its safetensors weights, the
preferred variant (`*.fp16.safetensors`) where the repository has it, else the plain
ones. Pickled weights (.bin, .ckpt, ...) are never chosen: a component that has nothing
else is refused. ONNX/Flax copies, training leftovers and top-level checkpoints are
left out because they are not in a component folder or not a chosen kind.
"""

from __future__ import annotations

import os
import posixpath
import re
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bridge.models import download as dl

DEFAULT_ENDPOINT = "https://huggingface.co"
MODEL_INDEX = "model_index.json"
# Components the bridge's pipelines are given as None (bridge/diffusion/loader.py).
SKIPPED_COMPONENTS = frozenset({"safety_checker"})
# Non-weight files a component may need: configs, tokenizer vocabularies and merges,
# sentencepiece models.
CONFIG_SUFFIXES = (".json", ".txt", ".model")
COMMIT = re.compile(r"[0-9a-f]{40}")
_SHARD = re.compile(r"-\d{5}-of-\d{5}$")
_SAFETENSORS_INDEX = re.compile(
    r"[^.]+\.safetensors\.(?:index\.json|index\.([\w-]+)\.json|([\w-]+)\.index\.json)")
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".ckpt", ".pt", ".pth", ".pkl", ".pickle",
                    ".msgpack", ".h5", ".onnx", ".onnx_data", ".pb", ".gguf", ".npz", ".npy")


class HubError(dl.DownloadRefused):
    """The repository cannot be installed as it is (its listing, its files); final."""

    code = "hub_repository_unusable"


@dataclass(frozen=True)
class RepoFile:
    path: str                 # relative, "/"-separated, checked to stay inside the folder
    size: int
    sha256: str | None = None  # LFS files: the Hub's sha256 of the content
    git_oid: str | None = None  # other files: the git blob id (sha1 of "blob N\0" + bytes)


def endpoint_of(configured: str | None = None) -> str:
    """The registry entry's endpoint, else HF_ENDPOINT (mirrors), else the Hub."""
    value = configured or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT
    return value.rstrip("/")


def safe_relpath(path: object) -> str:
    """A repository path that cannot leave the folder it is written into."""
    if not isinstance(path, str) or not path or any(c in path for c in ("\\", "\0", ":")):
        raise HubError(f"the repository listing has an unusable path {path!r}")
    if path.startswith("/") or posixpath.normpath(path) != path or any(
            part in ("", ".", "..") for part in path.split("/")):
        raise HubError(f"the repository listing has an unsafe path {path!r}")
    return path


def _quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def resolve_commit(endpoint: str, repo: str, revision: str) -> str:
    """The commit a revision names (a 40-hex commit is taken as it is)."""
    if COMMIT.fullmatch(revision):
        return revision
    data, _ = dl.fetch_json(f"{endpoint}/api/models/{repo}/revision/{_quote(revision)}")
    sha = data.get("sha") if isinstance(data, dict) else None
    if not isinstance(sha, str) or not COMMIT.fullmatch(sha):
        raise HubError(f"{repo}@{revision}: the Hub did not name a commit for this revision")
    return sha


def _next_link(headers: Any) -> str | None:
    for link in (headers.get_all("Link") or []) if headers is not None else []:
        for part in link.split(","):
            url, _, params = part.partition(";")
            if re.search(r'rel="?next"?', params):
                return url.strip().strip("<>")
    return None


def _repo_file(item: dict[str, Any]) -> RepoFile:
    size, oid, lfs = item.get("size"), item.get("oid"), item.get("lfs")
    if not isinstance(size, int) or size < 0:
        raise HubError(f"the repository listing has no size for {item.get('path')!r}")
    if isinstance(lfs, dict):
        sha = lfs.get("oid") or lfs.get("sha256")
        if not (isinstance(sha, str) and re.fullmatch(r"[0-9a-f]{64}", sha)):
            raise HubError(f"the repository listing has no sha256 for {item.get('path')!r}")
        return RepoFile(safe_relpath(item.get("path")), size, sha256=sha)
    if not (isinstance(oid, str) and re.fullmatch(r"[0-9a-f]{40}", oid)):
        raise HubError(f"the repository listing has no checksum for {item.get('path')!r}")
    return RepoFile(safe_relpath(item.get("path")), size, git_oid=oid)


def list_files(endpoint: str, repo: str, commit: str) -> list[RepoFile]:
    """Every file of the repository at this commit (folders left out)."""
    url: str | None = f"{endpoint}/api/models/{repo}/tree/{_quote(commit)}?recursive=true"
    files: list[RepoFile] = []
    pages = 0
    while url is not None:
        pages += 1
        if pages > 1000:
            raise HubError(f"{repo}: the repository listing does not end")
        data, headers = dl.fetch_json(url)
        if not isinstance(data, list):
            raise HubError(f"{repo}: the repository listing is not a list of files")
        files += [_repo_file(item) for item in data
                  if isinstance(item, dict) and item.get("type") == "file"]
        nxt = _next_link(headers)
        url = urllib.parse.urljoin(url, nxt) if nxt else None
    return files


def file_url(endpoint: str, repo: str, commit: str, path: str) -> str:
    return f"{endpoint}/{repo}/resolve/{_quote(commit)}/{urllib.parse.quote(path)}"


# -- choosing the files ---------------------------------------------------------------------
def components_of(model_index: dict[str, Any]) -> list[str]:
    """The component folders model_index.json names with a class (null entries are absent)."""
    names = []
    for key, value in model_index.items():
        if key.startswith("_") or not isinstance(value, list | tuple) or len(value) != 2:
            continue
        if value[0] is None or value[1] is None or key in SKIPPED_COMPONENTS:
            continue
        names.append(key)
    return sorted(names)


def weights_variant(name: str) -> tuple[bool, str | None]:
    """(is safetensors weights or their shard index, variant): 'model.fp16.safetensors' ->
    (True, 'fp16'); 'model-00001-of-00002.safetensors' -> (True, None)."""
    if name.endswith(".safetensors"):
        stem = name[: -len(".safetensors")]
        _, _, rest = stem.partition(".")
        if not rest:  # plain, or a plain shard
            return True, None
        return True, _SHARD.sub("", rest) or None  # 'fp16-00001-of-00002' -> 'fp16'
    found = _SAFETENSORS_INDEX.fullmatch(name)
    if found:
        return True, found.group(1) or found.group(2)
    return False, None


def _is_weights(name: str) -> bool:
    low = name.lower()
    return low.endswith(_WEIGHT_SUFFIXES) or (".index." in low and low.endswith(".json") and any(
        s in low for s in (".bin.", ".msgpack.", ".h5.", ".pt.", ".ckpt.")))


def select_files(files: Iterable[RepoFile], model_index: dict[str, Any],
                 variant: str | None) -> tuple[list[RepoFile], dict[str, str | None]]:
    """The files the pipeline needs, and the weights variant chosen for each component."""
    by_component: dict[str, list[RepoFile]] = {}
    chosen: list[RepoFile] = []
    for f in files:
        folder, _, name = f.path.partition("/")
        if not name:
            if f.path == MODEL_INDEX:
                chosen.append(f)
            continue
        if "/" not in name and not name.startswith("."):
            # Deeper folders (onnx/unet/..., training runs) are never needed.
            by_component.setdefault(folder, []).append(f)
    if not any(f.path == MODEL_INDEX for f in chosen):
        raise HubError(f"the repository has no {MODEL_INDEX}: not a diffusers pipeline")
    variants: dict[str, str | None] = {}
    for component in components_of(model_index):
        present = {f.path.rsplit("/", 1)[1]: f for f in by_component.get(component, [])}
        if not present:
            raise HubError(f"the repository has no '{component}' folder, which its "
                           f"{MODEL_INDEX} names")
        kinds = {name: weights_variant(name) for name in present}
        available = {v for name, (is_st, v) in kinds.items()
                     if is_st and name.endswith(".safetensors")}
        pickled = sorted(n for n in present if _is_weights(n) and not kinds[n][0])
        if not available and pickled:
            raise HubError(f"'{component}' has no safetensors weights ({', '.join(pickled)}); "
                           "pickled weights are never loaded")
        # The preferred variant, else plain weights, else fp16, else any one variant.
        order = [variant, None, "fp16", *sorted(v for v in available if v)]
        pick = next((v for v in order if v in available), None)
        variants[component] = pick
        for name, f in present.items():
            is_st, v = kinds[name]
            if (is_st and v == pick) or (
                    not is_st and not _is_weights(name) and name.endswith(CONFIG_SUFFIXES)):
                chosen.append(f)
    return sorted(chosen, key=lambda f: f.path), variants
