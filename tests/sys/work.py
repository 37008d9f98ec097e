"""Allocation-heavy Python work with deterministic output, run by preload.sh
with and without hakmem preloaded: both runs must print the same lines.

Each section prints a digest of what it built, so a corrupted object shows
up as a changed line rather than only as a crash."""
import collections
import hashlib
import json
import random
import re
import sys
import threading


def digest(obj):
    return hashlib.sha256(repr(obj).encode()).hexdigest()[:16]


def report(name, obj):
    print(f"{name}: {digest(obj)}")


rng = random.Random(20240601)
SYLLABLES = ["ka", "lo", "mi", "ne", "su", "ta", "ri", "po", "an", "el", "or", "qu"]


def word():
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(1, 4)))


# Word counts over a generated text.
text = " ".join(word() for _ in range(100_000))
counts = collections.Counter(text.split())
top = counts.most_common(25)
report("word counts", top)
print("distinct words:", len(counts))

# Sorting: many keys, stable multi-key sorts, sorted dict views.
records = [(word(), rng.randint(0, 1000), rng.random()) for _ in range(50_000)]
by_name = sorted(records, key=lambda r: (r[0], r[1]))
by_value = sorted(records, key=lambda r: (-r[1], r[0], r[2]))
report("sorted by name", by_name[:100] + by_name[-100:])
report("sorted by value", by_value[::997])

# JSON round trips of nested structures of growing size.
def nested(depth, width):
    if depth == 0:
        return rng.choice([rng.randint(-10**9, 10**9), word(), rng.random() > 0.5, None])
    if depth % 2:
        return {f"{word()}{i}": nested(depth - 1, width) for i in range(width)}
    return [nested(depth - 1, width) for _ in range(width)]


for depth, width in [(3, 10), (4, 8), (5, 6), (6, 5)]:
    doc = nested(depth, width)
    s = json.dumps(doc, sort_keys=True)
    back = json.loads(s)
    assert back == doc, "json round trip changed the document"
    again = json.dumps(back, sort_keys=True, indent=1)
    report(f"json {depth}x{width}", (len(s), s[:200], len(again)))

# Big comprehensions, sets and dict churn.
squares = [i * i for i in range(500_000)]
evens = {x for x in squares if x % 2 == 0}
table = {i: str(i) * (i % 7 + 1) for i in range(150_000)}
for i in range(0, 150_000, 3):
    del table[i]
for i in range(150_000, 200_000):
    table[i] = [i] * (i % 5)
print("squares:", sum(squares) % 1_000_000_007, len(evens), len(table))
report("table sample", [table.get(i) for i in range(0, 200_000, 997)])

# String building: joins, repeated concatenation, formatting, slicing.
parts = []
for i in range(100_000):
    parts.append(f"{i:08x}-{word()}")
joined = ",".join(parts)
acc = ""
for p in parts[:20_000]:
    acc += p[::-1]
print("joined length:", len(joined), "acc length:", len(acc))
report("joined", joined[-500:])
report("acc", acc[:500])
upper = joined.upper().replace("KA", "<ka>").split(",")
report("upper", upper[::5000])

# Regular expressions.
found = re.findall(r"([0-9a-f]{8})-(ka|lo)(\w*)", joined)
report("regex", (len(found), found[:50]))
subbed = re.sub(r"(\d+)", lambda m: str(int(m.group(1)) * 3), joined[:200_000])
report("regex sub", subbed[-300:])


# Recursion: deep trees built and folded.
def build(n):
    if n <= 1:
        return (n,)
    return (n, build(n // 2), build(n - n // 2 - 1))


def fold(t):
    return t[0] + sum(fold(c) for c in t[1:])


sys.setrecursionlimit(10_000)
tree = build(100_000)
print("tree fold:", fold(tree))


def ackermann(m, n):
    if m == 0:
        return n + 1
    if n == 0:
        return ackermann(m - 1, 1)
    return ackermann(m - 1, ackermann(m, n - 1))


print("ackermann(2, 300):", ackermann(2, 300))

# Objects with attributes, and bytes/bytearray growth.
class Node:
    __slots__ = ("key", "children", "payload")

    def __init__(self, key):
        self.key = key
        self.children = []
        self.payload = bytes(key % 251 for _ in range(key % 64))


nodes = [Node(i) for i in range(50_000)]
for i, n in enumerate(nodes[1:], 1):
    nodes[(i * 7919) % 1_000_003 % i].children.append(n)
print("fanout:", max(len(n.children) for n in nodes), sum(len(n.payload) for n in nodes))
buf = bytearray()
for i in range(50_000):
    buf += i.to_bytes(4, "little") * (i % 3 + 1)
report("bytearray", hashlib.sha256(buf).hexdigest())

# Threads allocating at once; results combined in a fixed order.
results = [None] * 4


def worker(k):
    local_rng = random.Random(k)
    d = {}
    for i in range(30_000):
        key = "".join(local_rng.choice(SYLLABLES) for _ in range(3))
        d.setdefault(key, []).append(i)
        if i % 7 == 0:
            d.pop(key, None)
    results[k] = sorted((key, len(v), sum(v)) for key, v in d.items())


threads = [threading.Thread(target=worker, args=(k,)) for k in range(4)]
for t in threads:
    t.start()
for t in threads:
    t.join()
report("threads", results)
print("done")
