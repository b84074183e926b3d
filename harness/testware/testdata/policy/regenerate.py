# Regenerates the bad-*.yaml and exempt.yaml fixtures from good.yaml, each by one change.
# Run from this directory: python3 regenerate.py
import yaml, copy, sys
docs = [d for d in yaml.safe_load_all(open("good.yaml")) if d]
def find(kind, name):
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)
def dump(fname, ds, note):
    with open(fname, "w") as f:
        f.write(f"# Generated from good.yaml by one change: {note}\n")
        for d in ds:
            src = f"demo/templates/{d['kind'].lower()}.yaml"
            f.write(f"---\n# Source: {src}\n")
            yaml.safe_dump(d, f, sort_keys=False)
def variant(fname, note, change):
    global docs
    saved = docs
    docs = copy.deepcopy(saved)
    change()
    dump(fname, docs, note)
    docs = saved
dep = lambda: find("Deployment", "demo")
def labels():
    d = dep(); d["metadata"]["labels"] = dict(d["metadata"]["labels"]); d["metadata"]["labels"]["app.kubernetes.io/instance"] = "other"; d["metadata"]["labels"]["helm.sh/chart"] = "demo-0.0.1"
variant("bad-labels.yaml", "wrong instance and chart labels on the Deployment", labels)
def image():
    p = dep()["spec"]["template"]["spec"]; p["containers"][0]["image"] = "localhost/demo:latest"; p["initContainers"][0]["image"] = "busybox"
variant("bad-image.yaml", "latest and untagged images", image)
def res():
    c = dep()["spec"]["template"]["spec"]["containers"][0]; c["resources"] = {"requests": {"cpu": "10m", "memory": "16Mi"}}
variant("bad-resources.yaml", "no limits on the web container", res)
def probes():
    del dep()["spec"]["template"]["spec"]["containers"][0]["livenessProbe"]
variant("bad-probes.yaml", "no liveness probe on the web container", probes)
def sec():
    p = dep()["spec"]["template"]["spec"]; del p["securityContext"]; p["containers"][0]["securityContext"] = {"privileged": True}
variant("bad-security.yaml", "root, escalation and privileged web container", sec)
def svc():
    s = find("Service", "demo"); s["spec"]["selector"]["app.kubernetes.io/name"] = "dmeo"
    m = copy.deepcopy(find("Service", "demo")); m["metadata"]["name"] = "demo-metrics"; m["spec"]["selector"]["app.kubernetes.io/name"] = "demo"; m["spec"]["ports"] = [{"name": "metrics", "port": 9090, "targetPort": "metrics"}]
    dep()["spec"]["template"]["spec"]["containers"][0]["ports"] = [{"name": "http", "containerPort": 8080}]
    s["spec"]["ports"] = [s["spec"]["ports"][0]]
    docs.append(m)
variant("bad-service.yaml", "a selector typo, and a target port no container has", svc)
def refs():
    global docs
    docs = [d for d in docs if d["kind"] not in ("Secret", "PersistentVolumeClaim")]
    c = dep()["spec"]["template"]["spec"]["containers"][0]; c["env"][0]["valueFrom"]["configMapKeyRef"]["key"] = "mode"
variant("bad-references.yaml", "Secret and PVC missing, a ConfigMap key misspelt", refs)
def sched():
    p = dep()["spec"]["template"]["spec"]; del p["nodeSelector"]; del p["tolerations"]
variant("bad-scheduling.yaml", "no nodeSelector or tolerations on the Deployment", sched)
def storage():
    del find("StatefulSet", "demo-db")["spec"]["volumeClaimTemplates"][0]["spec"]["storageClassName"]
    pvc = copy.deepcopy(find("PersistentVolumeClaim", "demo-data")); pvc["metadata"]["name"] = "demo-cache"; pvc["spec"]["storageClassName"] = "standard"; docs.append(pvc)
variant("bad-storage.yaml", "a claim template without and a PVC with another storage class", storage)
def exempt():
    global docs
    a = dep(); a["metadata"]["annotations"] = {"policy.testware.io/exempt-security-context": "InfluxDB 1.6 from Debian needs root to chown its data dir", "policy.testware.io/external-refs": "Secret/site-credentials"}
    p = a["spec"]["template"]["spec"]; del p["securityContext"]
    p["containers"][0]["env"].append({"name": "SITE", "valueFrom": {"secretKeyRef": {"name": "site-credentials", "key": "token"}}})
    b = copy.deepcopy(a); b["metadata"]["name"] = "no-reason"; b["metadata"]["annotations"] = {"policy.testware.io/exempt-security-context": " "}
    b["spec"]["template"]["spec"]["containers"][0]["env"].pop()
    docs.append(b)
variant("exempt.yaml", "security exemptions with and without a reason, an external Secret", exempt)
def api_removed():
    dep()["apiVersion"] = "extensions/v1beta1"
variant("bad-api-removed.yaml", "the Deployment in extensions/v1beta1 (removed in 1.16)", api_removed)
def api_unknown():
    dep()["apiVersion"] = "apps/v2"
variant("bad-api-unknown.yaml", "the Deployment in apps/v2 (no such version)", api_unknown)
def not_taken():
    for d in docs:
        spec = d.get("spec", {}).get("template", {}).get("spec")
        if spec is not None:
            spec.pop("nodeSelector", None); spec.pop("tolerations", None)
    for d in docs:
        for t in d.get("spec", {}).get("volumeClaimTemplates", []):
            t["spec"].pop("storageClassName", None)
        if d["kind"] == "PersistentVolumeClaim":
            d["spec"].pop("storageClassName", None)
variant("keys-not-taken.yaml", "no pod takes global.nodeSelector or global.tolerations, no claim global.storageClass", not_taken)
