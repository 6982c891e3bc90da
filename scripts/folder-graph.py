#!/usr/bin/env python3
"""The dependencies between the folders of a Swift target, and whether they form a cycle.

A folder depends on another when one of its files names a type declared at the top level of a
file in the other (a class, struct, enum, protocol, actor or typealias; a nested type is reached
through its outer one). Comments and string literals are ignored. Prints one line per edge with the names
that make it, then the cycles; exits 1 when there is a cycle.

Usage: scripts/folder-graph.py [Sources/EdgeAgent]
"""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else "Sources/EdgeAgent"
declaration = re.compile(r"^(?:(?:public|internal|private|fileprivate|package|final|open|indirect)\s+)*"
                         r"(?:class|struct|enum|protocol|actor|typealias)\s+([A-Z][A-Za-z0-9_]*)", re.M)
identifier = re.compile(r"(?<![.\w])[A-Z][A-Za-z0-9_]*\b")


def strip(text):
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'"""(.*?)"""', '""', text, flags=re.S)
    text = re.sub(r'#?"(?:\\.|[^"\\\n])*"#?', '""', text)
    return re.sub(r"//[^\n]*", "", text)


files = {}
for directory, _, names in os.walk(root):
    for name in names:
        if name.endswith(".swift"):
            path = os.path.join(directory, name)
            relative = os.path.relpath(path, root)
            folder = relative.split(os.sep)[0] if os.sep in relative else "."
            files[path] = (folder, strip(open(path, encoding="utf-8").read()))

owner = {}
for path, (folder, text) in files.items():
    for name in declaration.findall(text):
        owner.setdefault(name, set()).add(folder)

edges = {}
for path, (folder, text) in files.items():
    for name in set(identifier.findall(text)):
        for other in owner.get(name, ()):
            if other != folder and folder not in owner[name]:
                edges.setdefault((folder, other), set()).add(name)

for (a, b), names in sorted(edges.items()):
    print(f"{a} -> {b}: {', '.join(sorted(names))}")

graph = {}
for a, b in edges:
    graph.setdefault(a, set()).add(b)
index, low, stack, on, cycles, counter = {}, {}, [], set(), [], [0]


def visit(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in graph.get(v, ()):
        if w not in index:
            visit(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        component = []
        while True:
            w = stack.pop()
            on.discard(w)
            component.append(w)
            if w == v:
                break
        if len(component) > 1:
            cycles.append(sorted(component))


for v in sorted(graph):
    if v not in index:
        visit(v)
for cycle in cycles:
    print("cycle: " + " <-> ".join(cycle))
sys.exit(1 if cycles else 0)
