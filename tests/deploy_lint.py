#!/usr/bin/python3
"""deploy_lint.py - checks deploy/'s files that no server can test for us
(run by check_deploy with Debian's python3 and python3-yaml):

  deploy_lint.py ROOT DEPLOY DRAIN_S [CONFIG_OUT]

ROOT: the repository (the container build context); DEPLOY: the deploy
folder to check (a copy, in the tests that break one on purpose);
DRAIN_S: the longest drain of the worker, in seconds. CONFIG_OUT: where
to write the worker settings the ConfigMap holds (for --check-config).

  k8s/*.yaml     every document parses (yaml.safe_load_all) and has
                 apiVersion, kind, metadata.name; a StatefulSet with a
                 volumeClaimTemplate mounted by the worker, a liveness
                 probe on /healthz and a readiness probe on /readyz on the
                 container's port, a grace period longer than the drain;
                 the ConfigMap's swarm-medic.json is JSON
  Containerfile  every FROM is a Debian image, every COPY source of the
                 build context exists, every COPY --from names a stage
                 built before, the ENTRYPOINT is a file it copied
  systemd/*.service  Type=notify, a WatchdogSec, TimeoutStopSec longer
                 than the drain

Prints one line per problem and exits 1 if there is any, else 0.
"""
import glob
import json
import os
import re
import sys

import yaml

problems = []


def bad(where, what):
    problems.append("%s: %s" % (where, what))


def seconds(text):
    m = re.fullmatch(r"\s*(\d+)\s*(ms|s|min|m)?\s*", text or "")
    if not m:
        return None
    n, unit = int(m.group(1)), m.group(2) or "s"
    return n / 1000 if unit == "ms" else n * 60 if unit in ("min", "m") else n


def check_statefulset(path, doc, drain_s):
    spec = doc.get("spec", {})
    pod = spec.get("template", {}).get("spec", {})
    claims = [c.get("metadata", {}).get("name") for c in spec.get("volumeClaimTemplates", [])]
    if not claims:
        bad(path, "the StatefulSet has no volumeClaimTemplates (LMDB needs a volume)")
    grace = pod.get("terminationGracePeriodSeconds", 30)
    if not isinstance(grace, int) or grace <= drain_s:
        bad(path, "terminationGracePeriodSeconds %r is not longer than the %g s drain"
            % (grace, drain_s))
    containers = pod.get("containers", [])
    if not containers:
        bad(path, "the StatefulSet has no container")
    for c in containers:
        ports = {p.get("name"): p.get("containerPort") for p in c.get("ports", [])}
        mounts = [m.get("name") for m in c.get("volumeMounts", [])]
        if claims and not set(claims) & set(mounts):
            bad(path, "container %s mounts none of the claims %s" % (c.get("name"), claims))
        for probe, want in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            get = c.get(probe, {}).get("httpGet", {})
            if get.get("path") != want:
                bad(path, "container %s: %s is not an httpGet on %s" % (c.get("name"), probe, want))
            port = get.get("port")
            if port not in ports and port not in ports.values():
                bad(path, "container %s: %s port %r is not a container port"
                    % (c.get("name"), probe, port))


def check_k8s(deploy, drain_s, config_out):
    files = sorted(glob.glob(os.path.join(deploy, "k8s", "*.yaml")))
    if not files:
        bad(deploy, "no k8s/*.yaml")
    kinds = []
    for path in files:
        try:
            with open(path) as f:
                docs = [d for d in yaml.safe_load_all(f) if d is not None]
        except yaml.YAMLError as e:
            bad(path, "not YAML: %s" % str(e).replace("\n", " "))
            continue
        for doc in docs:
            if not isinstance(doc, dict) or not doc.get("apiVersion") or not doc.get("kind") \
                    or not doc.get("metadata", {}).get("name"):
                bad(path, "a document without apiVersion, kind or metadata.name")
                continue
            kinds.append(doc["kind"])
            if doc["kind"] == "StatefulSet":
                check_statefulset(path, doc, drain_s)
            if doc["kind"] == "ConfigMap" and "swarm-medic.json" in doc.get("data", {}):
                text = doc["data"]["swarm-medic.json"]
                try:
                    json.loads(text)
                except ValueError as e:
                    bad(path, "swarm-medic.json is not JSON: %s" % e)
                if config_out:
                    with open(config_out, "w") as f:
                        f.write(text)
    if "StatefulSet" not in kinds:
        bad(deploy, "no StatefulSet among the manifests")


def check_containerfile(root, deploy):
    path = os.path.join(deploy, "Containerfile")
    try:
        lines = open(path).read().replace("\\\n", " ").splitlines()
    except OSError as e:
        bad(path, str(e))
        return
    stages, copied = [], set()
    entry = None
    for n, line in enumerate(lines, 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        op = words[0].upper()
        if op == "FROM":
            image = words[1]
            if not (image.startswith("debian:") or image in stages):
                bad(path, "line %d: FROM %s is not a Debian image" % (n, image))
            if len(words) >= 4 and words[2].upper() == "AS":
                stages.append(words[3])
        elif op == "COPY":
            args = [w for w in words[1:] if not w.startswith("--")]
            flags = [w for w in words[1:] if w.startswith("--")]
            frm = [f.split("=", 1)[1] for f in flags if f.startswith("--from=")]
            *sources, dest = args
            copied.add(dest)
            if frm:
                if frm[0] not in stages:
                    bad(path, "line %d: COPY --from=%s names no earlier stage" % (n, frm[0]))
                continue
            for s in sources:
                if not os.path.exists(os.path.join(root, s)):
                    bad(path, "line %d: COPY %s: no such file in the build context" % (n, s))
        elif op == "ENTRYPOINT":
            try:
                entry = json.loads(line.split(None, 1)[1])[0]
            except (ValueError, IndexError):
                bad(path, "line %d: ENTRYPOINT is not a JSON list" % n)
    if not stages:
        bad(path, "no builder stage (FROM ... AS name)")
    if entry and entry not in copied:
        bad(path, "ENTRYPOINT %s is not a file the image copies" % entry)


def check_units(deploy, drain_s):
    units = sorted(glob.glob(os.path.join(deploy, "systemd", "*.service")))
    if not units:
        bad(deploy, "no systemd/*.service")
    for path in units:
        keys = {}
        for line in open(path):
            if "=" in line and not line.lstrip().startswith(("#", ";")):
                k, v = line.split("=", 1)
                keys.setdefault(k.strip(), v.strip())
        if keys.get("Type") != "notify":
            bad(path, "Type is %r, not notify" % keys.get("Type"))
        if not seconds(keys.get("WatchdogSec")):
            bad(path, "no WatchdogSec")
        stop = seconds(keys.get("TimeoutStopSec"))
        if stop is None or stop <= drain_s:
            bad(path, "TimeoutStopSec %r is not longer than the %g s drain"
                % (keys.get("TimeoutStopSec"), drain_s))


def main():
    if len(sys.argv) not in (4, 5):
        print(__doc__)
        return 2
    root, deploy, drain_s = sys.argv[1], sys.argv[2], float(sys.argv[3])
    check_k8s(deploy, drain_s, sys.argv[4] if len(sys.argv) == 5 else None)
    check_containerfile(root, deploy)
    check_units(deploy, drain_s)
    for p in problems:
        print(p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
