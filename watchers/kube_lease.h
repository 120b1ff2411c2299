/*
 * kube_lease.h - leader election through a coordination.k8s.io/v1 Lease, the
 * way client-go's leaderelection package does it, so that of several triaged
 * replicas watching one cluster only one processes incidents.
 *
 * Every retry_period the elector reads the Lease (creating it on 404). It
 * takes the Lease when it is free (no holder), expired (renewTime +
 * leaseDurationSeconds is in the past) or already ours, with a PUT that
 * carries the resourceVersion it read: the apiserver answers 409 to all but
 * one of several replicas racing for it, and the losers simply look again a
 * retry_period later. A leader that cannot renew for renew_deadline steps
 * down on its own, before (lease_duration > renew_deadline) a standby may
 * take over. A clean stop releases the Lease (no holder, duration 1 s) so a
 * standby takes over at its next look instead of after lease_duration.
 *
 * Expiry is judged from renewTime against this host's clock, as the design
 * asks; replicas with clocks skewed by more than lease_duration -
 * renew_deadline could overlap.
 *
 * The elector owns its timer, its HTTP call and its copies of the strings;
 * the loop, the kube client and the HTTP client are borrowed. All on the
 * loop thread. It knows nothing of what leadership is for: the owner starts
 * and stops work in on_change.
 */
#ifndef TR_KUBE_LEASE_H
#define TR_KUBE_LEASE_H

#include <stdint.h>
#include <uv.h>

#include "error.h"
#include "http_client.h"
#include "kube_client.h"

typedef struct tr_kube_lease tr_kube_lease;

#define TR_KUBE_LEASE_DEFAULT_DURATION_MS 15000
#define TR_KUBE_LEASE_DEFAULT_RENEW_DEADLINE_MS 10000
#define TR_KUBE_LEASE_DEFAULT_RETRY_PERIOD_MS 2000
#define TR_KUBE_LEASE_NAMESPACE_FILE "/var/run/secrets/kubernetes.io/serviceaccount/namespace"

typedef struct tr_kube_lease_options {
    /* NULL or "" = the pod's namespace (namespace_file), else "default". */
    const char *namespace;
    const char *namespace_file;  /* NULL = TR_KUBE_LEASE_NAMESPACE_FILE (tests change it) */
    /* NULL or "" = "triaged-<cluster_name>" ("triaged" without one), made DNS-safe. */
    const char *name;
    const char *cluster_name;
    const char *identity;        /* NULL or "" = "<hostname>_<pid>" */
    uint64_t lease_duration_ms;  /* 0 = 15 s; whole seconds on the wire (at least 1) */
    uint64_t renew_deadline_ms;  /* 0 = 10 s; must be < lease_duration */
    uint64_t retry_period_ms;    /* 0 = 2 s; must be < renew_deadline */
    /*
     * Called on the loop each time this replica becomes leader (1) or stops
     * being leader (0): lost the Lease, could not renew, or tr_kube_lease_stop.
     * Not called from tr_kube_lease_close. May call the getters; must not
     * close the elector.
     */
    void (*on_change)(tr_kube_lease *lease, int is_leader, void *userdata);
    /* Optional: the holder read from the Lease changed (holder "" = free); for status. */
    void (*on_holder)(tr_kube_lease *lease, const char *holder, void *userdata);
    void *userdata;
} tr_kube_lease_options;

/*
 * Create an elector; nothing is sent before tr_kube_lease_start. client and
 * http are borrowed and must outlive it. TR_EINVAL (message in err) for
 * inconsistent durations. Caller releases it with tr_kube_lease_close.
 */
int tr_kube_lease_new(tr_kube_lease **out, uv_loop_t *loop, tr_kube_client *client,
                      tr_http_client *http, const tr_kube_lease_options *options,
                      tr_error *err);

/* Begin electing; returns at once. */
int tr_kube_lease_start(tr_kube_lease *lease);

/*
 * Stop electing. A leader first calls on_change(0), then releases the Lease
 * (one PUT, bounded by a timeout); done(userdata) runs once afterwards from
 * the loop, also when there was nothing to release. Keep the HTTP client
 * alive and the loop running until done; then tr_kube_lease_close.
 */
void tr_kube_lease_stop(tr_kube_lease *lease, void (*done)(void *userdata), void *userdata);

int tr_kube_lease_is_leader(const tr_kube_lease *lease);

/* The holder last seen on the Lease ("" = free or not read yet); borrowed. */
const char *tr_kube_lease_holder(const tr_kube_lease *lease);

/* This replica's identity, namespace and Lease name; borrowed. */
const char *tr_kube_lease_identity(const tr_kube_lease *lease);
const char *tr_kube_lease_namespace(const tr_kube_lease *lease);
const char *tr_kube_lease_name(const tr_kube_lease *lease);

/* How many times leadership changed here (gained or lost): on_change calls. */
unsigned long tr_kube_lease_transitions(const tr_kube_lease *lease);

/* PUTs the apiserver refused with 409 (another replica won a race). */
unsigned long tr_kube_lease_conflicts(const tr_kube_lease *lease);

/*
 * Stop at once without releasing (a held Lease then expires after
 * lease_duration) and free the elector once its handles close. Accepts NULL.
 * Close it before the kube client.
 */
void tr_kube_lease_close(tr_kube_lease *lease);

/* ---- the pure parts, public for the unit tests and the fuzz target ----- */

/* A MicroTime ("2024-05-01T10:00:00.123456Z", offsets accepted) as Unix µs. */
int tr_kube_lease_parse_time(const char *text, int64_t *out_us);

/* Unix µs as a MicroTime with six fractional digits and "Z" into buf (>= 28). */
int tr_kube_lease_format_time(int64_t unix_us, char *buf, size_t size);

/* The fields of a Lease the election reads. Strings owned by the record. */
typedef struct tr_kube_lease_record {
    char *resource_version;
    char *holder;             /* "" when free */
    int64_t duration_s;       /* 0 when absent */
    int64_t renew_us;         /* 0 when absent */
    int64_t acquire_us;
    int64_t transitions;
} tr_kube_lease_record;

/* Parse a Lease object. TR_EPARSE with the field named in err. */
int tr_kube_lease_record_parse(tr_kube_lease_record *out, const char *json, size_t len,
                               tr_error *err);
void tr_kube_lease_record_dispose(tr_kube_lease_record *rec);

/* No holder, or renewTime + leaseDurationSeconds before now_us? */
int tr_kube_lease_record_expired(const tr_kube_lease_record *rec, int64_t now_us);

typedef enum tr_kube_lease_action {
    TR_KUBE_LEASE_FOLLOW = 0,  /* held by another replica and valid: leave it */
    TR_KUBE_LEASE_ACQUIRE,     /* free or expired: take it over (transitions + 1) */
    TR_KUBE_LEASE_RENEW,       /* ours: renew it */
    TR_KUBE_LEASE_RELEASE,     /* for tr_kube_lease_build_update only: give it up */
} tr_kube_lease_action;

tr_kube_lease_action tr_kube_lease_decide(const tr_kube_lease_record *rec, const char *identity,
                                          int64_t now_us);

/*
 * The PUT body for action, built from the Lease object as read (its metadata,
 * resourceVersion included, kept so the PUT is a compare-and-swap). *out is
 * owned by the caller (tr_free).
 */
int tr_kube_lease_build_update(char **out, const char *lease_json, size_t len,
                               tr_kube_lease_action action, const char *identity,
                               int64_t now_us, int64_t duration_s, tr_error *err);

/* The POST body creating the Lease held by identity. Caller frees *out. */
int tr_kube_lease_build_create(char **out, const char *namespace, const char *name,
                               const char *identity, int64_t now_us, int64_t duration_s,
                               tr_error *err);

#endif
