/*
 * kube_explain.h - `triaged explain KIND/NAME [-n NS]`: triage and analysis
 * of one Kubernetes object now, without a daemon.
 *
 * Connects with the configured kubeconfig, GETs the object (pod,
 * deployment, statefulset, daemonset, replicaset, job, cronjob, node, pvc;
 * case-insensitive, plurals and kubectl's short names accepted), classifies
 * it and, for workloads, its pods and the Warning events about them
 * (watchers/kube_classify.h), gathers the evidence (kube_evidence.h) and
 * runs the analysis (tr_analysis_run_once_ex). Owns nothing after it
 * returns.
 */
#ifndef TR_KUBE_EXPLAIN_H
#define TR_KUBE_EXPLAIN_H

#include <stdio.h>

#include "config.h"

typedef struct tr_explain_options {
    int show_evidence;        /* also print the redacted evidence bundle */
    uint64_t connect_timeout_ms; /* [15000] wait for the apiserver's first answer */
} tr_explain_options;

/*
 * Explain kind_name ("deployment/checkout") in namespace ns (NULL or "" =
 * "default"; ignored for nodes), printing to out; errors go to stderr.
 * Returns the exit status: 0 analysed, or "no failure found" for a healthy
 * object; 1 the cluster is unreachable, refuses us or the analysis failed;
 * 2 a malformed KIND/NAME, an unknown kind, or no such object.
 */
int tr_explain_run(const tr_config *cfg, const char *kind_name, const char *ns, FILE *out);
/* Same with options (NULL = defaults). */
int tr_explain_run_ex(const tr_config *cfg, const char *kind_name, const char *ns,
                      const tr_explain_options *options, FILE *out);

#endif
