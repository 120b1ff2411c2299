/*
 * tf_dir.h - follow the [terraform] log_dirs: each file is one run's `terraform ... -json`
 * output; a finished file is parsed (tf_log), recorded (tf_ingest) and remembered in the
 * store, so a restart does not report it again.
 *
 * Files are found by libuv fs events on the directories and by a periodic rescan (events
 * are lost on some filesystems, and while the daemon was down). Files directly in a log dir
 * and in its subdirectories (one level: log_dir/<workspace>/<run>.json) are followed;
 * hidden files and editor/partial files (*~, *.tmp, *.swp, *.part) are not.
 *
 * A file is complete when its last line is a final message (tr_tf_line_is_final) or when it
 * has not changed for settle_time. The workspace is the name of the directory holding the
 * file; the operation hint comes from the file name ("plan-42.json" → plan).
 *
 * Restart-safe: the store remembers (path, size, SHA-256 of the content) of every file
 * processed; a file seen again with the same triple is skipped. A rotated file (same path,
 * new content) differs in size or hash and is processed again.
 *
 * Reading, hashing and parsing run on the libuv thread pool, one file at a time; the
 * directory listing and the store calls run on the loop. Loop thread only.
 */
#ifndef TR_TF_DIR_H
#define TR_TF_DIR_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "tf_ingest.h"

typedef struct tr_tf_dir tr_tf_dir;

typedef struct tr_tf_dir_options {
    uv_loop_t *loop;
    const tr_tf_ingest *ingest;      /* borrowed; must outlive the follower */
    const char *const *dirs;         /* copied */
    size_t dir_count;
    uint64_t rescan_interval_ms;     /* [30 s] */
    uint64_t settle_time_ms;         /* [5 s] */
    size_t max_files;                /* [10000] files tracked; more are ignored (logged) */
    uint64_t max_file_bytes;         /* [256 MiB] bigger files are skipped (logged) */
    tr_tf_log_options log_options;
} tr_tf_dir_options;

typedef struct tr_tf_dir_stats {
    uint64_t processed;      /* files parsed and recorded */
    uint64_t already_seen;   /* files skipped because the store knew them */
    uint64_t unparsable;     /* files that are not Terraform -json logs */
    uint64_t errors;         /* read or store errors */
    uint64_t scans;
} tr_tf_dir_stats;

/*
 * Start following. A directory that does not exist is not an error (it is rescanned and
 * picked up once it appears) but is logged. Caller ends with tr_tf_dir_stop.
 */
int tr_tf_dir_start(tr_tf_dir **out, const tr_tf_dir_options *options, tr_error *err);

/* Scan every directory now (tests; the fs events and the rescan timer call the same). */
void tr_tf_dir_scan(tr_tf_dir *dir);

void tr_tf_dir_get_stats(const tr_tf_dir *dir, tr_tf_dir_stats *out);

/*
 * Stop: close the handles, wait for the file being read (if any), then free and call
 * on_stopped (may be NULL) from the loop. Run the loop until then. Accepts NULL.
 */
void tr_tf_dir_stop(tr_tf_dir *dir, void (*on_stopped)(void *userdata), void *userdata);

#endif
