/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Path of a (dentry, vfsmount) pair, the way d_path() renders it relative to a task's
 * root, for hooks where the bpf_d_path() helper is not allowed (tracepoints).
 */
#ifndef TETRA_PATH_H
#define TETRA_PATH_H

#include "common.h"

#define PATH_WALK_DEPTH 64
#define PATH_NAME_MAX 255
/* The walk writes components backwards from the end of a buffer of this size. */
#define PATH_BUF_SIZE 1024
#define PATH_BUF_MASK (PATH_BUF_SIZE - 1)

struct path_buf {
	/* Slack after the window so a masked offset plus a name never leaves the buffer. */
	char data[PATH_BUF_SIZE + PATH_NAME_MAX + 1];
};

static __always_inline struct mount *real_mount(struct vfsmount *vfsmnt)
{
	return (struct mount *)((void *)vfsmnt - bpf_core_field_offset(struct mount, mnt));
}

struct walk_ctx {
	struct dentry *dentry;
	struct vfsmount *vfsmnt;
	struct mount *mnt;
	struct dentry *root_dentry;
	struct vfsmount *root_mnt;
	struct path_buf *buf;
	__u32 pos;
	bool done;
	bool truncated;
};

/* One step of the walk: one component, or one hop to the parent mount. */
static long walk_step(__u64 index, void *data)
{
	struct walk_ctx *w = data;
	/* Plain locals: CO-RE reads must not relocate fields of walk_ctx itself. */
	struct dentry *dentry = w->dentry;
	struct vfsmount *vfsmnt = w->vfsmnt;
	struct mount *mnt = w->mnt;

	if (dentry == w->root_dentry && vfsmnt == w->root_mnt) {
		w->done = true;
		return 1;
	}
	struct dentry *parent = BPF_CORE_READ(dentry, d_parent);
	struct dentry *mnt_root = BPF_CORE_READ(vfsmnt, mnt_root);

	/* A dentry alone (no mount, as a dentry argument) ends at its filesystem's root. */
	if (!vfsmnt && dentry == parent) {
		w->done = true;
		return 1;
	}
	if (dentry == mnt_root || dentry == parent) {
		struct mount *mnt_parent = BPF_CORE_READ(mnt, mnt_parent);

		if (mnt == mnt_parent) {
			w->done = true; /* the global root */
			return 1;
		}
		w->dentry = BPF_CORE_READ(mnt, mnt_mountpoint);
		w->mnt = mnt_parent;
		w->vfsmnt = (struct vfsmount *)((void *)mnt_parent +
						bpf_core_field_offset(struct mount, mnt));
		return 0;
	}
	struct qstr name = BPF_CORE_READ(dentry, d_name);
	__u32 len = name.len & PATH_NAME_MAX;
	__u32 pos = w->pos;
	struct path_buf *buf = w->buf;

	if (len + 1 > pos || pos > PATH_BUF_SIZE) {
		w->truncated = true;
		return 1;
	}
	pos -= len;
	bpf_probe_read_kernel(&buf->data[pos & PATH_BUF_MASK], len, name.name);
	pos -= 1;
	buf->data[pos & PATH_BUF_MASK] = '/';
	w->pos = pos;
	w->dentry = parent;
	return 0;
}

/*
 * Writes the path into the tail of buf->data[0..PATH_BUF_SIZE) and returns its length;
 * it starts at PATH_BUF_SIZE - length. Sets *truncated when components did not fit (the
 * result then lacks its leading components) or the tree was deeper than the walk.
 */
static __always_inline __u32 walk_path(struct dentry *dentry, struct vfsmount *vfsmnt,
				       const struct path *root, struct path_buf *buf,
				       bool *truncated)
{
	struct walk_ctx w = {
		.dentry = dentry,
		.vfsmnt = vfsmnt,
		.mnt = real_mount(vfsmnt),
		.root_dentry = BPF_CORE_READ(root, dentry),
		.root_mnt = BPF_CORE_READ(root, mnt),
		.buf = buf,
		.pos = PATH_BUF_SIZE,
	};

	bpf_loop(PATH_WALK_DEPTH, walk_step, &w, 0);
	*truncated = w.truncated || !w.done;
	if (w.pos >= PATH_BUF_SIZE) {
		w.pos = PATH_BUF_SIZE - 1;
		buf->data[w.pos] = '/';
	}
	return PATH_BUF_SIZE - w.pos;
}

#endif
