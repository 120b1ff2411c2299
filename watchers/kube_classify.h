/*
 * kube_classify.h - Kubernetes objects → failure findings and health signals.
 *
 * Pure functions: given one object as the apiserver returns it (an Event, a
 * Pod, a Deployment, a Job, a Node, a PVC, an Argo CD Application, a Flux
 * Kustomization or HelmRelease) and the read-only slim cache, say which
 * failures it shows (docs/incident-facts.md fixes the classes, the owner
 * identity, the fingerprint and the facts keys) and which owners it shows
 * healthy or unhealthy again. Nothing is written anywhere: kube_ingest
 * decides what reaches the store.
 *
 * Noise is filtered here, with thresholds in tr_kube_classify_options:
 * Normal events are ignored, a probe failure must repeat, a restart must
 * repeat (or the kubelet must be backing off).
 */
#ifndef TR_KUBE_CLASSIFY_H
#define TR_KUBE_CLASSIFY_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "kube_cache.h"

typedef enum tr_kube_class {
    TR_KCLASS_NONE = 0,
    TR_KCLASS_CRASHLOOP,          /* CrashLoopBackOff */
    TR_KCLASS_OOMKILLED,          /* OOMKilled */
    TR_KCLASS_IMAGEPULL,          /* ImagePullBackOff */
    TR_KCLASS_CONFIG,             /* CreateContainerConfigError */
    TR_KCLASS_SCHEDULING,         /* FailedScheduling */
    TR_KCLASS_UNHEALTHY,          /* Unhealthy */
    TR_KCLASS_MOUNT,              /* FailedMount */
    TR_KCLASS_PROGRESS_DEADLINE,  /* ProgressDeadlineExceeded */
    TR_KCLASS_BACKOFF_LIMIT,      /* BackoffLimitExceeded */
    TR_KCLASS_JOB_DEADLINE,       /* DeadlineExceeded */
    TR_KCLASS_NODE_NOT_READY,     /* NodeNotReady */
    TR_KCLASS_PROVISIONING,       /* ProvisioningFailed */
    TR_KCLASS_ARGO_SYNC_FAILED,   /* ArgoSyncFailed */
    TR_KCLASS_ARGO_DEGRADED,      /* ArgoDegraded */
    TR_KCLASS_FLUX_NOT_READY,     /* FluxNotReady */
} tr_kube_class;

#define TR_KCLASS_COUNT (TR_KCLASS_FLUX_NOT_READY + 1)
#define TR_KCLASS_BIT(c) (1u << (c))
/* Classes a pod's own state shows; they recover when the owner's pods are healthy. */
#define TR_KCLASS_POD_MASK                                                                     \
    (TR_KCLASS_BIT(TR_KCLASS_CRASHLOOP) | TR_KCLASS_BIT(TR_KCLASS_OOMKILLED) |                 \
     TR_KCLASS_BIT(TR_KCLASS_IMAGEPULL) | TR_KCLASS_BIT(TR_KCLASS_CONFIG) |                    \
     TR_KCLASS_BIT(TR_KCLASS_SCHEDULING) | TR_KCLASS_BIT(TR_KCLASS_UNHEALTHY) |                \
     TR_KCLASS_BIT(TR_KCLASS_MOUNT))
#define TR_KCLASS_ALL_MASK (((1u << TR_KCLASS_COUNT) - 1u) & ~1u)

/* "CrashLoopBackOff", ...; NULL for NONE and unknown values. */
const char *tr_kube_class_name(int failure_class);
/* The class called name, or TR_KCLASS_NONE. */
int tr_kube_class_parse(const char *name);

typedef struct tr_kube_classify_options {
    int unhealthy_min_count;     /* probe failures (one series) before Unhealthy; 3 */
    int restart_min_count;       /* restarts before a crash counts without BackOff; 2 */
    int oom_min_restarts;        /* restarts after an OOM kill before OOMKilled; 1 */
    int image_pull_min_failures; /* ErrImagePull occurrences before ImagePullBackOff; 2 */
    int mount_min_count;         /* FailedMount occurrences; 2 */
    int scheduling_min_count;    /* FailedScheduling occurrences; 1 */
    int provisioning_min_count;  /* ProvisioningFailed occurrences; 1 */
    int64_t restart_recent_ms;   /* a past termination older than this is history; 1 h */
    /* A FailedScheduling event counts once its pod has been unschedulable this long
     * (lastTimestamp - firstTimestamp: the scheduler re-emits it on every retry); 0 = at
     * once. A scale-up that lands the pod within it is no incident. */
    int64_t scheduling_grace_ms;
    size_t message_max_bytes;    /* messages and probe output are cut here; 2048 */
} tr_kube_classify_options;

/* Fill o with the defaults above. */
void tr_kube_classify_options_default(tr_kube_classify_options *o);

/* One failure the object shows. Strings and facts are owned by the result. */
typedef struct tr_kube_finding {
    int failure_class;
    char *namespace;   /* "" for cluster-scoped objects */
    char *object_kind; /* the signal's object: "Pod", "Node", ... */
    char *object_name;
    char *owner_kind;  /* the incident's object (docs/incident-facts.md) */
    char *owner_name;
    char *message;     /* one line for humans */
    char *fingerprint; /* k8s/<cluster>/<ns>/<OwnerKind>/<owner>/<class> */
    cJSON *facts;      /* keys per docs/incident-facts.md; without pods/pod_count */
    int64_t signal_ms; /* when the object says it happened (0 = now/unknown) */
    int pod_scoped;    /* object is a Pod that belongs in facts.pods */
    uint32_t detail_hash; /* what makes a repeat new (restart count, ...) */
} tr_kube_finding;

/* healthy = 1: owner shows recovered for classes; 0: it is not healthy (yet). */
typedef struct tr_kube_health {
    char *namespace;
    char *owner_kind;
    char *owner_name;
    uint32_t classes; /* TR_KCLASS_BIT mask */
    int healthy;
} tr_kube_health;

#define TR_KUBE_MAX_FINDINGS 8
#define TR_KUBE_MAX_HEALTH 2

typedef struct tr_kube_result {
    tr_kube_finding findings[TR_KUBE_MAX_FINDINGS];
    size_t finding_count;
    tr_kube_health health[TR_KUBE_MAX_HEALTH];
    size_t health_count;
} tr_kube_result;

/*
 * Classify object (of resource, a tr_kube_resource) as seen at now_ms, using
 * cache (may be NULL: owners are then the objects themselves, event counts
 * those of the Event alone). For Events, apply the Event to the cache first
 * so that its counters include it. cluster names the cluster in
 * fingerprints. out is zeroed first; release it with tr_kube_result_dispose
 * even on failure. Returns 0, TR_EINVAL (not an object) or TR_ENOMEM.
 */
int tr_kube_classify(const tr_kube_classify_options *options, const tr_kube_cache *cache,
                     const char *cluster, int resource, const cJSON *object, int64_t now_ms,
                     tr_kube_result *out);
void tr_kube_result_dispose(tr_kube_result *result);

/*
 * k8s/<cluster>/<ns>/<kind>/<name>/<class> into a new string the caller frees
 * with tr_free; NULL without memory.
 */
char *tr_kube_fingerprint(const char *cluster, const char *ns, const char *owner_kind,
                          const char *owner_name, int failure_class);

#endif
