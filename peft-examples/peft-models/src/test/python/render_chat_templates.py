#!/usr/bin/python3
"""Writes the reference renders of the chat-template tests (src/test/resources/chat/expected).

Renders every template x message file x add_generation_prompt (and the variants of cases.json)
with jinja2 set up as Hugging Face transformers sets it up in
utils/chat_template_utils.py (_compile_jinja_template): an ImmutableSandboxedEnvironment with
trim_blocks, lstrip_blocks and the loopcontrols extension, tojson replaced by json.dumps
(ensure_ascii=False), and the globals raise_exception and strftime_now, here with the fixed date
of cases.json so that the files never change. The template and special tokens are read from a
model directory as transformers reads them. This script shares no code with the Java side.

Run from the project root with Debian's jinja2 (3.1.x):
    /usr/bin/python3 peft-examples/peft-models/src/test/python/render_chat_templates.py \
        [--fixtures ../shared/fixtures]
"""

import argparse
import json
import os
import sys
from datetime import datetime, timezone

import jinja2
from jinja2.ext import loopcontrols
from jinja2.sandbox import ImmutableSandboxedEnvironment

HERE = os.path.dirname(os.path.abspath(__file__))
RESOURCES = os.path.join(HERE, "..", "resources", "chat")
TOKEN_KEYS = ("bos_token", "eos_token", "unk_token", "pad_token")


def read_model_dir(path):
    """The template and special tokens of a model directory, as transformers loads them."""
    config_path = os.path.join(path, "tokenizer_config.json")
    config = {}
    if os.path.isfile(config_path):
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
    tokens = {}
    for key in TOKEN_KEYS:
        value = config.get(key)
        if isinstance(value, dict):
            value = value.get("content")
        if value is not None:
            tokens[key] = value
    jinja_path = os.path.join(path, "chat_template.jinja")
    if os.path.isfile(jinja_path):
        # a separate template file takes priority over the config's entry
        with open(jinja_path, encoding="utf-8") as f:
            return f.read(), tokens
    template = config.get("chat_template")
    if isinstance(template, list):
        template = {t["name"]: t["template"] for t in template}["default"]
    if template is None:
        raise SystemExit(path + " has no chat template")
    return template, tokens


def environment(now):
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(
            x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
            sort_keys=sort_keys)

    def strftime_now(fmt):
        return now.strftime(fmt)

    env = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def render(env, template, tokens, messages, add_generation_prompt, variables):
    kwargs = dict(tokens)
    kwargs.update(variables)
    return env.from_string(template).render(
        messages=messages, tools=kwargs.pop("tools", None), documents=None,
        add_generation_prompt=add_generation_prompt, **kwargs)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(text.encode("utf-8"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fixtures", default=os.path.join("..", "shared", "fixtures"))
    args = parser.parse_args()
    with open(os.path.join(RESOURCES, "cases.json"), encoding="utf-8") as f:
        cases = json.load(f)
    now = datetime.fromisoformat(cases["date"].replace("Z", "+00:00")).astimezone(timezone.utc)
    env = environment(now)
    out_dir = os.path.join(RESOURCES, "expected")
    runs = [(name, m, {}, m) for name in cases["templates"] for m in cases["messages"]]
    for variant in cases["variants"]:
        for name in variant["templates"]:
            runs.append((name, variant["messages"], variant["variables"], variant["name"]))
    count = 0
    for name, messages_name, variables, case in runs:
        where = cases["templates"][name]
        kind, _, rel = where.partition(":")
        base = args.fixtures if kind == "fixture" else os.path.join(RESOURCES, "templates")
        template, tokens = read_model_dir(os.path.join(base, rel))
        with open(os.path.join(RESOURCES, "messages", messages_name + ".json"),
                  encoding="utf-8") as f:
            messages = json.load(f)
        for gen in (False, True):
            stem = os.path.join(out_dir, name, case + (".gen" if gen else ".nogen"))
            try:
                text = render(env, template, tokens, messages, gen, variables)
                write(stem + ".txt", text)
            except jinja2.exceptions.TemplateError as e:
                write(stem + ".error.txt", str(e))
            count += 1
    # feature snippets: each jinja construct the Java side implements, rendered by jinja2
    with open(os.path.join(RESOURCES, "messages", cases["features"]["messages"] + ".json"),
              encoding="utf-8") as f:
        messages = json.load(f)
    features = os.path.join(RESOURCES, "features")
    for name in sorted(os.listdir(features)):
        if name.endswith(".jinja"):
            with open(os.path.join(features, name), encoding="utf-8") as f:
                template = f.read()
            text = render(env, template, {}, messages, False, cases["features"]["variables"])
            write(os.path.join(out_dir, "features", name[:-len(".jinja")] + ".txt"), text)
            count += 1
    readme = (
        "# Reference renders of the chat-template tests\n\n"
        "Written by `src/test/python/render_chat_templates.py` (see its docstring) with\n"
        "jinja2 " + jinja2.__version__ + " on Python " + sys.version.split()[0] + ", set up as\n"
        "transformers' `_compile_jinja_template` sets it up; `strftime_now` reads the fixed date\n"
        + cases["date"] + ".\n\n"
        "`<template>/<case>.gen.txt` is rendered with `add_generation_prompt=True`, `.nogen.txt`\n"
        "without; a `.error.txt` holds the message of a template that raised instead.\n"
        "`features/<name>.txt` is the render of `../features/<name>.jinja`, a snippet that\n"
        "exercises the jinja constructs templates use.\n"
        "Regenerate from the project root with\n\n"
        "    /usr/bin/python3 peft-examples/peft-models/src/test/python/render_chat_templates.py\n")
    write(os.path.join(out_dir, "README.md"), readme)
    print("wrote", count, "renders to", os.path.normpath(out_dir))


if __name__ == "__main__":
    main()
