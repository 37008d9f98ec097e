#!/bin/sh
# Real programs print the same with LD_PRELOAD=libhakmem.so as without it:
# python3, perl, sort, gcc, clang, git, bash and tar, each on work that allocates a
# lot.  A program that is not installed is skipped (and said so).
top_builddir=${top_builddir:-.}
top_srcdir=${top_srcdir:-.}
data=$top_srcdir/tests/sys
test_name=preload.sh
. "$top_srcdir/tests/preloadable.sh"
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT
LIMIT=300 # seconds; a program still running then is hung

ran=0 failed=0

have() {
    command -v "$1" >/dev/null 2>&1 && return 0
    echo "skip: $1 is not installed"
    return 1
}

# same NAME CMD...: runs CMD twice, each in a fresh directory, without and
# with hakmem; it must succeed, and stdout, stderr and exit status match.
same() {
    name=$1
    shift
    start=$(date +%s)
    for mode in ref pre; do
        mkdir "$tmp/$name.$mode"
        if [ $mode = ref ]; then
            (cd "$tmp/$name.$mode" && env -u LD_PRELOAD timeout $LIMIT "$@") \
                >"$tmp/$name.$mode.out" 2>"$tmp/$name.$mode.err"
        else
            (cd "$tmp/$name.$mode" && LD_PRELOAD=$lib timeout $LIMIT "$@") \
                >"$tmp/$name.$mode.out" 2>"$tmp/$name.$mode.err"
        fi
        echo $? >"$tmp/$name.$mode.status"
    done
    ran=$((ran + 1))
    bad=
    [ "$(cat "$tmp/$name.ref.status")" -eq 0 ] || bad=" (fails without hakmem too)"
    for part in status out err; do
        cmp -s "$tmp/$name.ref.$part" "$tmp/$name.pre.$part" || bad="$bad $part"
    done
    if [ -z "$bad" ]; then
        echo "ok: $name ($(wc -l <"$tmp/$name.ref.out") lines, $(($(date +%s) - start)) s for both runs)"
        return
    fi
    failed=$((failed + 1))
    echo "FAIL: $name: differs in$bad (exit $(cat "$tmp/$name.ref.status") without, $(cat "$tmp/$name.pre.status") with hakmem)"
    for part in out err; do
        diff "$tmp/$name.ref.$part" "$tmp/$name.pre.$part" | head -n 20 | sed "s/^/  $part: /"
    done
}

if have python3; then
    # PYTHONMALLOC=malloc: every object through malloc, not Python's arenas.
    same python env PYTHONMALLOC=malloc python3 "$data/work.py"
fi

if have perl; then
    same perl perl "$data/work.pl"
fi

if have sort && have awk; then
    awk 'BEGIN { srand(7); for (i = 0; i < 2000000; i++)
        printf "%d w%x %s\n", int(rand() * 1e9), int(rand() * 65536), substr("abcdefghijklmnop", 1 + i % 16) }' \
        >"$tmp/lines"
    # A small buffer and two threads: sort spills and merges temporary files.
    same sort sh -c 'LC_ALL=C sort --parallel=2 -S 48M -T . -k2,2 -k1,1n "$1" | md5sum;
        LC_ALL=C sort -u -k3 "$1" | md5sum' sh "$tmp/lines"
fi

if have gcc; then
    # No -g: debug info names the (different) working directories.
    same gcc sh -c 'gcc -O2 -c -o prog.o "$1" && gcc -O2 -o prog prog.o && ./prog && md5sum prog.o' \
        sh "$data/prog.c"
fi

if have clang++; then
    same clang sh -c 'clang++ -O2 -c -o prog.o "$1" && clang++ -O2 -o prog prog.o && ./prog && md5sum prog.o' \
        sh "$data/prog.cpp"
fi

if have git; then
    cat >"$tmp/git.sh" <<'SCRIPT'
set -e
export HOME=$PWD GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=Ada GIT_COMMITTER_NAME=Ada \
    GIT_AUTHOR_EMAIL=ada@example.invalid GIT_COMMITTER_EMAIL=ada@example.invalid \
    GIT_AUTHOR_DATE='2024-01-01T00:00:00+0000' GIT_COMMITTER_DATE='2024-01-01T00:00:00+0000'
git init -q -b main repo
cd repo
for i in $(seq 1 25); do
    seq "$i" 7 3000 >"file$((i % 6)).txt"
    printf 'line %s\n' $(seq 1 "$((i * 40))") >log.txt
    git add -A
    git commit -q -m "commit $i"
done
git checkout -q -b side HEAD~6
seq 1 500 >side.txt
git add side.txt
git commit -q -m "side change"
git checkout -q main
git merge -q --no-edit side
git log --graph --stat --format='%H %s'
git diff HEAD~10 HEAD | md5sum
git gc -q
git fsck --strict --no-progress
git count-objects -v | grep -E '^(count|in-pack|packs)'
git rev-list --all --objects | wc -l
SCRIPT
    same git sh "$tmp/git.sh"
fi

if have bash; then
    same bash bash -c 'declare -A h; s=; for ((i = 0; i < 30000; i++)); do
            h[k$i]=$((i * i % 977)); s+=${i: -1}; done
        a=(); for k in "${!h[@]}"; do a+=("$k=${h[$k]}"); done
        printf "%s\n" "${a[@]}" | LC_ALL=C sort | md5sum
        echo ${#h[@]} ${#s}
        x=$(printf "%s," {1..20000}); IFS=,; set -- $x; echo ${#x} $#'
fi

if have tar; then
    mkdir "$tmp/tree"
    cp -R "$top_srcdir/tests" "$tmp/tree/src"
    for d in $(seq 1 40); do
        mkdir "$tmp/tree/d$d"
        seq 1 $((d * 500)) >"$tmp/tree/d$d/numbers"
        printf 'f%s\n' $(seq 1 "$d") >"$tmp/tree/d$d/names"
    done
    same tar sh -c 'tar -cf t.tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner \
            -C "$1" . && md5sum <t.tar && mkdir x && tar -xf t.tar -C x && diff -r "$1" x &&
            echo extracted identical' sh "$tmp/tree"
fi

# HAKMEM_STATS=json: one JSON line on stderr at exit, from hakmem itself.
# Only the interpreter is preloaded: not timeout, nor a launcher script
# (pyenv) that would print lines of their own.
if have python3; then
    ran=$((ran + 1))
    py=$(env -u LD_PRELOAD python3 -c 'import sys; print(sys.executable)')
    timeout $LIMIT env HAKMEM_STATS=json PYTHONMALLOC=malloc LD_PRELOAD="$lib" "$py" -c 'print(len([str(i) for i in range(100000)]))' \
        >"$tmp/stats.out" 2>"$tmp/stats.err"
    if [ "$(grep -c '^{"hakmem":' "$tmp/stats.err")" -eq 1 ] &&
        grep '^{"hakmem":' "$tmp/stats.err" >"$tmp/stats.json" &&
        env -u LD_PRELOAD "$py" -c '
import json, sys
s = json.load(open(sys.argv[1]))
assert s["malloc"] == -1 or s["malloc"] >= 100000, "malloc counter %s" % s["malloc"]
for k in ("mmap", "munmap", "madvise"):
    assert isinstance(s["os"][k], int), k
' "$tmp/stats.json"; then
        echo "ok: HAKMEM_STATS=json: $(cut -c 1-100 "$tmp/stats.json")..."
    else
        failed=$((failed + 1))
        echo "FAIL: HAKMEM_STATS=json: not exactly one valid {\"hakmem\": JSON line on stderr"
        sed 's/^/  stderr: /' "$tmp/stats.err" | head -n 10
    fi
fi

# HAKMEM_STATS=1: the report at exit is one write(2); written piecewise,
# the reports of processes that exit together (a pipe's two ends)
# interleaved mid-line.
if have strace && have seq; then
    ran=$((ran + 1))
    timeout $LIMIT strace -qq -e trace=write -e signal=none -o "$tmp/strace" \
        -E HAKMEM_STATS=1 -E LD_PRELOAD="$lib" seq 100000 >/dev/null 2>"$tmp/strace.err"
    writes=$(grep -c '^write(.*"hakmem' "$tmp/strace")
    if [ "$writes" -eq 1 ] && grep -q '^hakmem: node 0' "$tmp/strace.err"; then
        echo "ok: HAKMEM_STATS=1: the whole report in one write(2)"
    else
        failed=$((failed + 1))
        echo "FAIL: HAKMEM_STATS=1: the report took $writes write(2) calls, not 1"
        grep 'hakmem' "$tmp/strace" | head -n 5 | sed 's/^/  strace: /'
    fi
fi

# HAKMEM_STATS=1: the report never lands in a file of the program's own.
# bash's `exec 3>file` (and a program closing every descriptor above 2, then
# opening a file) puts a file on the number of hakmem's duplicate of
# stderr; the report goes to stderr then.
if have bash; then
    ran=$((ran + 1))
    timeout $LIMIT env HAKMEM_STATS=1 LD_PRELOAD="$lib" bash -c 'exec 3>"$1"; echo data >&3' bash "$tmp/fd3" \
        2>"$tmp/fd3.err"
    if [ "$(cat "$tmp/fd3")" = data ] && grep -q '^hakmem: statistics' "$tmp/fd3.err"; then
        echo "ok: HAKMEM_STATS=1: the report on stderr, not in the file on descriptor 3"
    else
        failed=$((failed + 1))
        echo "FAIL: HAKMEM_STATS=1: the program's file on descriptor 3 holds more than its own line, or no report on stderr"
        head -n 3 "$tmp/fd3" | sed 's/^/  file: /'
        head -n 3 "$tmp/fd3.err" | sed 's/^/  stderr: /'
    fi
fi

# HAKMEM_STATS=1 in a program started without stderr (`2>&-`): the first
# file it opens takes descriptor 2, and it is the program's data, not a
# stderr; the report is dropped rather than appended to it.
if have bash; then
    ran=$((ran + 1))
    timeout $LIMIT env HAKMEM_STATS=1 LD_PRELOAD="$lib" bash -c 'exec 2>"$1"; echo data >&2' bash "$tmp/fd2" 2>&-
    if [ "$(cat "$tmp/fd2")" = data ]; then
        echo "ok: HAKMEM_STATS=1 without stderr: the program's file on descriptor 2 holds its own line only"
    else
        failed=$((failed + 1))
        echo "FAIL: HAKMEM_STATS=1 without stderr: the report went into the program's file on descriptor 2"
        head -n 3 "$tmp/fd2" | sed 's/^/  file: /'
    fi
fi

# Without sysfs (some sandboxes and containers), a preloaded program says
# nothing of its own either: hwloc, asked for the topology there, printed a
# warning on stderr in every process.  Needs a private mount namespace.
if command -v unshare >/dev/null 2>&1 && unshare -m sh -c 'mount -t tmpfs none /sys' 2>/dev/null; then
    ran=$((ran + 1))
    unshare -m sh -c 'mount -t tmpfs none /sys && LD_PRELOAD="$1" ls /' sh "$lib" >"$tmp/nosys.out" 2>"$tmp/nosys.err"
    if [ $? -eq 0 ] && [ ! -s "$tmp/nosys.err" ] && [ -s "$tmp/nosys.out" ]; then
        echo "ok: no sysfs: ls prints its listing and nothing on stderr"
    else
        failed=$((failed + 1))
        echo "FAIL: no sysfs: ls failed or printed on stderr"
        head -n 3 "$tmp/nosys.err" | sed 's/^/  stderr: /'
    fi
else
    echo "skip: no sysfs: cannot mount over /sys in a private mount namespace (not root, or no unshare)"
fi

echo "preload: $ran ran, $failed failed"
[ "$ran" -gt 0 ] || exit 77
[ "$failed" -eq 0 ]
