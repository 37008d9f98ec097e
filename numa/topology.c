/* NUMA topology: read once with hwloc, kept as plain tables.
 *
 * hwloc allocates freely while loading (served by hakmem, which is usable by
 * the time the core calls hk_numa_init), so it is used only here; afterwards
 * the topology object is destroyed and the slow paths read static tables. */
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <dlfcn.h>

#include <ck_pr.h>
#include <hwloc.h>
#include <hwloc/distances.h>

#include "hk_numa_int.h"
#include "hk_error.h"

enum { IDLE, LOADING, READY };

/* Before READY every reader sees one node, 0, and binds nothing. */
struct hk_topo hk_topo = { .nodes = 1, .distance = { { 10 } } };
static unsigned state = IDLE;

int hk_numa_ready(void)
{
    unsigned s = ck_pr_load_uint(&state);
    /* Acquire: pairs with the release in hk_numa_init(), so a reader that
     * sees READY also sees the tables written before it. */
    ck_pr_fence_acquire();
    return s == READY;
}

/* hwloc is opened with dlopen, only when it is needed (a multi-node kernel or
 * HAKMEM_TOPOLOGY): linked in, it and the libraries it pulls (libm, libudev)
 * cost every process ~0.5 MB of RSS on the single-node machines that never
 * call it.  The functions used, resolved by name (hwloc 2.x ABI). */
static struct {
    int (*topology_init)(hwloc_topology_t *);
    int (*topology_set_xml)(hwloc_topology_t, const char *);
    int (*topology_set_synthetic)(hwloc_topology_t, const char *);
    int (*topology_load)(hwloc_topology_t);
    void (*topology_destroy)(hwloc_topology_t);
    int (*topology_is_thissystem)(hwloc_topology_t);
    int (*get_type_depth)(hwloc_topology_t, hwloc_obj_type_t);
    unsigned (*get_nbobjs_by_depth)(hwloc_topology_t, int);
    hwloc_obj_t (*get_obj_by_depth)(hwloc_topology_t, int, unsigned);
    int (*bitmap_first)(hwloc_const_bitmap_t);
    int (*bitmap_next)(hwloc_const_bitmap_t, int);
    int (*distances_get_by_type)(hwloc_topology_t, hwloc_obj_type_t, unsigned *, struct hwloc_distances_s **,
                                 unsigned long, unsigned long);
    void (*distances_release)(hwloc_topology_t, struct hwloc_distances_s *);
} hw;

static int hwloc_open(void)
{
    static const struct { const char *name; size_t off; } syms[] = {
#define SYM(f) { "hwloc_" #f, offsetof(__typeof__(hw), f) }
        SYM(topology_init), SYM(topology_set_xml), SYM(topology_set_synthetic), SYM(topology_load),
        SYM(topology_destroy), SYM(topology_is_thissystem), SYM(get_type_depth), SYM(get_nbobjs_by_depth),
        SYM(get_obj_by_depth), SYM(bitmap_first), SYM(bitmap_next), SYM(distances_get_by_type),
        SYM(distances_release),
#undef SYM
    };
    if (hw.topology_init != NULL)
        return 0;
    void *lib = dlopen("libhwloc.so.15", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL)
        lib = dlopen("libhwloc.so", RTLD_NOW | RTLD_LOCAL);
    if (lib == NULL) {
        hk_message("cannot load hwloc (libhwloc.so.15, Debian: libhwloc15): ", "one NUMA node assumed", "", "");
        return -1;
    }
    for (size_t i = 0; i < sizeof syms / sizeof syms[0]; i++) {
        void *f = dlsym(lib, syms[i].name);
        if (f == NULL) {
            hk_message("hwloc lacks ", syms[i].name, ": one NUMA node assumed", "");
            memset(&hw, 0, sizeof hw);
            return -1;
        }
        memcpy((char *)&hw + syms[i].off, &f, sizeof f);
    }
    return 0;
}

/* desc: NULL for this machine, else an XML file path or a synthetic string. */
static int open_topology(hwloc_topology_t *t, const char *desc, int xml)
{
    if (hwloc_open() != 0 || hw.topology_init(t))
        return -1;
    if ((desc && (xml ? hw.topology_set_xml(*t, desc)
                      : hw.topology_set_synthetic(*t, desc))) ||
        hw.topology_load(*t)) {
        hw.topology_destroy(*t);
        return -1;
    }
    return 0;
}

static void fill_distances(hwloc_topology_t t, unsigned n)
{
    struct hwloc_distances_s *d;
    unsigned nr = 1;

    /* Without a latency matrix (synthetic topologies, machines without an
     * ACPI SLIT): the conventional 10 local / 20 remote. */
    for (unsigned i = 0; i < n; i++)
        for (unsigned j = 0; j < n; j++)
            hk_topo.distance[i][j] = i == j ? 10 : 20;
    if (hw.distances_get_by_type(t, HWLOC_OBJ_NUMANODE, &nr, &d,
                                    HWLOC_DISTANCES_KIND_MEANS_LATENCY, 0) || nr < 1)
        return;
    for (unsigned i = 0; i < d->nbobjs; i++)
        for (unsigned j = 0; j < d->nbobjs; j++) {
            unsigned a = d->objs[i]->logical_index, b = d->objs[j]->logical_index;
            uint64_t v = d->values[i * d->nbobjs + j];
            if (a < n && b < n)
                hk_topo.distance[a][b] = (uint8_t)(v > 255 ? 255 : v);  /* SLIT values are 8-bit */
        }
    hw.distances_release(t, d);
}

static void fill(hwloc_topology_t t)
{
    int depth = hw.get_type_depth(t, HWLOC_OBJ_NUMANODE);  /* a virtual depth for memory objects */
    int count = depth == HWLOC_TYPE_DEPTH_UNKNOWN ? 0 : (int)hw.get_nbobjs_by_depth(t, depth);
    unsigned n = count < 1 ? 1 : (unsigned)count;

    if (n > HK_MAX_NODES) {
        hk_message("more NUMA nodes than HK_MAX_NODES: ", "the first 64 are used", "", "");
        n = HK_MAX_NODES;
    }
    /* 0xff = not seen yet: a CPU listed by several nodes (memory-only or
     * high-bandwidth nodes sharing a cpuset) belongs to the first. */
    memset(hk_topo.cpu_node, 0xff, sizeof hk_topo.cpu_node);
    for (unsigned i = 0; i < n; i++) {
        hwloc_obj_t node = hw.get_obj_by_depth(t, depth, i);
        unsigned cpus = 0;
        int cpu;

        hk_topo.os_index[i] = node ? node->os_index : 0;
        if (node && node->cpuset) {
            for (cpu = hw.bitmap_first(node->cpuset); cpu != -1; cpu = hw.bitmap_next(node->cpuset, cpu)) {
                cpus++;
                if (cpu < HK_MAX_CPUS && hk_topo.cpu_node[cpu] == 0xff)
                    hk_topo.cpu_node[cpu] = (uint8_t)i;
            }
        }
        hk_topo.cpus[i] = cpus;
    }
    for (unsigned c = 0; c < HK_MAX_CPUS; c++)
        if (hk_topo.cpu_node[c] == 0xff)
            hk_topo.cpu_node[c] = 0;
    fill_distances(t, n);
    hk_topo.nodes = n;
    /* XML and synthetic topologies describe another machine: binding this
     * process's memory to their node numbers would be meaningless. */
    hk_topo.synthetic = !hw.topology_is_thissystem(t);
}

/* The kernel's node directories: when there is only one, hwloc is not
 * consulted at all.  Loading it would dlopen its plugins (libxml2, and
 * through the GL plugin libstdc++): about 2.5 MB of RSS in every process,
 * to learn that there is one node.  HAKMEM_TOPOLOGY still goes to hwloc.
 * No directory at all (a kernel without NUMA, or no sysfs mounted, as in
 * some sandboxes) is one node too: hwloc would find no more, and without
 * sysfs it says so on stderr, in every process. */
static int single_node(void)
{
    DIR *d = opendir("/sys/devices/system/node");
    struct dirent *e;
    int n = 0, os = -1;

    if (d == NULL) {
        n = 1;
        os = 0;
    } else {
        while ((e = readdir(d)) != NULL) {
            if (strncmp(e->d_name, "node", 4) == 0 && e->d_name[4] >= '0' && e->d_name[4] <= '9') {
                n++;
                os = atoi(e->d_name + 4);
            }
        }
        closedir(d);
    }
    if (n != 1)
        return 0;
    long cpus = sysconf(_SC_NPROCESSORS_CONF);
    memset(hk_topo.cpu_node, 0, sizeof hk_topo.cpu_node);
    hk_topo.os_index[0] = (uint16_t)os;
    hk_topo.cpus[0] = (uint16_t)(cpus > 0 ? cpus : 1);
    hk_topo.distance[0][0] = 10;
    hk_topo.nodes = 1;
    hk_topo.synthetic = 0;
    return 1;
}

static int load(const char *desc)
{
    hwloc_topology_t t;
    int rc = 0;

    if (desc && *desc) {
        struct stat st;
        int xml = stat(desc, &st) == 0 && S_ISREG(st.st_mode);

        if (open_topology(&t, desc, xml) == 0) {
            fill(t);
            hw.topology_destroy(t);
            return 0;
        }
        hk_message(xml ? "HAKMEM_TOPOLOGY: cannot load the hwloc XML file \""
                : "HAKMEM_TOPOLOGY: not an XML file nor a valid synthetic topology: \"",
            desc, "\": using this machine's topology", "");
        rc = -1;
    }
    if (rc == 0 && single_node())
        return 0;
    if (open_topology(&t, NULL, 0)) {
        hk_message("hwloc cannot read this machine's topology: ", "one NUMA node assumed", "", "");
        return -1;
    }
    fill(t);
    hw.topology_destroy(t);
    return rc;
}

int hk_numa_init(const char *topology)
{
    int rc;

    /* CAS: exactly one caller loads.  Concurrent callers, and the core
     * re-entered by hwloc's mallocs, see LOADING and carry on with node 0. */
    if (!ck_pr_cas_uint(&state, IDLE, LOADING))
        return 0;
    rc = load(topology);
    hk_numa_policy_validate();
    /* Release: every table write above is visible before READY is. */
    ck_pr_fence_release();
    ck_pr_store_uint(&state, READY);
    return rc;
}

void hk_numa_reset_for_tests(void)
{
    /* Test-only: the caller guarantees that no other thread uses the layer. */
    ck_pr_store_uint(&state, IDLE);
    memset(&hk_topo, 0, sizeof hk_topo);
    hk_topo.nodes = 1;
    hk_topo.distance[0][0] = 10;
    hk_numa_policy_reset();
}

unsigned hk_numa_node_count(void)
{
    return hk_numa_ready() ? hk_topo.nodes : 1;
}

unsigned hk_numa_node_os_index(unsigned node)
{
    return hk_numa_ready() && node < hk_topo.nodes ? hk_topo.os_index[node] : 0;
}

unsigned hk_numa_node_of_cpu(int cpu)
{
    if (cpu < 0 || cpu >= HK_MAX_CPUS || !hk_numa_ready())
        return 0;
    return hk_topo.cpu_node[cpu];
}

unsigned hk_numa_distance(unsigned a, unsigned b)
{
    unsigned n = hk_numa_node_count();

    return a < n && b < n ? hk_topo.distance[a][b] : 0;
}
