/* The size-class tables (generated once from the rule in hk_sizeclass.h and
 * checked against it by tests/slab_check.c). */
#include "hk_sizeclass.h"
#include "hakmem.h"

const uint32_t hk_class_size[HK_CLASSES] = {
    16, 32, 48, 64, 80, 96, 112, 128, 144, 160,
    176, 192, 208, 224, 240, 256, 288, 320, 352, 384,
    416, 448, 480, 512, 576, 640, 704, 768, 832, 896,
    960, 1024, 1152, 1280, 1408, 1536, 1664, 1792, 1920, 2048,
    2304, 2560, 2816, 3072, 3328, 3584, 3840, 4096, 4608, 5120,
    5632, 6144, 6656, 7168, 7680, 8192, 9216, 10240, 11264, 12288,
    13312, 14336, 15360, 16384, 18432, 20480, 22528, 24576, 26624, 28672,
    30720, 32768, 40960, 49152, 57344, 65536, 81920, 98304, 114688, 131072
};

const uint8_t hk_class_lut[(HK_LUT_MAX >> HK_LUT_SHIFT) + 1] = {
    0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
    15, 16, 16, 17, 17, 18, 18, 19, 19, 20, 20, 21, 21, 22, 22, 23,
    23, 24, 24, 24, 24, 25, 25, 25, 25, 26, 26, 26, 26, 27, 27, 27,
    27, 28, 28, 28, 28, 29, 29, 29, 29, 30, 30, 30, 30, 31, 31, 31,
    31
};

/* Units per slab: at least 8 blocks in every slab up to 64 KiB, so the big
 * classes do not round-trip to the SuperSlab for every few allocations;
 * above, 8 units (512 KiB, 4 to 6 blocks), as mimalloc's medium pages.
 * Memory is carved a block at a time there: an idle slab costs address
 * space, not RSS. */
const uint8_t hk_class_units[HK_CLASSES] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2,
    3, 3, 3, 3, 4, 4, 4, 4, 5, 6, 7, 8, 8, 8, 8, 8
};

unsigned hak_size_class_count(void) { return HK_CLASSES; }

size_t hak_size_class_size(unsigned cls) { return cls < HK_CLASSES ? hk_class_size[cls] : 0; }
