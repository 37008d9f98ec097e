/* Per-node statistics: the counters the core updates, their JSON form for
 * hak_stats_json() and their lines in the HAKMEM_STATS=1 summary.  No stdio:
 * the summary runs at exit inside the allocator. */
#include <ck_pr.h>

#include "hk_numa_int.h"

struct hk_node_stats hk_node_stats[HK_MAX_NODES];

/* Relaxed loads: statistics, a report may be a moment out of date. */
static uint64_t get(const uint64_t *counter)
{
    return ck_pr_load_64((uint64_t *)counter);
}

static void field(struct hk_buf *f, const char *name, uint64_t v)
{
    hk_buf_str(f, name);
    hk_buf_u64(f, v);
}

size_t hk_numa_stats_json(char *buf, size_t len)
{
    struct hk_buf f = { buf, len, 0 };
    unsigned n = hk_numa_node_count();
    int synthetic = hk_numa_ready() && hk_topo.synthetic;

    hk_buf_str(&f, "[");
    for (unsigned i = 0; i < n; i++) {
        const struct hk_node_stats *s = &hk_node_stats[i];

        field(&f, i ? ",{\"node\":" : "{\"node\":", i);
        field(&f, ",\"os_index\":", hk_numa_node_os_index(i));
        field(&f, ",\"cpus\":", hk_numa_ready() ? hk_topo.cpus[i] : 0);
        hk_buf_str(&f, ",\"distance\":[");
        for (unsigned j = 0; j < n; j++)
            field(&f, j ? "," : "", hk_numa_distance(i, j));
        field(&f, "],\"superslabs\":", get(&s->superslabs));
        field(&f, ",\"bytes_committed\":", get(&s->bytes_committed));
        field(&f, ",\"bytes_in_use\":", get(&s->bytes_in_use));
        field(&f, ",\"cross_node_frees\":", get(&s->cross_node_frees));
        field(&f, ",\"rehomes\":", get(&s->rehomes));
        field(&f, ",\"bind_failures\":", hk_numa_bind_failures(i));
        hk_buf_str(&f, ",\"policy\":\"");
        hk_buf_str(&f, hk_numa_policy_name());
        hk_buf_str(&f, synthetic ? "\",\"synthetic\":true}" : "\",\"synthetic\":false}");
    }
    hk_buf_str(&f, "]");
    return hk_buf_finish(&f);
}

void hk_numa_stats_text(struct hk_buf *f)
{
    unsigned n = hk_numa_node_count();
    hk_buf_str(f, "hakmem: numa: policy ");
    hk_buf_str(f, hk_numa_policy_name());
    field(f, ", ", n);
    hk_buf_str(f, n == 1 ? " node" : " nodes");
    if (hk_numa_ready() && hk_topo.synthetic)
        hk_buf_str(f, " (synthetic topology: memory not bound)");
    else if (n == 1 || hk_numa_policy() == HK_NUMA_OFF)
        hk_buf_str(f, " (memory not bound)");
    hk_buf_str(f, "\n");
    for (unsigned i = 0; i < n; i++) {
        const struct hk_node_stats *s = &hk_node_stats[i];
        uint64_t failures = hk_numa_bind_failures(i);

        field(f, "hakmem: node ", i);
        field(f, " (os ", hk_numa_node_os_index(i));
        field(f, ", ", hk_numa_ready() ? hk_topo.cpus[i] : 0);
        field(f, " cpus): ", get(&s->superslabs));
        field(f, " superslabs, ", get(&s->bytes_committed) >> 10);
        field(f, " KiB committed, ", get(&s->bytes_in_use) >> 10);
        field(f, " KiB in use, ", get(&s->cross_node_frees));
        field(f, " cross-node frees, ", get(&s->rehomes));
        hk_buf_str(f, " rehomes");
        if (failures) {
            field(f, ", ", failures);
            hk_buf_str(f, " failed mbind calls");
        }
        hk_buf_str(f, "\n");
    }
}
