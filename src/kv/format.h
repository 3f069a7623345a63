/* SPDX-License-Identifier: MIT */
/*
 * format.h — the KV store's on-disk format (docs/format.md is the prose version; keep the
 * two in step). Everything is little-endian; structs are written as they are laid out
 * here, with explicit padding, and the build refuses a big-endian host.
 *
 *   offset 0            superblock copy A (one format block)
 *   offset block_size   superblock copy B (identical; either may serve)
 *   log_offset          shard 0's segments, then shard 1's, ... (shard_segments each)
 *
 * A segment starts with a 64-byte header; records follow back to back, each 8-byte
 * aligned. A record's CRC is seeded from its segment's sequence number, so records left
 * over from an earlier life of a reused segment fail their check.
 */
#ifndef SN_KV_FORMAT_H
#define SN_KV_FORMAT_H

#include <stdint.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the KV on-disk format is little-endian; this host is not"
#endif

#define SN_KV_SB_MAGIC       "snstorKV"
#define SN_KV_FORMAT_VERSION 1u
#define SN_KV_SEG_MAGIC      0x47455353u  /* "SSEG" */
#define SN_KV_SEQ_LIMIT      (1ull << 62) /* segment (and checkpoint) sequence numbers stay below */

#define SN_KV_MIN_BLOCK  4096u
#define SN_KV_MIN_SEG    (64u << 10)
#define SN_KV_MAX_SEG    (1u << 30)
#define SN_KV_MAX_SHARDS 4096u

struct sn_kv_super {
	char magic[8];            /* SN_KV_SB_MAGIC */
	uint32_t version;         /* SN_KV_FORMAT_VERSION: a newer one is refused */
	uint32_t flags;           /* 0 */
	uint8_t uuid[16];         /* random, per format: segments of another store are free */
	uint32_t block_size;      /* alignment of every write, >= the device's block */
	uint32_t segment_size;    /* power of two */
	uint64_t capacity;        /* bytes of the device the store uses */
	uint32_t shards;          /* shard count, fixed at format */
	uint32_t reserved;        /* 0 */
	uint64_t log_offset;      /* shard 0's first segment */
	uint64_t shard_segments;  /* segments per shard; shard s starts at
	                             log_offset + s * shard_segments * segment_size */
	uint64_t created_unix_ns; /* wall clock at format */
	uint8_t pad[40];          /* 0 */
	uint32_t pad2;            /* 0 */
	uint32_t crc;             /* CRC-32C of the bytes before it */
};
_Static_assert(sizeof(struct sn_kv_super) == 128, "superblock layout");

struct sn_kv_seghdr {
	uint32_t magic;   /* SN_KV_SEG_MAGIC; zero when the segment is free */
	uint32_t crc;     /* CRC-32C of the header with this field zero */
	uint8_t uuid[16]; /* the store's */
	uint64_t seq;     /* the shard's segment sequence number: higher is newer; in [1, 2^62) */
	uint32_t shard;   /* which shard wrote it */
	uint32_t version; /* SN_KV_FORMAT_VERSION */
	uint8_t pad[24];  /* 0 */
};
_Static_assert(sizeof(struct sn_kv_seghdr) == 64, "segment header layout");

/*
 * Index checkpoint, written by a clean close into free segments of the shard: the index
 * and the segment table as they were, so the next open reads it instead of scanning the
 * log (docs/format.md, "Index checkpoint"). Each of its segments starts with this header
 * (a segment without SN_KV_SEG_MAGIC is free space to a reader that knows no checkpoint);
 * the payload is split across its parts in order, each part after its header.
 */
#define SN_KV_CKPT_MAGIC 0x504b4353u /* "SCKP" */

struct sn_kv_ckpthdr {
	uint32_t magic;       /* SN_KV_CKPT_MAGIC */
	uint32_t crc;         /* CRC-32C of the header with this field zero */
	uint8_t uuid[16];     /* the store's */
	uint64_t seq;         /* the checkpoint's number, from the shard's segment sequence */
	uint32_t shard;       /* which shard wrote it */
	uint32_t version;     /* SN_KV_FORMAT_VERSION */
	uint32_t part;        /* 0 .. nparts-1 */
	uint32_t nparts;      /* segments the checkpoint takes */
	uint32_t len;         /* payload bytes in this part (after this header) */
	uint32_t payload_crc; /* CRC-32C of those bytes */
	uint64_t total;       /* payload bytes of all parts */
};
_Static_assert(sizeof(struct sn_kv_ckpthdr) == 64, "checkpoint header layout");

/* The payload: this, then `segments` struct sn_kv_ckpt_seg, then every segment's batch ids
 * (uint64, segment by segment), then `entries` index entries, each a struct
 * sn_kv_ckpt_ent followed by its key. */
struct sn_kv_ckpt {
	uint64_t segments;    /* the shard's segment count */
	uint32_t head;        /* the head segment */
	uint32_t pad;         /* 0 */
	uint64_t head_seq;    /* its sequence number: the newest segment the checkpoint covers */
	uint64_t head_pos;    /* covered up to here; records after it are the log tail */
	uint64_t next_recseq; /* the shard's next record sequence number */
	uint64_t entries;     /* index entries that follow */
	uint64_t batch_ids;   /* batch ids that follow the segment table */
	uint64_t close_id;    /* random, the same in every shard's checkpoint of one close:
	                         they are used only all together (a batch's records and its
	                         commit may sit on different shards) */
};
_Static_assert(sizeof(struct sn_kv_ckpt) == 64, "checkpoint layout");

struct sn_kv_ckpt_seg {
	uint64_t seq;      /* the segment's sequence number then; 0: free (or a checkpoint) */
	uint32_t used;     /* bytes of header and records */
	uint32_t commits;  /* bytes of commit records */
	uint32_t nbatches; /* ids of batches with records in it, in the batch id list */
	uint32_t pad;      /* 0 */
};
_Static_assert(sizeof(struct sn_kv_ckpt_seg) == 24, "checkpoint segment layout");

struct sn_kv_ckpt_ent {
	uint32_t seg, off, len; /* where the key's newest record is, as in the index */
	uint16_t klen;          /* key bytes that follow, 1 .. 1024 */
	uint8_t tomb;           /* the record is a delete */
	uint8_t pad;            /* 0 */
};
_Static_assert(sizeof(struct sn_kv_ckpt_ent) == 16, "checkpoint entry layout");

enum sn_kv_rec_type {
	SN_KV_REC_PUT = 1,
	SN_KV_REC_DEL = 2,
	SN_KV_REC_BPUT = 3,   /* put belonging to a batch: 8-byte batch id before the key */
	SN_KV_REC_BDEL = 4,   /* delete belonging to a batch */
	SN_KV_REC_COMMIT = 5, /* batch committed: 8-byte batch id, 4-byte record count, 4 pad */
};

struct sn_kv_rechdr {
	uint32_t crc;  /* CRC-32C, seeded by sn_kv_rec_seed(segment seq), of every byte of the
	                  record after this field (header rest, extra, key, value) */
	uint8_t type;  /* enum sn_kv_rec_type; 0 never starts a record (end of log) */
	uint8_t rsvd;  /* 0 */
	uint16_t klen; /* key bytes (0 only for COMMIT) */
	uint32_t vlen; /* value bytes (PUT, BPUT) */
	uint32_t pad;  /* 0 */
	uint64_t seq;  /* the shard's record sequence number: later writes have larger ones */
};
_Static_assert(sizeof(struct sn_kv_rechdr) == 24, "record header layout");

/* Bytes between the header and the key. */
static inline uint32_t sn_kv_rec_extra(unsigned type)
{
	return type == SN_KV_REC_BPUT || type == SN_KV_REC_BDEL ? 8
	       : type == SN_KV_REC_COMMIT                       ? 16
	                                                        : 0;
}

static inline uint32_t sn_kv_rec_len(unsigned type, uint32_t klen, uint32_t vlen)
{
	return (uint32_t)((sizeof(struct sn_kv_rechdr) + sn_kv_rec_extra(type) + klen + vlen + 7) &
	                  ~7ull);
}

static inline uint32_t sn_kv_rec_seed(uint64_t segseq)
{
	return (uint32_t)(segseq ^ (segseq >> 32)) * 0x9e3779b1u;
}

#endif
