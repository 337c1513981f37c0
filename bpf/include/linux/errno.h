/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Stands in for the uapi header that libbpf's usdt.bpf.h includes: with `-target bpf`
 * clang does not search the host's multiarch directory where <asm/errno.h> lives. Only
 * the codes usdt.bpf.h returns, which are the same on every Linux architecture.
 */
#ifndef TETRA_LINUX_ERRNO_H
#define TETRA_LINUX_ERRNO_H

#define ENOENT 2
#define ESRCH 3
#define EINVAL 22

#endif
