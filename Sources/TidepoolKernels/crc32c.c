// CRC32C (Castagnoli polynomial 0x82F63B78, reflected), the checksum of every
// WAL frame, segment section and manifest. SSE4.2 has an instruction for it.
#include "TidepoolKernels.h"
#include "simd_common.h"
#include <pthread.h>
#include <string.h>

static uint32_t crc_table[8][256];
static pthread_once_t crc_table_once = PTHREAD_ONCE_INIT;

static void build_table(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++) crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^ crc_table[0][crc_table[t - 1][i] & 0xFF];
}

static uint32_t crc32c_scalar(uint32_t crc, const void *data, size_t len) {
    if (len == 0) return crc;
    pthread_once(&crc_table_once, build_table);
    const uint8_t *p = (const uint8_t *)data;
    uint32_t c = ~crc;
    while (len >= 8) {
        uint64_t w; memcpy(&w, p, 8);
        w ^= c;
        c = crc_table[7][w & 0xFF] ^ crc_table[6][(w >> 8) & 0xFF] ^ crc_table[5][(w >> 16) & 0xFF] ^
            crc_table[4][(w >> 24) & 0xFF] ^ crc_table[3][(w >> 32) & 0xFF] ^ crc_table[2][(w >> 40) & 0xFF] ^
            crc_table[1][(w >> 48) & 0xFF] ^ crc_table[0][w >> 56];
        p += 8; len -= 8;
    }
    while (len--) c = (c >> 8) ^ crc_table[0][(c ^ *p++) & 0xFF];
    return ~c;
}

#if defined(__x86_64__)
SSE42 static uint32_t crc32c_sse42(uint32_t crc, const void *data, size_t len) {
    if (len == 0) return crc;
    const uint8_t *p = (const uint8_t *)data;
    uint64_t c = ~crc;
    while (len >= 8) { uint64_t w; memcpy(&w, p, 8); c = _mm_crc32_u64(c, w); p += 8; len -= 8; }
    uint32_t c32 = (uint32_t)c;
    while (len--) c32 = _mm_crc32_u8(c32, *p++);
    return ~c32;
}
#endif

static const tp_crc32c_table crc32c_scalar_table = {crc32c_scalar, "scalar"};
#if defined(__x86_64__)
static const tp_crc32c_table crc32c_sse42_table = {crc32c_sse42, "sse4.2"};
#endif

static const tp_variant crc32c_variants[] = {
#if defined(__x86_64__)
    {&crc32c_sse42_table, "sse4.2", tp_cpu_sse42},
#endif
    {&crc32c_scalar_table, "scalar", tp_cpu_any},
};
TP_DISPATCH(tp_crc32c_table, tp_crc32c, crc32c_variants)
