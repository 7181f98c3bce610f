"""`nlpsetup image`: an OCI image of a tool or an env, built with this machine's container engine,
proven by the env's smoke checks inside it before it is tagged; or, with --containerfile, the
build context alone. Options in, one core call, a result out."""

from __future__ import annotations

import click

from nlpsetup.cli import completion
from nlpsetup.cli.context import echo_json, with_context
from nlpsetup.cli.options import ARCH_CHOICE, json_option


def _size(n: int | None) -> str:
    return f"{n / 1e6:.0f} MB" if n is not None else "?"


def _text(out) -> str:
    s = out.spec
    head = f"{s.env}: {s.tool.get('name')} {s.tool.get('variant', '')}, Python {s.python}, torch {s.torch}" + (
        f" (needs NVIDIA driver >= {s.min_driver})" if s.min_driver else "")
    lines = [head, f"  base: {s.base.image}", f"  env:  {s.prefix} (on PATH)"]
    if out.context:
        lines += [f"wrote the build context {out.context} (Containerfile, bundle/ with {s.lock_digest[:19]}...)",
                  f"  build it: docker build -t {out.tag} {out.context}   (or podman build / buildah bud)"]
    if out.image_id:
        lines += out.checks
        lines.append(f"verified and tagged {out.tag} ({out.engine}, image {out.image_id.removeprefix('sha256:')[:12]}): "
                     f"image {_size(out.image_size_bytes)}, env {_size(out.env_size_bytes)}")
    if out.pushed:
        lines.append(f"pushed {out.tag}")
    if out.k8s_job:
        lines.append(f"wrote {out.k8s_job}: kubectl apply -f {out.k8s_job} runs the checks on a node of the cluster")
    return "\n".join(lines)


@click.command("image")
@click.argument("target", shell_complete=completion.tools_and_envs)
@click.option("-t", "--tag", help="The image's name and tag, e.g. registry.example/spacy:3.8 (set only once verified).")
@click.option("--engine", type=click.Choice(["docker", "podman", "buildah"]),
              help="Container engine (default: docker if its daemon answers, else podman, else buildah).")
@click.option("--base", help="Base image (default: the table's image for the Python); needs --python X.Y unless "
                             "it is the table's.")
@click.option("--python", "python", help="The env's Python (X.Y); picks the default base.")
@click.option("--compute", default="cpu", show_default=True,
              help="cpu, or a CUDA build such as cu126 (chosen as for a driver that runs it; no GPU needed here).")
@click.option("--arch", type=ARCH_CHOICE, help="Only this machine's architecture can be built and proven.")
@click.option("--push", is_flag=True, help="Push the verified image to the registry named in its tag.")
@click.option("--containerfile", "containerfile", type=click.Path(file_okay=False),
              help="Write the build context (Containerfile and bundle) to this new folder instead of building.")
@click.option("--k8s-job", "k8s_job", type=click.Path(dir_okay=False),
              help="Also write a Kubernetes Job that runs the env's checks with the image on the cluster.")
@click.option("--timeout", type=click.IntRange(1, 6 * 3600), default=3600, show_default=True,
              help="Time limit of each download and of the build, in seconds.")
@json_option
@with_context
def image_cmd(app, target, as_json, **options):
    """An OCI image holding TARGET (a tool, or an installed env) at /opt/nlpsetup/envs/NAME, built
    from its bundle with no index, proven by its smoke checks inside the image, then tagged.

    Exit 0 verified (and pushed), 1 a build, check or push failed, 2 bad input, 3 this machine
    cannot (no engine, another architecture, no base for that Python)."""
    from nlpsetup.facts.host import normalize_arch
    from nlpsetup.image import build as imagebuild

    if options["arch"]:
        options["arch"] = normalize_arch(options["arch"])
    req = imagebuild.Request(target=target, **options)
    if not as_json:
        click.echo(f"nlpsetup: image of {target} ({'build context' if req.containerfile else 'build and verify'})",
                   err=True)
    out = imagebuild.run(req, book=app.book(), host=app.host(), store=app.store(), home=app.home(checked=True))
    echo_json(out.to_dict()) if as_json else click.echo(_text(out))
