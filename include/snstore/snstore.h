/* SPDX-License-Identifier: MIT */
/* snstore/snstore.h — the whole public API. */
#ifndef SNSTORE_SNSTORE_H
#define SNSTORE_SNSTORE_H

#include <snstore/dev.h>
#include <snstore/err.h>
#include <snstore/fault.h>
#include <snstore/kv.h>
#include <snstore/rt.h>

#define SNSTORE_VERSION_MAJOR 0
#define SNSTORE_VERSION_MINOR 1
#define SNSTORE_VERSION_PATCH 0
#define SNSTORE_VERSION       "0.1.0"

#endif
