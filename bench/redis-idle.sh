#!/bin/sh
# Redis idle after a flush: how much of its data each allocator keeps
# resident while no client talks to it (README: Memory return).
#
# usage: redis-idle.sh HAKMEM_LIB [SECONDS [KEYS]]
# For each flush (ASYNC: redis's lazy-free thread frees the keys into the
# main thread's heap; SYNC: the main thread frees them) and each allocator
# (hakmem preloaded; redis's own jemalloc, which Debian links; mimalloc and
# glibc preloaded), a fresh redis-server is filled with KEYS keys of 100
# bytes (default 3,000,000: about 550 MB), flushed, and left alone; prints
# one line of its resident set (MB) at 1, 2, 5, 10, 20, 30, 60 and 120 s
# after the flush, up to SECONDS (default 60).  Needs redis-server and
# redis-cli (Debian: redis-server); exits 77, saying why, without them.
set -u
lib=${1:?usage: redis-idle.sh HAKMEM_LIB [SECONDS [KEYS]]}
secs=${2:-60} keys=${3:-3000000}
for tool in redis-server redis-cli; do
    command -v $tool >/dev/null || { echo "redis-idle: SKIP: $tool not found (Debian: redis-server)"; exit 77; }
done
[ -f "$lib" ] || { echo "redis-idle: $lib: no such library" >&2; exit 2; }
# A preload by soname is found by the dynamic loader, as the sweep does.
libc=$(ldconfig -p | awk '/libc\.so\.6 .*x86-64/ {print $NF; exit}')

rss_mb() { awk '/^VmRSS/ {print int($2 / 1024)}' /proc/$1/status; }

run() {  # name preload flush
    dir=$(mktemp -d) port=$((20000 + $$ % 20000))
    if [ "$2" = - ]; then
        redis-server --port $port --save '' --appendonly no --dir "$dir" --lazyfree-lazy-user-flush yes \
            --enable-debug-command yes --loglevel warning >/dev/null 2>&1 &
    else
        LD_PRELOAD=$2 redis-server --port $port --save '' --appendonly no --dir "$dir" \
            --lazyfree-lazy-user-flush yes --enable-debug-command yes --loglevel warning >/dev/null 2>&1 &
    fi
    pid=$!
    i=0
    until redis-cli -p $port ping >/dev/null 2>&1; do
        i=$((i + 1))
        [ $i -gt 100 ] && { echo "redis-idle: $1: redis-server did not start" >&2; kill $pid; exit 2; }
        sleep 0.1
    done
    redis-cli -p $port DEBUG POPULATE "$keys" key 100 >/dev/null
    line="$1 $3 loaded=$(rss_mb $pid)MB after:"
    redis-cli -p $port FLUSHALL "$3" >/dev/null
    last=0
    for t in 1 2 5 10 20 30 60 120; do
        [ $t -gt "$secs" ] && break
        sleep $((t - last))
        last=$t
        line="$line ${t}s=$(rss_mb $pid)"
    done
    echo "$line"
    kill $pid
    wait $pid 2>/dev/null
    rm -rf "$dir"
}

for flush in ASYNC SYNC; do
    run hakmem "$lib" $flush
    run jemalloc - $flush
    run mimalloc libmimalloc.so.2 $flush
    run glibc "$libc" $flush
done
