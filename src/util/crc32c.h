/* SPDX-License-Identifier: MIT */
/*
 * crc32c.h — CRC-32C (Castagnoli, the iSCSI/ext4/NVMe polynomial 0x1EDC6F41, reflected
 * 0x82F63B78), as the on-disk formats use it. sn_crc32c(0, p, n) is the standard CRC of
 * p (initial value and final xor ~0 are applied inside); chaining
 * sn_crc32c(sn_crc32c(0, a, n), b, m) equals the CRC of a followed by b.
 */
#ifndef SN_UTIL_CRC32C_H
#define SN_UTIL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

uint32_t sn_crc32c(uint32_t crc, const void *p, size_t n);

#endif
