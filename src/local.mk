# The allocator core, bottom-up: OS -> SuperSlab -> slab -> heap -> API.
HAKMEM_CORE_SOURCES = \
	src/hk_config.h src/hk_tsan.h \
	src/options.c src/hk_options.h \
	src/error.c src/hk_error.h \
	src/buf.c src/hk_buf.h \
	src/os.c src/hk_os.h \
	src/sizeclass.c src/hk_sizeclass.h \
	src/superslab.c src/hk_superslab.h \
	src/slab.c src/hk_slab.h \
	src/large.c src/hk_large.h \
	src/heap.c src/lifecycle.c src/hk_heap.h src/hk_heap_int.h \
	src/reclaim.c src/free.c \
	src/stats.c src/hk_stats.h \
	src/api.c src/hk_api.h src/hk_override.h \
	src/compat.c

